"""Finishing a job (``services.result_record``): the conditional UPDATE decides, and a job
that stopped being ours, or an output over the quota, leaves no file row and no bytes."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, Organization
from conversions import engine, services
from conversions.models import ConversionJob, JobStatus
from fileconvert import storage
from tests.conversions.test_claim import queued_job  # noqa: F401  (fixture)
from uploads.models import StoredFile

pytestmark = pytest.mark.django_db


def outputs_of(job: ConversionJob) -> list[StoredFile]:
    return list(StoredFile.objects.filter(parent_id=job.source_id))


def capture_store(monkeypatch, before_record=None) -> list[str]:
    """Keys the engine stored; ``before_record(key)`` runs between storing and recording."""
    keys: list[str] = []
    real_store = storage.store_file

    def store(path, key, content_type):
        out = real_store(path, key, content_type)
        keys.append(key)
        if before_record:
            before_record(key)
        return out

    monkeypatch.setattr(storage, "store_file", store)
    return keys


def test_success_records_the_output_the_job_and_the_audit(queued_job):  # noqa: F811
    assert engine.job_run(job_id=queued_job.pk) == "succeeded"
    job = ConversionJob.objects.get(pk=queued_job.pk)
    (output,) = outputs_of(job)
    assert job.status == JobStatus.SUCCEEDED and job.progress == 100 and job.result_id == output.pk
    assert job.facts["width"] == 4 and job.finished_at is not None and job.error_code == ""
    assert output.organization_id == job.organization_id and output.confirmed_at is not None
    assert output.metadata["conversion"]["job_id"] == job.pk and output.size == storage.object_size(output.storage_key)
    event = AuditEvent.objects.get(action="conversion.succeed", target_id=job.pk)
    assert event.details == {"result_id": output.pk, "size": output.size, "target_format": "jpeg"}
    assert event.organization_id == job.organization_id and event.actor_label == "system"


def _usage_unchanged_since(before: tuple[int, int], org_id: str) -> bool:
    """The storage usage counter says what it said before, and what the files say."""
    from fileconvert.usage import storage_usage, storage_usage_recount

    return storage_usage(org_id) == before == storage_usage_recount(org_id)


def test_a_job_canceled_while_converting_keeps_no_output(queued_job, member, monkeypatch):  # noqa: F811
    from fileconvert.usage import storage_usage
    from tests.conftest import data_of

    before = storage_usage(queued_job.organization_id)

    def cancel(_key):
        data_of(member.client().post(f"/api/conversion-jobs/{queued_job.organization_id}/{queued_job.pk}/cancel"), 200)

    keys = capture_store(monkeypatch, before_record=cancel)
    assert engine.job_run(job_id=queued_job.pk) == "skipped"
    job = ConversionJob.objects.get(pk=queued_job.pk)
    assert job.status == JobStatus.CANCELED and job.result_id is None
    assert outputs_of(job) == []
    assert keys and storage.object_size(keys[0]) is None  # the stored bytes were dropped
    assert not AuditEvent.objects.filter(action="conversion.succeed", target_id=job.pk).exists()
    assert _usage_unchanged_since(before, job.organization_id)


def test_a_job_taken_over_meanwhile_is_not_finished_by_the_old_claim(queued_job, monkeypatch):  # noqa: F811
    from fileconvert.usage import storage_usage

    before = storage_usage(queued_job.organization_id)

    def take_over(_key):
        ConversionJob.objects.filter(pk=queued_job.pk).update(claimed_by="elsewhere:1")

    keys = capture_store(monkeypatch, before_record=take_over)
    assert engine.job_run(job_id=queued_job.pk) == "skipped"
    job = ConversionJob.objects.get(pk=queued_job.pk)
    assert (job.status, job.claimed_by, job.result_id) == (JobStatus.RUNNING, "elsewhere:1", None)
    assert outputs_of(job) == [] and storage.object_size(keys[0]) is None
    assert _usage_unchanged_since(before, job.organization_id)


def _over_the_quota_fails_the_job_and_keeps_nothing(job: ConversionJob, monkeypatch) -> None:
    from fileconvert.usage import storage_usage

    before = storage_usage(job.organization_id)
    Organization.objects.filter(pk=job.organization_id).update(storage_quota_bytes=before[0] + 1)
    keys = capture_store(monkeypatch)
    assert engine.job_run(job_id=job.pk) == "failed"
    job = ConversionJob.objects.get(pk=job.pk)
    assert (job.status, job.error_code, job.result_id) == (JobStatus.FAILED, "QUOTA_EXCEEDED", None)
    assert outputs_of(job) == [] and storage.object_size(keys[0]) is None
    assert AuditEvent.objects.filter(action="conversion.fail", target_id=job.pk).exists()
    assert not AuditEvent.objects.filter(action="conversion.succeed", target_id=job.pk).exists()
    assert _usage_unchanged_since(before, job.organization_id)  # the output's INSERT was rolled back


def test_an_output_over_the_quota_fails_the_job_and_keeps_nothing(queued_job, monkeypatch):  # noqa: F811
    _over_the_quota_fails_the_job_and_keeps_nothing(queued_job, monkeypatch)


@pytest.mark.django_db(transaction=True)
def test_an_output_over_the_quota_outside_a_test_transaction_keeps_nothing(queued_job, monkeypatch):  # noqa: F811
    # As a worker runs it: the finish's own transaction (not the test's) is rolled back.
    _over_the_quota_fails_the_job_and_keeps_nothing(queued_job, monkeypatch)


def test_the_file_quota_counts_too(queued_job, monkeypatch):  # noqa: F811
    from fileconvert.usage import storage_usage

    _used, files = storage_usage(queued_job.organization_id)
    Organization.objects.filter(pk=queued_job.organization_id).update(file_quota=files)
    capture_store(monkeypatch)
    assert engine.job_run(job_id=queued_job.pk) == "failed"
    assert ConversionJob.objects.get(pk=queued_job.pk).error_code == "QUOTA_EXCEEDED"


@pytest.mark.parametrize("limit", ["bytes", "files"])
def test_an_output_that_exactly_fills_the_quota_is_recorded(queued_job, monkeypatch, limit):  # noqa: F811
    # The usage is read before the output's INSERT in the same batch: counted once, not twice.
    from fileconvert.usage import storage_usage, storage_usage_recount

    used, files = storage_usage(queued_job.organization_id)
    org = Organization.objects.filter(pk=queued_job.organization_id)

    def fit_exactly(key):  # the output's size is known once it is stored
        if limit == "bytes":
            org.update(storage_quota_bytes=used + storage.object_size(key))
        else:
            org.update(file_quota=files + 1)

    capture_store(monkeypatch, before_record=fit_exactly)
    assert engine.job_run(job_id=queued_job.pk) == "succeeded"
    assert storage_usage(queued_job.organization_id) == storage_usage_recount(queued_job.organization_id)
    assert storage_usage(queued_job.organization_id)[1] == files + 1


def test_a_job_deleted_while_converting_leaves_nothing_behind(queued_job, member, monkeypatch):  # noqa: F811
    # DELETE between the output's storing and its recording: the finish finds no row, the bytes go.
    path = f"/api/conversion-jobs/{queued_job.organization_id}/{queued_job.pk}"
    keys = capture_store(monkeypatch, before_record=lambda _key: member.client().delete(path))
    assert engine.job_run(job_id=queued_job.pk) == "skipped"
    assert not ConversionJob.objects.filter(pk=queued_job.pk).exists()
    assert storage.object_size(keys[0]) is None and outputs_of(queued_job) == []
    assert AuditEvent.objects.filter(action="conversion.delete", target_id=queued_job.pk).get().details["status"] == "running"


def test_a_source_deleted_while_converting_leaves_nothing_behind(queued_job, monkeypatch):  # noqa: F811
    # The claim reads the source with the job (one statement on PostgreSQL). A user deleting
    # the source meanwhile deletes its jobs too (CASCADE): the finish finds no row to move,
    # writes nothing, and the stored bytes go.
    keys = capture_store(monkeypatch, before_record=lambda _key: StoredFile.objects.filter(pk=queued_job.source_id).delete())
    assert engine.job_run(job_id=queued_job.pk) == "skipped"
    assert not ConversionJob.objects.filter(pk=queued_job.pk).exists()
    assert storage.object_size(keys[0]) is None
    assert not StoredFile.objects.filter(storage_key=keys[0]).exists()
    assert not AuditEvent.objects.filter(action="conversion.succeed", target_id=queued_job.pk).exists()


def test_the_claim_brings_the_source_row_with_the_job(queued_job, django_assert_max_num_queries):  # noqa: F811
    from django.db import connection

    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 2):
        claimed = engine.job_claim(queued_job.pk)
        assert claimed is not None
        source = claimed.source
    stored = StoredFile.objects.get(pk=queued_job.source_id)
    assert {f.attname: getattr(source, f.attname) for f in StoredFile._meta.concrete_fields} == {
        f.attname: getattr(stored, f.attname) for f in StoredFile._meta.concrete_fields
    }


def test_job_transition_is_conditional_on_the_claim(queued_job):  # noqa: F811
    job = engine.job_claim(queued_job.pk)
    other = ConversionJob.objects.get(pk=job.pk)
    other.claimed_by = "someone-else:2"
    from fileconvert import fastsql

    def moved(of: ConversionJob, **values) -> int:
        return fastsql.run([services.job_transition_statement(of, **values)])[0].rowcount

    assert moved(other, status=JobStatus.FAILED) == 0
    assert moved(job, progress=50) == 1
    assert ConversionJob.objects.get(pk=job.pk).progress == 50


def test_job_fail_writes_its_audit_row_only_when_the_transition_happens(queued_job):  # noqa: F811
    job = engine.job_claim(queued_job.pk)
    other = ConversionJob.objects.get(pk=job.pk)
    other.claimed_by = "someone-else:2"
    # Not ours: the transition and its audit row went together, and both are rolled back.
    assert services.job_fail(job=other, code="X", message="no") is False
    assert ConversionJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert not AuditEvent.objects.filter(action="conversion.fail", target_id=job.pk).exists()
    assert services.job_fail(job=job, code="BROKEN", message="it broke") is True
    stored = ConversionJob.objects.get(pk=job.pk)
    assert (stored.status, stored.error_code, stored.error_message) == (JobStatus.FAILED, "BROKEN", "it broke")
    event = AuditEvent.objects.get(action="conversion.fail", target_id=job.pk)
    assert event.details == {"code": "BROKEN", "message": "it broke"} and event.organization_id == job.organization_id
    assert services.job_fail(job=job, code="AGAIN", message="twice") is False  # finished: nothing moves
    assert AuditEvent.objects.filter(action="conversion.fail", target_id=job.pk).count() == 1


def test_a_noop_job_finishes_once(queued_job):  # noqa: F811
    assert engine.job_noop(job_id=queued_job.pk) == "succeeded"
    assert engine.job_noop(job_id=queued_job.pk) == "skipped"
    assert ConversionJob.objects.get(pk=queued_job.pk).status == JobStatus.SUCCEEDED
    assert AuditEvent.objects.filter(action="conversion.succeed", target_id=queued_job.pk).count() == 1


def _finish_then_lose_the_connection(monkeypatch, *, committed: bool) -> None:
    """``result_record`` raising what psycopg raises when the connection drops at COMMIT:
    after the finish committed (the reply was lost) or before anything was written."""
    from django.db import OperationalError

    real = services.result_record

    def record(**kwargs):
        if committed:
            real(**kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "result_record", record)


@pytest.mark.django_db(transaction=True)
def test_a_finish_whose_commit_reply_was_lost_keeps_the_bytes_its_row_points_at(queued_job, monkeypatch):  # noqa: F811
    from django.db import OperationalError

    keys = capture_store(monkeypatch)
    _finish_then_lose_the_connection(monkeypatch, committed=True)
    with pytest.raises(OperationalError):  # the task retries on it
        engine.job_run(job_id=queued_job.pk)
    (output,) = outputs_of(queued_job)
    assert output.storage_key == keys[0] and storage.object_size(keys[0]) == output.size
    assert ConversionJob.objects.get(pk=queued_job.pk).result_id == output.pk


@pytest.mark.django_db(transaction=True)
def test_a_finish_lost_before_it_wrote_drops_its_bytes(queued_job, monkeypatch):  # noqa: F811
    from django.db import OperationalError

    keys = capture_store(monkeypatch)
    _finish_then_lose_the_connection(monkeypatch, committed=False)
    with pytest.raises(OperationalError):
        engine.job_run(job_id=queued_job.pk)
    assert outputs_of(queued_job) == [] and storage.object_size(keys[0]) is None


def test_a_visibility_changed_while_converting_is_the_outputs(queued_job, member, monkeypatch):  # noqa: F811
    # PATCH is allowed until the output exists; the finish must not give the output the
    # visibility it read when it claimed the job (a file made private could come out public).
    path = f"/api/conversion-jobs/{queued_job.organization_id}/{queued_job.pk}"
    assert queued_job.visibility != "public"

    def patch(_key):
        from tests.conftest import data_of

        data_of(member.client().patch(path, {"visibility": "public"}, format="json"), 200)

    capture_store(monkeypatch, before_record=patch)
    assert engine.job_run(job_id=queued_job.pk) == "succeeded"
    job = ConversionJob.objects.get(pk=queued_job.pk)
    (output,) = outputs_of(job)
    assert (job.visibility, output.visibility, job.result_id) == ("public", "public", output.pk)
    assert AuditEvent.objects.filter(action="conversion.succeed", target_id=job.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_finishes_racing_for_the_last_file_of_the_quota_record_one(queued_job, member, monkeypatch):  # noqa: F811
    # The organization's row is locked before the quota is read: while a third transaction
    # holds it, both finishes wait; once it is released, the second to get it sees the
    # first's output counted and is refused. Without that lock both would fit and commit.
    import threading
    import time

    from django.db import connection, connections

    from fileconvert.usage import storage_usage
    from tests.conversions.test_claim import convert

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    other = ConversionJob.objects.get(pk=convert(member, options='{"width": 4, "quality": 70}')["id"])
    org_id = queued_job.organization_id
    _bytes, files = storage_usage(org_id)
    Organization.objects.filter(pk=org_id).update(file_quota=files + 1)
    outcomes: dict[str, str] = {}

    def run(job_id: str) -> None:
        try:
            outcomes[job_id] = engine.job_run(job_id=job_id)
        finally:
            connections.close_all()

    holder = connections.create_connection("default")
    holder.ensure_connection()
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT 1 FROM accounts_organization WHERE id = %s FOR NO KEY UPDATE", [org_id])
    threads = [threading.Thread(target=run, args=(job.pk,)) for job in (queued_job, other)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        waiting = 0
        while waiting < 2 and time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                waiting = cursor.fetchone()[0]
            time.sleep(0.02)
        assert waiting == 2, "both finishes should wait for the organization's row"
    finally:
        holder.commit()
        holder.close()
        for thread in threads:
            thread.join(60)
    assert sorted(outcomes.values()) == ["failed", "succeeded"]
    jobs = {job.status: job for job in ConversionJob.objects.filter(pk__in=[queued_job.pk, other.pk])}
    assert jobs[JobStatus.FAILED].error_code == "QUOTA_EXCEEDED"
    assert storage_usage(org_id)[1] == files + 1
