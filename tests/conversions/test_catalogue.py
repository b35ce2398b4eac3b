"""Seed 004 Reference: the public format catalogue, templates, the metadata guide."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree

import pytest
from rest_framework.test import APIClient

from conversions import formats, templates
from tests.conftest import assert_error, data_of
from tests.conversions import samples

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


def test_every_format_has_a_template():
    assert set(formats.TEMPLATES) == set(formats.FORMATS)


@pytest.mark.parametrize("fmt", sorted(formats.TEMPLATES))
def test_every_template_is_a_valid_file(fmt, tmp_path):
    if fmt in templates.MEDIA_FORMATS and not samples.HAS_FFMPEG:
        pytest.skip("ffmpeg is not installed")
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
    elif fmt in templates.MEDIA_FORMATS:
        info = samples.probe(body, tmp_path, f".{fmt}")
        kinds = {s["codec_type"] for s in info["streams"]}
        assert kinds == ({"video", "audio"} if fmt in ("mp4", "webm") else {"audio"})
        assert 0.8 <= float(info["format"]["duration"]) <= 1.3
    elif fmt == "docx":
        import docx

        assert docx.Document(io.BytesIO(body)).paragraphs[0].text == templates.TITLE
    elif fmt in ("pptx", "odt", "ods", "odp"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert archive.testzip() is None
            names = archive.namelist()
            for name in names:
                if name.endswith(".xml"):
                    ElementTree.fromstring(archive.read(name))  # well-formed
            if fmt != "pptx":  # ODF: the mimetype first and stored, as the standard asks
                assert names[0] == "mimetype" and archive.infolist()[0].compress_type == zipfile.ZIP_STORED
                assert archive.read("mimetype").decode() == formats.FORMATS[fmt].mime_types[0]
    else:
        assert body.strip()
    # and the platform itself recognises what it made
    from uploads.sniff import sniff

    assert sniff(io.BytesIO(body), f"example.{formats.FORMATS[fmt].extensions[0]}").kind == fmt


def test_without_ffmpeg_the_media_templates_are_404(monkeypatch):
    import shutil

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "ffmpeg" else real_which(name, *a, **k))
    monkeypatch.setattr(templates, "_made", {})
    monkeypatch.setattr(templates, "_failed", {})
    assert_error(APIClient().get("/api/formats/mp3/template"), 404, "NO_TEMPLATE")
    assert data_of(APIClient().get("/api/formats/mp3"))["template"] is False  # and the catalogue says so
    assert data_of(APIClient().get("/api/formats/docx"))["template"] is True


def test_a_failed_media_template_is_tried_again_later_not_by_every_request(monkeypatch):
    if not samples.HAS_FFMPEG:
        pytest.skip("ffmpeg is not installed")
    monkeypatch.setattr(templates, "_made", {})
    monkeypatch.setattr(templates, "_failed", {})
    real_encode, runs = templates._encode, []

    def failing(fmt):
        runs.append(fmt)

    monkeypatch.setattr(templates, "_encode", failing)
    for _ in range(3):
        assert_error(APIClient().get("/api/formats/ogg/template"), 404, "NO_TEMPLATE")
    assert runs == ["ogg"]  # one failed run, then 404 without running ffmpeg again
    assert data_of(APIClient().get("/api/formats/ogg"))["template"] is False
    monkeypatch.setattr(templates, "_encode", real_encode)
    monkeypatch.setattr(templates, "RETRY_AFTER_SECONDS", -1)  # later: tried again
    assert APIClient().get("/api/formats/ogg/template").status_code == 200


def test_metadata_help():
    body = data_of(APIClient().get("/api/help/metadata"))
    assert body["title"] and {c["id"] for c in body["containers"]} >= {"exif", "id3", "pdf-info"}
