"""The review beat tasks through a real Celery worker (the broker of the settings: the
file-system transport in the embedded mode, Redis when REDIS_URL is set), as beat would
send them: by name, with no arguments."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from fileconvert import storage
from review.models import ReviewEscalation
from tests.conftest import data_of
from tests.review.conftest import png
from tests.uploads.test_worker_pipeline import _wait_for, celery_worker_thread  # noqa: F401  (fixture)
from uploads.models import FileStatus, StoredFile


def staged_by_worker(persona, name: str, data: bytes) -> StoredFile:
    """Upload; the worker processes it (the org requires review, the default) and stages it."""
    files = {"files": [SimpleUploadedFile(name, data, content_type="application/octet-stream")]}
    file_id = data_of(persona.client().post("/upload", files, format="multipart"), 201)["tasks"][0]["file_id"]
    staged = _wait_for(lambda: StoredFile.objects.filter(pk=file_id, status=FileStatus.STAGED).first())
    assert staged is not None, f"not staged by the worker: {StoredFile.objects.get(pk=file_id).status}"
    return staged


def sent_by_beat(name: str) -> None:
    from fileconvert.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == name)
    app.send_task(entry["task"], args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))


@pytest.mark.django_db(transaction=True)
def test_overdue_policy_and_purge_run_on_a_worker(member, celery_worker_thread):  # noqa: F811
    late = staged_by_worker(member, "late.png", png())
    rejected = staged_by_worker(member, "bad.png", png(color=(1, 1, 1)))
    StoredFile.objects.filter(pk=late.pk).update(review_expires_at=late.review_expires_at - timedelta(days=8))
    from review import services

    services.file_reject(actor=None, file=rejected, reason="no")

    sent_by_beat("review.tasks.apply_overdue_policy")
    assert _wait_for(lambda: ReviewEscalation.objects.filter(file_id=late.pk).exists()), "not escalated by the worker"

    with override_settings(FILECONVERT={**settings.FILECONVERT, "REVIEW_REJECTED_RETENTION_DAYS": 0}):
        sent_by_beat("review.tasks.purge_rejected")
        assert _wait_for(lambda: not StoredFile.objects.filter(pk=rejected.pk).exists()), "not purged by the worker"
    assert storage.object_size(rejected.storage_key) is None
    ran = {name: thread for name, _args, thread in celery_worker_thread}
    assert {"review.tasks.apply_overdue_policy", "review.tasks.purge_rejected"} <= set(ran)
    assert ran["review.tasks.purge_rejected"] != threading.current_thread().name
