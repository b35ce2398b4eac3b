"""Seed 004 Reference: the public format catalogue, templates, the metadata guide."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIClient

from conversions import formats
from tests.conftest import assert_error, data_of

pytestmark = pytest.mark.django_db


def test_catalogue_lists_formats_publicly():
    body = data_of(APIClient().get("/api/formats"))
    by_id = {f["id"]: f for f in body}
    assert {"png", "jpeg", "pdf", "csv", "xlsx", "docx", "mp3", "mp4"} <= set(by_id)
    jpeg = by_id["jpeg"]
    assert jpeg["extensions"] == ["jpg", "jpeg"] and jpeg["mime_types"] == ["image/jpeg"]
    assert jpeg["category"] == "image" and jpeg["read"] and jpeg["write"] and "exif" in jpeg["metadata"]
    assert by_id["docx"]["write"] is False  # nothing converts into DOCX


@pytest.mark.parametrize("name", ["png", "jpg", ".JPEG", "md", "yml"])
def test_detail_by_id_or_extension(name):
    body = data_of(APIClient().get(f"/api/formats/{name}"))
    assert body["id"] == formats.find(name).id
    assert set(body["conversions"]) == {"to", "from"}


def test_detail_conversions_in_and_out():
    body = data_of(APIClient().get("/api/formats/pdf"))
    assert {"png", "jpeg", "text"} <= set(body["conversions"]["to"])
    assert {"png", "jpeg"} <= set(body["conversions"]["from"])


def test_unknown_format_is_404():
    assert_error(APIClient().get("/api/formats/nope"), 404, "NOT_FOUND")
    assert_error(APIClient().get("/api/formats/nope/template"), 404)


@pytest.mark.parametrize("fmt", sorted(formats.TEMPLATES))
def test_every_template_is_a_valid_file(fmt):
    response = APIClient().get(f"/api/formats/{fmt}/template")
    assert response.status_code == 200
    assert response["Content-Type"] == formats.FORMATS[fmt].mime_types[0]
    assert response["Content-Disposition"].startswith("attachment;")
    body = response.content
    if fmt in ("png", "jpeg", "webp", "gif", "bmp", "tiff", "ico"):
        from PIL import Image

        image = Image.open(io.BytesIO(body))
        image.load()
        assert image.size[0] > 0
    elif fmt == "pdf":
        from pypdf import PdfReader

        assert len(PdfReader(io.BytesIO(body)).pages) == 1
    elif fmt == "json":
        assert len(json.loads(body)) == 3
    elif fmt == "xlsx":
        from openpyxl import load_workbook

        assert load_workbook(io.BytesIO(body)).active.max_row == 4
    elif fmt == "yaml":
        import yaml

        assert yaml.safe_load(body)[0]["name"] == "Ada Lovelace"
    elif fmt == "wav":
        import wave

        with wave.open(io.BytesIO(body)) as w:
            assert w.getnframes() == 8000
    else:
        assert body.strip()


def test_template_without_generator_is_404():
    assert_error(APIClient().get("/api/formats/docx/template"), 404, "NO_TEMPLATE")


def test_metadata_help():
    body = data_of(APIClient().get("/api/help/metadata"))
    assert body["title"] and {c["id"] for c in body["containers"]} >= {"exif", "id3", "pdf-info"}
