"""Canceling or deleting a running job stops its conversion: the next progress write finds
the row no longer ours (or gone), the sandboxed child is killed, and no output is recorded."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from conversions import engine
from conversions.converters.images import ImageConverter
from conversions.models import ConversionJob, JobStatus
from tests.conftest import data_of
from tests.conversions import samples
from uploads.models import StoredFile


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_cancel_or_delete_kills_a_running_conversion(member, monkeypatch, how):
    def slow(self, src, source, dst, target, options, ctx):
        for step in range(200):  # 10 s if nobody stops it
            ctx.progress(step, 200)
            time.sleep(0.05)
        dst.write_bytes(b"never")
        return {}

    monkeypatch.setattr(ImageConverter, "convert", slow)
    client = member.client()
    form = {"file": SimpleUploadedFile("a.png", samples.image_bytes("png")), "target_format": "webp"}
    job = data_of(client.post("/api/convert", form, format="multipart"), 202)
    canceled = []

    def cancel() -> None:
        try:
            path = f"/api/conversion-jobs/{member.org.pk}/{job['id']}"
            client = member.client()
            response = client.post(f"{path}/cancel") if how == "cancel" else client.delete(path)
            canceled.append(response.status_code)
        finally:
            connections.close_all()

    timer = threading.Timer(1.5, cancel)
    timer.start()
    started = time.monotonic()
    outcome = engine.job_run(job_id=job["id"])
    elapsed = time.monotonic() - started
    timer.join()

    assert canceled == [200 if how == "cancel" else 204]
    assert outcome == "canceled" and elapsed < 5, (outcome, elapsed)
    if how == "cancel":
        row = ConversionJob.objects.get(pk=job["id"])
        assert row.status == JobStatus.CANCELED and row.result_id is None
    else:
        assert not ConversionJob.objects.filter(pk=job["id"]).exists()
    assert not StoredFile.objects.filter(parent_id=job["source_file_id"]).exists()
