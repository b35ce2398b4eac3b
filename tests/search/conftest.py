"""Search fixtures: Celery in eager mode (the real tasks, run inline) and helpers that
take a file through the real pipeline: upload API -> processing -> file_activated ->
index task, so every indexed document here came through the signal contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accounts.models import OrgSetting
from tests.conftest import Persona
from tests.s3 import moto_server, s3_storage  # noqa: F401 - S3 fixtures for test_s3
from tests.uploads.filebytes import upload_file
from uploads.models import FileStatus, ReviewState, StoredFile
from uploads.signals import file_activated, file_withdrawn, send_on_commit


@pytest.fixture
def eager_celery() -> Iterator[None]:
    from fileconvert.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def set_review(org, required: bool) -> None:
    OrgSetting.objects.update_or_create(organization=org, key="review.required", defaults={"value": required})


@pytest.fixture
def no_review(org_a, org_b) -> None:
    set_review(org_a, False)
    set_review(org_b, False)


@pytest.fixture
def put(eager_celery, django_capture_on_commit_callbacks):
    """``put(persona, name, bytes, **init_fields)``: upload and run every follow-up task."""

    def upload(persona: Persona, name: str, data: bytes, **fields) -> StoredFile:
        with django_capture_on_commit_callbacks(execute=True):
            uploaded = upload_file(persona.client(), data, filename=name, **fields)
        return StoredFile.objects.get(pk=uploaded["id"])

    return upload


@pytest.fixture
def decide(eager_celery, django_capture_on_commit_callbacks):
    """The review app's transitions as the signal contract states them (approve sends
    file_activated, reject file_withdrawn, both on commit); the review service itself
    is tested in tests/review."""

    def transition(stored: StoredFile, approve: bool) -> StoredFile:
        with django_capture_on_commit_callbacks(execute=True):
            if approve:
                StoredFile.objects.filter(pk=stored.pk).update(status=FileStatus.ACTIVE, review_state=ReviewState.APPROVED)
                send_on_commit(file_activated, file_id=stored.pk, organization_id=stored.organization_id)
            else:
                StoredFile.objects.filter(pk=stored.pk).update(review_state=ReviewState.REJECTED, review_reason="no")
                send_on_commit(file_withdrawn, file_id=stored.pk, organization_id=stored.organization_id)
        stored.refresh_from_db()
        return stored

    return transition
