"""The claim (one UPDATE ... RETURNING where the database has it), and what POST /api/convert
publishes after its commit."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.forms.models import model_to_dict
from PIL import Image

from accounts.models import AuditEvent
from conversions import engine, services
from conversions.models import ConversionJob, JobStatus
from fileconvert import broker, fastsql
from tests.conftest import data_of, record_published
from uploads import services as upload_services
from uploads.models import FileStatus, StoredFile

pytestmark = pytest.mark.django_db


def tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def convert(member, **form):
    body = {"file": SimpleUploadedFile("t.png", tiny_png()), "target_format": "jpeg", **form}
    return data_of(member.client().post("/api/convert", body, format="multipart"), 202)


@pytest.fixture
def queued_job(member, monkeypatch):
    monkeypatch.setattr(services, "job_publish", lambda job_id: None)
    job = convert(member, options='{"width": 4, "quality": 70}')
    return ConversionJob.objects.get(pk=job["id"])


def test_the_claimed_job_is_the_row_as_stored(queued_job):
    claimed = engine.job_claim(queued_job.pk)
    stored = ConversionJob.objects.get(pk=queued_job.pk)
    assert claimed is not None
    assert model_to_dict(claimed) == model_to_dict(stored)  # every field, converted like the ORM does
    assert claimed.status == JobStatus.RUNNING and claimed.attempts == 1
    assert claimed.claimed_by == engine.worker_token()
    assert claimed.started_at == stored.started_at and claimed.started_at.tzinfo is not None
    assert claimed.options == {"width": 4, "quality": 70} | {
        k: v for k, v in stored.options.items() if k not in ("width", "quality")
    }
    assert claimed.source.pk == queued_job.source_id  # loaded on first use


def test_a_second_claim_of_the_same_job_gets_nothing(queued_job):
    assert engine.job_claim(queued_job.pk) is not None
    assert engine.job_claim(queued_job.pk) is None
    assert ConversionJob.objects.get(pk=queued_job.pk).attempts == 1


def test_an_unknown_job_is_not_claimed(db):
    assert engine.job_claim("cjb_nope") is None


def test_a_running_job_of_a_dead_process_is_taken_over(queued_job):
    import socket

    dead = f"{socket.gethostname()}:{2**22 + 12345}"  # above pid_max's default: no such process
    ConversionJob.objects.filter(pk=queued_job.pk).update(status=JobStatus.RUNNING, claimed_by=dead, attempts=1)
    claimed = engine.job_claim(queued_job.pk)
    assert claimed is not None and claimed.claimed_by == engine.worker_token() and claimed.attempts == 2


def test_claim_uses_update_returning_where_the_database_has_it(queued_job, django_assert_max_num_queries):
    if not fastsql.supports_update_returning():
        pytest.skip(f"{connection.vendor} {connection.Database.__name__}: UPDATE ... RETURNING is not available")
    with django_assert_max_num_queries(1):
        assert engine.job_claim(queued_job.pk) is not None


def test_convert_publishes_the_job_before_the_sources_processing(member, monkeypatch, django_capture_on_commit_callbacks):
    order: list[tuple[str, str]] = []
    monkeypatch.setattr(services, "job_publish", lambda job_id: order.append(("job", job_id)))
    monkeypatch.setattr(upload_services, "publish_processing", lambda file_id: order.append(("process", file_id)))
    with django_capture_on_commit_callbacks(execute=True):
        job = convert(member)
    assert order == [("job", job["id"]), ("process", job["source_file_id"])]


def test_sources_are_recorded_as_enqueued_in_their_own_commit(member, monkeypatch):
    """No UPDATE after the commit: the row says when processing was published, so the
    sweeper republishes a lost message."""
    monkeypatch.setattr(services, "job_publish", lambda job_id: None)
    job = convert(member)
    source = StoredFile.objects.get(pk=job["source_file_id"])
    assert source.status == FileStatus.PROCESSING and source.process_enqueued_at is not None
    assert source.process_enqueued_at == source.confirmed_at


def test_a_broker_failure_for_the_sources_processing_loses_nothing(
    member, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from uploads import tasks as upload_tasks

    published: list[str] = []
    monkeypatch.setattr(services, "job_publish", lambda job_id: published.append(job_id))

    def broker_down(task, *args):
        assert task is upload_tasks.process_file
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(broker, "publish", broker_down)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        job = convert(member)
    assert published == [job["id"]]  # the job went out although the source's processing did not
    assert "could not publish processing" in caplog.text
    # The sweeper finds the source once it is old enough and publishes it again.
    StoredFile.objects.filter(pk=job["source_file_id"]).update(
        process_enqueued_at=StoredFile.objects.get(pk=job["source_file_id"]).process_enqueued_at - timedelta(hours=1)
    )
    monkeypatch.undo()
    republished = record_published(monkeypatch, "uploads.tasks.process_file")
    assert upload_services.file_reprocess_if_stuck() >= 1
    assert job["source_file_id"] in republished


def test_a_failed_progress_write_does_not_end_the_job(queued_job):
    """Progress is advisory: a locked database at a progress write is skipped, the next one
    goes through and still checks that the job is ours."""
    from django.db import OperationalError

    job = engine.job_claim(queued_job.pk)
    progress = engine._Progress(job)
    progress.last_write -= 10  # due now

    def locked(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and "progress" in sql:
            raise OperationalError("database table is locked")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(locked):
        progress({"progress": 40})  # skipped, no exception
    assert ConversionJob.objects.get(pk=job.pk).progress == 0
    progress({"progress": 41})  # not yet: the next write is due an interval after the failed one
    assert ConversionJob.objects.get(pk=job.pk).progress == 0
    progress.last_write -= 10
    progress({"progress": 42})
    assert ConversionJob.objects.get(pk=job.pk).progress == 42
    ConversionJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELED)
    progress.last_write -= 10
    with pytest.raises(engine.JobReleased):
        progress({"progress": 60})


def test_celerys_soft_limit_inside_an_inline_conversion_is_a_timeout():
    from celery.exceptions import SoftTimeLimitExceeded

    def overran(_send):
        raise SoftTimeLimitExceeded()

    result = engine._run_inline(overran)
    assert result.timed_out and result.value is None
    assert engine._failure(result.error)[0] == "TIMEOUT"


def _actor(persona):
    from accounts.identity import MODE_API_KEY, Identity
    from accounts.scopes import ROLE_SCOPES

    return Identity(org=persona.org, user=persona.user, role=persona.role, mode=MODE_API_KEY, scopes=ROLE_SCOPES[persona.role])


def _committed(job_id: str) -> bool:
    """Seen by another session: committed, not only written in this one's transaction."""
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM conversions_conversionjob WHERE id = %s", [job_id])
            return cursor.fetchone() == (1,)
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
class TestJobCreatePublishes:
    """``job_create`` has no transaction of its own: its two INSERTs are one batch, and the
    job is published once they are committed, the caller's transaction included."""

    @pytest.fixture
    def source(self, member, monkeypatch):
        monkeypatch.setattr(services, "job_publish", lambda job_id: None)
        return StoredFile.objects.get(pk=convert(member)["source_file_id"])

    def test_outside_a_transaction_it_publishes_after_its_batch_committed(self, member, source, monkeypatch):
        seen: list[tuple[str, bool]] = []
        monkeypatch.setattr(services, "job_publish", lambda job_id: seen.append((job_id, _committed(job_id))))
        job = services.job_create(actor=_actor(member), source=source, target_format="jpeg")
        assert seen == [(job.pk, True)]
        assert AuditEvent.objects.filter(action="conversion.create", target_id=job.pk).count() == 1

    def test_inside_the_callers_transaction_it_publishes_at_the_callers_commit(self, member, source, monkeypatch):
        from django.db import transaction

        seen: list[str] = []
        monkeypatch.setattr(services, "job_publish", seen.append)
        with transaction.atomic():
            job = services.job_create(actor=_actor(member), source=source, target_format="jpeg")
            assert seen == [] and not _committed(job.pk)
        assert seen == [job.pk] and _committed(job.pk)
        with transaction.atomic():
            lost = services.job_create(actor=_actor(member), source=source, target_format="jpeg")
            transaction.set_rollback(True)
        assert seen == [job.pk] and not ConversionJob.objects.filter(pk=lost.pk).exists()

    def test_a_failed_audit_row_leaves_no_job_and_publishes_nothing(self, member, source, monkeypatch):
        from django.db import IntegrityError

        seen: list[str] = []
        monkeypatch.setattr(services, "job_publish", seen.append)
        taken = AuditEvent.objects.first().pk
        real_event = services.audit_event

        def clashing(**kwargs):
            event = real_event(**kwargs)
            event.pk = taken  # the second INSERT of the batch fails on the primary key
            return event

        monkeypatch.setattr(services, "audit_event", clashing)
        before = ConversionJob.objects.count()
        with pytest.raises(IntegrityError):
            services.job_create(actor=_actor(member), source=source, target_format="jpeg")
        assert seen == [] and ConversionJob.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_failed_job_is_finished_in_one_statement_outside_a_transaction(queued_job, monkeypatch):
    """job_fail (and every finish without an output) commits its transition and audit row
    together without an atomic block of its own on PostgreSQL (one round trip)."""
    from django.db import connections

    job = engine.job_claim(queued_job.pk)
    wrapper = connections["default"]
    commits: list[bool] = []
    real_commit = type(wrapper).commit
    monkeypatch.setattr(type(wrapper), "commit", lambda self: commits.append(True) or real_commit(self))
    assert services.job_fail(job=job, code="BROKEN", message="it broke") is True
    assert commits == ([] if connection.vendor == "postgresql" else [True])
    assert ConversionJob.objects.get(pk=job.pk).status == JobStatus.FAILED
    assert AuditEvent.objects.filter(action="conversion.fail", target_id=job.pk).count() == 1
