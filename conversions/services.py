"""Writes for conversion jobs: create, cancel, retry, and recording a result file.

Every transition is a conditional UPDATE (or a locked row) plus an audit row; the
Celery message goes out after commit. The work itself is in ``conversions.engine``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import AuditEvent, Organization
from accounts.services import audit_event, audit_record
from conversions import converters
from conversions.models import ACTIVE_STATUSES, ConversionJob, JobStatus
from conversions.selectors import detect_format
from fileconvert import broker, fastsql
from fileconvert.errors import Conflict, NotFound, Unprocessable
from fileconvert.names import sanitize_filename
from fileconvert.usage import storage_usage_of, storage_usage_statement
from uploads.models import FileStatus, StoredFile, Visibility
from uploads.services import publish_processing, quota_check

logger = logging.getLogger(__name__)

EXTENSIONS = {"jpeg": "jpg", "text": "txt", "markdown": "md", "yaml": "yaml", "tiff": "tiff"}


def _conf(name: str) -> Any:
    return settings.FILECONVERT[name]


def supported_targets(source_format: str) -> list[str]:
    return converters.targets_of(source_format)


def plan(*, source_format: str, target_format: str, options: Any) -> tuple[converters.Route, dict[str, Any]]:
    """The route and the validated options, or 422 saying what is supported / which option is wrong."""
    target = converters.canonical(target_format)
    route = converters.route_for(source_format, target)
    if route is None:
        supported = supported_targets(source_format)
        message = (
            f"{source_format} cannot be converted to {target or '(nothing)'}; supported targets: {', '.join(supported)}."
            if supported
            else f"{source_format} files cannot be converted here."
        )
        raise Unprocessable(
            message, code="UNSUPPORTED_CONVERSION", source_format=source_format, target_format=target, supported_targets=supported
        )
    try:
        validated = converters.validate_options(route, options if options is not None else {})
    except converters.OptionInvalid as exc:
        raise Unprocessable(
            f"Option {exc.name}: {exc.message}.",
            code="INVALID_OPTION",
            option=exc.name,
            accepted_options=[o.describe() for o in route.options()],
        ) from None
    return route, validated


def _merge_sources(actor: Identity, ids: list[str] | None) -> None:
    for file_id in ids or []:
        other = StoredFile.objects.filter(organization=actor.org, pk=file_id).first()
        if other is None or not other.has_bytes:
            raise Unprocessable(f"Option merge_with: file {file_id} was not found.", code="INVALID_OPTION", option="merge_with")
        if detect_format(other) != "pdf":
            raise Unprocessable(f"Option merge_with: file {file_id} is not a PDF.", code="INVALID_OPTION", option="merge_with")


def job_create(
    *,
    actor: Identity,
    source: StoredFile,
    target_format: str,
    options: Any = None,
    visibility: str | None = None,
    retry_of: ConversionJob | None = None,
) -> ConversionJob:
    if source.organization_id != actor.org.pk:
        raise NotFound()
    if not source.has_bytes or source.status == FileStatus.FAILED:
        raise Conflict("The source file has no usable bytes yet.", code="SOURCE_NOT_READY", status=source.status)
    source_format = detect_format(source)
    route, validated = plan(source_format=source_format, target_format=target_format, options=options)
    _merge_sources(actor, validated.get("merge_with"))
    chosen = visibility or source.visibility
    if chosen not in Visibility.values:
        raise Unprocessable("visibility is invalid.", code="VALIDATION_ERROR", fields={"visibility": list(Visibility.values)})
    # No transaction of its own: the two INSERTs are one batch (all or nothing, and on
    # PostgreSQL outside a transaction one round trip that commits, fastsql.run). Inside
    # the caller's (POST /api/convert writes the source's rows in it) the publish waits for
    # its commit; outside one, on_commit publishes at once, after the batch committed.
    job = ConversionJob(
        organization=actor.org,
        source=source,
        source_format=source_format,
        target_format=route.last.target,
        via_format=route.via or "",
        options=validated,
        visibility=chosen,
        created_by=actor.user,
        retry_of=retry_of,
        enqueued_at=timezone.now(),  # published on commit; the sweeper republishes if that is lost
    )
    event = audit_event(
        org=actor.org,
        actor=actor,
        action="conversion.retry" if retry_of else "conversion.create",
        target=job,
        details={
            "source_id": source.pk,
            "source_format": source_format,
            "target_format": job.target_format,
            "retry_of": retry_of.pk if retry_of else None,
        },
    )
    # Both INSERTs compiled once and sent together: every job pays for them.
    fastsql.run([fastsql.insert_statement(job), fastsql.insert_statement(event)])
    transaction.on_commit(lambda: job_publish(job.pk))
    return job


def job_enqueue(job_id: str) -> None:
    """Publish again (sweeper): record when, so the next sweep waits its turn."""
    ConversionJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(enqueued_at=timezone.now())
    job_publish(job_id)


def job_publish(job_id: str) -> None:
    from conversions.tasks import run_job

    try:
        broker.publish(run_job, job_id)
    except Exception:  # broker down at commit: the sweeper publishes it again
        logger.exception("could not publish conversion job", extra={"job_id": job_id})


def job_cancel(*, actor: Identity, job: ConversionJob) -> ConversionJob:
    now = timezone.now()
    with transaction.atomic():
        done = ConversionJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(
            status=JobStatus.CANCELED, finished_at=now, error_code="CANCELED", error_message="Canceled by the user."
        )
        job.refresh_from_db()
        if not done:
            raise Conflict(f"A {job.status} job cannot be canceled.", code="INVALID_TRANSITION", status=job.status)
        audit_record(org=actor.org, actor=actor, action="conversion.cancel", target=job)
    return job


def job_delete(*, actor: Identity, job: ConversionJob) -> None:
    """DELETE: the job's record goes; its result, a file of its own, stays. An active job is
    stopped by it as by a cancel: the worker's conditional writes find no row (its next
    progress write kills the converter, its finish records nothing and drops the bytes).
    Retries of it keep their record (``retry_of`` becomes null)."""
    with transaction.atomic():
        locked = ConversionJob.objects.select_for_update().filter(pk=job.pk).first()  # as it is now, not as read
        if locked is None:
            return
        locked.delete()
        audit_record(
            org=actor.org,
            actor=actor,
            action="conversion.delete",
            target=job,
            details={"status": locked.status, "result_id": locked.result_id, "source_id": locked.source_id},
        )


def job_update(*, actor: Identity, job: ConversionJob, data: dict[str, Any]) -> ConversionJob:
    """PATCH: only the output's visibility, and only before the output exists."""
    with transaction.atomic():
        locked = ConversionJob.objects.select_for_update().get(pk=job.pk)
        if "visibility" in data and data["visibility"] != locked.visibility:
            if locked.status not in ACTIVE_STATUSES:
                raise Conflict(f"A {locked.status} job cannot change; change the result file instead.", code="INVALID_TRANSITION")
            audit_record(
                org=actor.org,
                actor=actor,
                action="conversion.update",
                target=locked,
                details={"visibility": [locked.visibility, data["visibility"]]},
            )
            locked.visibility = data["visibility"]
            locked.save(update_fields=["visibility"])
    return locked


def job_retry(*, actor: Identity, job: ConversionJob) -> ConversionJob:
    """A new attempt (a new job, linked to the old one) for a failed or canceled job."""
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELED):
        raise Conflict(f"Only failed or canceled jobs can be retried; this one is {job.status}.", code="INVALID_TRANSITION")
    source = StoredFile.objects.filter(pk=job.source_id, organization=actor.org).first()
    if source is None:
        raise Conflict("The source file is gone.", code="SOURCE_GONE")
    options = {k: v for k, v in job.options.items() if v is not None}
    return job_create(
        actor=actor, source=source, target_format=job.target_format, options=options, visibility=job.visibility, retry_of=job
    )


def output_name(source_name: str, target_format: str, facts: dict[str, Any]) -> str:
    """``report.pdf`` -> ``report.png``; one page of several -> ``report-page2.png``; several
    pages, which come as a ZIP of images (``facts["archive"]``) -> ``report-pages.zip``."""
    stem = source_name.rsplit(".", 1)[0] if "." in source_name else source_name
    if facts.get("archive") == "zip":
        return sanitize_filename(f"{stem or 'converted'}-pages.zip")
    if facts.get("page") and facts.get("pages", 1) > 1:
        stem = f"{stem}-page{facts['page']}"
    return sanitize_filename(f"{stem or 'converted'}.{EXTENSIONS.get(target_format, target_format)}")


def output_mime(target_format: str, facts: dict[str, Any]) -> str:
    """The output's content type: the target's, or a ZIP's when the output is an archive of them."""
    from conversions.formats import mime_of

    return "application/zip" if facts.get("archive") == "zip" else mime_of(target_format)


# How many times a finish is tried again because the job's visibility changed meanwhile.
VISIBILITY_RACES = 5


def result_record(*, job: ConversionJob, key: str, name: str, size: int, sha256: str, facts: dict[str, Any]) -> StoredFile | None:
    """Finish a running job with its output file (bytes already in storage under ``key``).

    The job's conditional UPDATE locks its row, so a cancel or a second delivery cannot
    interleave; returns None (and the caller drops the bytes) when the job is no longer
    ours to finish. The UPDATE is also conditional on the visibility the output gets: a
    PATCH of the job's visibility that committed meanwhile makes it move nothing, and the
    finish is made again with the new one. Every statement here runs once per job:
    compiled once (fastsql).
    """
    source = job.source
    now = timezone.now()
    output = StoredFile(
        organization_id=job.organization_id,
        upload_id=source.upload_id,
        dataset_id=source.dataset_id,
        parent=source,
        uploaded_by_id=job.created_by_id,
        name=name,
        storage_key=key,
        size=size,
        expected_size=size,
        sha256=sha256,
        status=FileStatus.PROCESSING,
        visibility=job.visibility,
        confirmed_at=now,
        process_enqueued_at=now,  # in this commit: the uploads sweeper republishes if the message is lost
        expires_at=source.expires_at,
        metadata={
            "conversion": {
                "job_id": job.pk,
                "source_id": source.pk,
                "source_format": job.source_format,
                "target_format": job.target_format,
                **{k: v for k, v in facts.items() if isinstance(v, (int, float, str, bool))},
            }
        },
    )
    for _attempt in range(VISIBILITY_RACES):
        if _record(job, output, size, facts, now):
            break
        # Nothing moved: canceled or taken over, or the visibility was changed meanwhile
        # (PATCH, allowed until the output exists): then again, with the visibility asked for.
        current = ConversionJob.objects.filter(**_still_ours(job)).values_list("visibility", flat=True).first()
        if current is None or current == job.visibility:
            return None
        job.visibility = output.visibility = current
    else:
        return None  # changed on every attempt: the job stays running, for the sweeper's lease
    job.status, job.progress, job.result, job.facts, job.finished_at = JobStatus.SUCCEEDED, 100, output, facts, now
    return output


def _record(job: ConversionJob, output: StoredFile, size: int, facts: dict[str, Any], now: Any) -> bool:
    """``result_record``'s transaction: True if the job moved to succeeded with ``output``."""
    values = {
        "status": JobStatus.SUCCEEDED,
        "progress": 100,
        "result": output.pk,
        "facts": facts,
        "finished_at": now,
        "error_code": "",
        "error_message": "",
    }
    # The transition, also conditional on the visibility the output is given.
    moved = fastsql.update_where_statement(ConversionJob, values, **_still_ours(job), visibility=job.visibility)
    event = audit_event(
        org_id=job.organization_id,
        actor=None,
        action="conversion.succeed",
        target=job,
        details={"result_id": output.pk, "size": size, "target_format": job.target_format},
    )
    # Only the UPDATE below can make this true: it writes the output's new id into the job.
    moved_here = {"pk": job.pk, "result": output.pk}
    with transaction.atomic():
        # One batch (one round trip on PostgreSQL, fastsql.run), then the COMMIT:
        # - the conditional UPDATE first, which locks the job row and proves the claim is
        #   still ours (a cancel or a takeover that committed first leaves 0 rows; a cancel
        #   arriving later waits for this commit and then finds the job finished);
        # - the organization's row, which serializes quota checks against concurrent
        #   uploads, then its usage counter, read after the lock is held;
        # - the output and its audit row, inserted only if the UPDATE moved.
        # The quota is checked on what was read before the INSERTs; a refusal raises and
        # rolls everything back. The result's foreign key is checked at commit (deferred).
        transition, locked, usage, inserted, audited = fastsql.run(
            [
                moved,
                fastsql.get_statement(Organization, job.organization_id, for_update=True),
                storage_usage_statement(job.organization_id),
                fastsql.insert_where_exists_statement(output, ConversionJob, **moved_here),
                fastsql.insert_where_exists_statement(event, ConversionJob, **moved_here),
            ]
        )
        if not transition.rowcount:
            return False
        if (inserted.rowcount, audited.rowcount) != (1, 1):  # the UPDATE moved: both must have followed it
            raise RuntimeError(f"job {job.pk}: its output and audit rows were not written with its finish")
        org = locked.first(Organization)
        if org is None:
            raise NotFound("The organization is gone.")
        quota_check(org=org, incoming_bytes=size, usage=storage_usage_of(usage))
        # The output goes through the same pipeline as an upload: summary, thumbnail, review.
        transaction.on_commit(lambda: publish_processing(output.pk))
    return True


def _still_ours(job: ConversionJob) -> dict[str, Any]:
    """The job's row while the claim is still ``job``'s: running, claimed by its holder."""
    return {"pk": job.pk, "status": JobStatus.RUNNING, "claimed_by": job.claimed_by}


def job_transition_statement(job: ConversionJob, **values: Any) -> fastsql.Statement:
    """running -> ``values`` while the claim is still ``job``'s: the conditional UPDATE of
    every finish (compiled once); 1 row if done, 0 if the job was canceled or taken over."""
    return fastsql.update_where_statement(ConversionJob, values, **_still_ours(job))


def job_finish(job: ConversionJob, values: dict[str, Any], event: AuditEvent) -> bool:
    """The conditional transition (``job_transition_statement``) and its audit row: True if
    done. When the job was canceled or taken over meanwhile the transition moves nothing and
    no audit row is written. On PostgreSQL both are one statement (the INSERT conditional on
    the UPDATE, ``fastsql.insert_after_update_statement``); elsewhere one transaction that
    is rolled back when nothing moved."""
    transition = job_transition_statement(job, **values)
    if fastsql.supports_insert_after_update(transition.alias):
        # One statement: outside a transaction, one round trip that commits (no BEGIN, no COMMIT).
        (moved,) = fastsql.run([fastsql.insert_after_update_statement(transition, event)])
        return bool(moved.rowcount)
    with transaction.atomic():
        moved, _ = fastsql.run([transition, fastsql.insert_statement(event)])
        if not moved.rowcount:
            transaction.set_rollback(True)
    return bool(moved.rowcount)


def job_fail(*, job: ConversionJob, code: str, message: str) -> bool:
    values = {"status": JobStatus.FAILED, "error_code": code[:64], "error_message": message[:1000], "finished_at": timezone.now()}
    event = audit_event(
        org_id=job.organization_id,
        actor=None,
        action="conversion.fail",
        target=job,
        details={"code": code, "message": message[:300]},
    )
    return job_finish(job, values, event)


def job_requeue_stuck(*, queued_older_than: timedelta = timedelta(minutes=5)) -> int:
    """Sweeper: publish again jobs whose message was lost, and free jobs whose worker died."""
    now = timezone.now()
    lease = timedelta(seconds=job_hard_time_limit() + 60)
    expired = ConversionJob.objects.filter(status=JobStatus.RUNNING, started_at__lt=now - lease)
    freed = expired.update(status=JobStatus.QUEUED, claimed_by="", queued_at=now)
    ids = list(
        ConversionJob.objects.filter(status=JobStatus.QUEUED, enqueued_at__lt=now - queued_older_than)
        .order_by("enqueued_at")
        .values_list("pk", flat=True)[:500]
    )
    ids += list(
        ConversionJob.objects.filter(status=JobStatus.QUEUED, enqueued_at__isnull=True).values_list("pk", flat=True)[:100]
    )
    for job_id in dict.fromkeys(ids):
        job_enqueue(job_id)
    if freed:
        logger.warning("freed conversion jobs whose worker vanished", extra={"count": freed})
    return len(set(ids))


def job_soft_time_limit() -> int:
    return int(_conf("CONVERT_TIMEOUT_SECONDS")) + 60


def job_hard_time_limit() -> int:
    return job_soft_time_limit() + 60
