"""A conversion through a real Celery worker: API -> on_commit -> broker -> worker -> DB.

Same set-up as tests/uploads/test_worker_pipeline.py: the worker runs in a thread of
this test process and consumes this xdist worker's own queue (file-system broker, or
Redis when REDIS_URL is set); the test is transactional so on_commit really fires.
"""

from __future__ import annotations

import io
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from PIL import Image

from conversions.models import ConversionJob, JobStatus
from tests.conftest import data_of
from tests.conversions import samples
from tests.uploads.filebytes import stored_bytes
from tests.uploads.test_worker_pipeline import celery_worker_thread  # noqa: F401  fixture
from uploads.models import FileStatus, StoredFile


def _wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except OperationalError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    return None


@pytest.mark.django_db(transaction=True)
def test_convert_through_a_real_worker(member, celery_worker_thread):  # noqa: F811
    client = member.client()
    form = {"file": SimpleUploadedFile("photo.jpg", samples.jpeg_with_exif((400, 300), orientation=1)), "target_format": "webp"}
    job = data_of(client.post("/api/convert", {**form, "options": '{"width": 100}'}, format="multipart"), 202)

    def finished():
        row = ConversionJob.objects.get(pk=job["id"])
        return row if row.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None

    row = _wait(finished)
    assert row is not None, ConversionJob.objects.get(pk=job["id"]).status
    assert row.status == JobStatus.SUCCEEDED, (row.error_code, row.error_message)
    assert row.attempts == 1 and row.progress == 100 and row.enqueued_at is not None
    ran = [name for name, args, _thread in celery_worker_thread if args == (job["id"],)]
    assert ran == ["conversions.tasks.run_job"]
    image = Image.open(io.BytesIO(stored_bytes(row.result.storage_key)))
    assert image.format == "WEBP" and image.size == (100, 75)
    # The output then goes through the uploads pipeline like any upload.
    output = _wait(lambda: StoredFile.objects.filter(pk=row.result_id, status__in=[FileStatus.ACTIVE, FileStatus.STAGED]).first())
    assert output is not None and output.kind == "webp" and output.parent_id == job["source_file_id"]
    status = data_of(client.get(f"/status-api/{job['id']}"))
    assert status["status"] == "succeeded" and "/download?dl=" in status["result"]["download_url"]
