"""Conversions with the bytes in S3 (moto's real S3 API): sniffing an Office container
from the object, local copies for the converter, the output streamed back to S3."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from conversions import engine
from conversions.models import ConversionJob, JobStatus
from tests.conftest import data_of
from tests.conversions import samples

pytestmark = pytest.mark.django_db


def test_one_shot_on_s3(member, s3_storage):
    client = member.client()
    form = {"file": SimpleUploadedFile("pic.png", samples.image_bytes("png", (80, 40))), "target_format": "webp"}
    job = data_of(client.post("/api/convert", {**form, "options": json.dumps({"width": 40})}, format="multipart"), 202)
    engine.job_run(job_id=job["id"])
    done = ConversionJob.objects.select_related("result").get(pk=job["id"])
    assert done.status == JobStatus.SUCCEEDED, done.error_message
    stored_keys = s3_storage.keys()
    assert done.result.storage_key in stored_keys
    image = Image.open(io.BytesIO(s3_storage.get(done.result.storage_key)))
    assert image.format == "WEBP" and image.size == (40, 20)


def test_xlsx_recognised_from_the_s3_object(member, s3_storage):
    client = member.client()
    book = samples.xlsx_bytes([["name", "n"], ["a", 1]])
    form = {"file": SimpleUploadedFile("book.bin", book), "target_format": "csv"}
    job = data_of(client.post("/api/convert", form, format="multipart"), 202)
    assert job["source_format"] == "xlsx"
    engine.job_run(job_id=job["id"])
    done = ConversionJob.objects.select_related("result").get(pk=job["id"])
    assert done.status == JobStatus.SUCCEEDED, done.error_message
    assert s3_storage.get(done.result.storage_key).decode().splitlines() == ["name,n", "a,1"]
