"""Running one job: claim it, convert in the sandbox, store the output, finish it.

``job_run`` is idempotent: the claim is a conditional UPDATE (queued -> running, or
a running job whose worker process is gone), the output key is derived from the job
id, and finishing is conditional on still holding the claim, so a second delivery of
the same message does nothing and a redelivery after a crash finishes the job once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import audit_event
from conversions import converters, services
from conversions.converters.images import PIL_NAMES, ImageConverter, output_boxes, target_size
from conversions.models import ConversionJob, JobStatus
from fileconvert import fastsql, imagebounds, sandbox, storage
from fileconvert.errors import PayloadTooLarge
from fileconvert.names import storage_slug
from uploads.models import StoredFile
from uploads.processing import ProcessingFailed, local_copy
from uploads.services import drop_bytes_unless_referenced

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.5
SANDBOX_ERRORS = {
    "MemoryError": ("MEMORY_LIMIT", "The conversion needed more memory than allowed."),
    "Died": ("CONVERTER_CRASHED", "The converter crashed on this input."),
    "Timeout": ("TIMEOUT", "The conversion took longer than allowed."),
}

# Small raster images skip the fork (bench/job_overhead.py: a fork of the worker costs
# 10-30 ms, more than the conversion). Allowed only when the work is bounded before any
# pixel is decoded: a one-step Pillow route between these formats, a source of at most
# INLINE_MAX_BYTES, one frame, and header dimensions (read without decoding) and output
# box both within INLINE_MAX_PIXELS. Memory is then a few times INLINE_MAX_PIXELS * 4
# bytes and the time a few milliseconds, far inside the sandbox's limits; a decoder that
# crashes the worker gets the worker-lost path (acks_late redelivery, takeover, poison
# after CONVERT_MAX_ATTEMPTS). Everything else still runs in ``sandbox.run_forked``.
#
# A baseline (not progressive) JPEG is bounded by what it decodes, not by its nominal size:
# Pillow's draft mode decodes at 1/2, 1/4 or 1/8 scale when the output is that much
# smaller, and the scale is known from the header before any pixel is decoded. Baseline
# decoding is one pass, linear in the bytes and in the decoded pixels (a progressive file
# may hold hundreds of scans, each a pass: those fork). So a thumbnail of a camera-sized
# JPEG (3000x2000 -> 1024 wide decodes 1500x1000) runs here too: a few tens of ms, under
# 40 MB (decision 0007).
# The bounds and the JPEG structure check are shared with the uploads pipeline's inline
# inspection (fileconvert.imagebounds); read here as this module's names (tests adjust them).
INLINE_FORMATS = imagebounds.INLINE_FORMATS
INLINE_MAX_BYTES = imagebounds.INLINE_MAX_BYTES
INLINE_MAX_PIXELS = imagebounds.INLINE_MAX_PIXELS
INLINE_JPEG_MAX_BYTES = imagebounds.INLINE_JPEG_MAX_BYTES
INLINE_JPEG_MAX_DECODED_PIXELS = imagebounds.INLINE_JPEG_MAX_DECODED_PIXELS
_jpeg_single_pass = imagebounds.jpeg_single_pass
_BOUNDED_CONVERT = ImageConverter.convert


def worker_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(token: str) -> bool:
    host, _, pid = token.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only the lease (sweeper) can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _claim_queued_returning(job_id: str, token: str) -> ConversionJob | None:
    """The queued -> running conditional UPDATE that also returns the claimed row: one
    statement (and one commit) instead of the UPDATE and a SELECT, built once. On
    PostgreSQL the same statement also returns the source file's row (a join on the
    UPDATE's RETURNING; SQLite has no RETURNING in a WITH): the conversion needs it next,
    and this saves it a round trip. The organization is used by id.

    PostgreSQL: this one commit does not wait for its WAL flush (synchronous_commit off for
    this statement's own transaction only, never inside an atomic block). Losing it in a
    crash is safe: the job is still queued, the worker's next statement fails and the task
    is retried, and the finish's commit, which does wait, flushes the claim with it. It
    halves the claim's latency (decision 0008)."""
    # The connection itself, not django.db.connection: every attribute of that proxy is a
    # context-local lookup, and the claim reads about a dozen of them.
    connection = connections[DEFAULT_DB_ALIAS]
    meta = ConversionJob._meta
    postgresql = connection.vendor == "postgresql"
    asynchronous = postgresql and not connection.in_atomic_block

    def build() -> str:
        qn = connection.ops.quote_name
        c = {n: qn(meta.get_field(n).column) for n in ("id", "status", "claimed_by", "attempts", "progress", "started_at")}
        update = f"""
            UPDATE {qn(meta.db_table)}
            SET {c["status"]} = %s, {c["claimed_by"]} = %s, {c["attempts"]} = {c["attempts"]} + 1, {c["progress"]} = 0,
                {c["started_at"]} = %s
            {"FROM claim_commit" if asynchronous else ""}
            WHERE {c["id"]} = %s AND {c["status"]} = %s
            RETURNING {fastsql.returning_columns(ConversionJob, connection)}
        """  # noqa: S608 - quoted names from the model's meta; every value is a parameter
        if not postgresql:
            return update
        files = StoredFile._meta
        source = ", ".join(f"source.{qn(f.column)}" for f in files.concrete_fields)
        prefix = "claim_commit AS (SELECT set_config('synchronous_commit', 'off', true))," if asynchronous else ""
        return f"""
            WITH {prefix} claimed AS ({update})
            SELECT claimed.*, {source} FROM claimed
            LEFT JOIN {qn(files.db_table)} source ON source.{qn(files.pk.column)} = claimed.{qn(meta.get_field("source").column)}
        """  # noqa: S608 - as above

    sql = fastsql.once(("claim", connection.vendor, asynchronous), build)
    started_at = meta.get_field("started_at").get_db_prep_value(timezone.now(), connection)
    params = [JobStatus.RUNNING.value, token, started_at, job_id, JobStatus.QUEUED.value]
    (result,) = fastsql.run([fastsql.Statement(sql, params, connection.alias)])  # prepared once per connection
    if not result.rows:
        return None
    row = result.rows[0]
    width = len(meta.concrete_fields)
    job = fastsql.from_row(ConversionJob, row[:width], connection)
    source = row[width:]
    if source and source[0] is not None:  # gone: _execute finds that out and says so
        job.source = fastsql.from_row(StoredFile, source, connection)
    return job


def job_claim(job_id: str) -> ConversionJob | None:
    """queued -> running (attempts + 1); also takes over a running job whose process died."""
    token = worker_token()
    claim = {"status": JobStatus.RUNNING, "claimed_by": token, "attempts": F("attempts") + 1, "progress": 0}
    if fastsql.supports_update_returning():
        claimed = _claim_queued_returning(job_id, token)
        if claimed is not None:
            return claimed
    elif ConversionJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(started_at=timezone.now(), **claim):
        return ConversionJob.objects.select_related("source").get(pk=job_id)
    current = ConversionJob.objects.filter(pk=job_id).values_list("status", "claimed_by").first()
    if current is None or current[0] != JobStatus.RUNNING or not current[1] or current[1] == token:
        return None
    if not _process_gone(current[1]):
        return None
    # Redelivered after the worker process died (acks_late): take the job over, once.
    done = ConversionJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, claimed_by=current[1]).update(
        started_at=timezone.now(), **claim
    )
    if not done:
        return None
    return ConversionJob.objects.select_related("source").get(pk=job_id)


class JobReleased(Exception):
    """The job stopped being ours while converting (canceled, or taken over)."""


class _Progress:
    """Writes progress to the job row at most every PROGRESS_INTERVAL seconds; raises
    JobReleased (which kills the sandboxed child) when the row is no longer ours."""

    def __init__(self, job: ConversionJob) -> None:
        self.job = job
        # Short jobs write no progress rows at all: the first write waits PROGRESS_INTERVAL.
        self.last_write = time.monotonic()
        self.value = 0

    def __call__(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("progress"), int):
            return
        value = max(0, min(99, message["progress"]))
        now = time.monotonic()
        if value > self.value and now - self.last_write >= PROGRESS_INTERVAL:
            try:
                with transaction.atomic():  # a savepoint when nested: a failure leaves the caller's transaction usable
                    still_ours = ConversionJob.objects.filter(
                        pk=self.job.pk, status=JobStatus.RUNNING, claimed_by=self.job.claimed_by
                    ).update(progress=value)
            except OperationalError:
                # Progress is advisory: a locked or briefly unreachable database must not end
                # the conversion. The next write is due an interval later (and checks the claim).
                logger.info("progress write skipped", extra={"job_id": self.job.pk}, exc_info=True)
                self.last_write = now
                return
            self.value, self.last_write = value, now
            if not still_ours:
                raise JobReleased()


def job_run(*, job_id: str) -> str:
    """Run one job; returns the outcome (for logs and tests)."""
    job = job_claim(job_id)
    if job is None:
        return "skipped"
    if job.attempts > settings.FILECONVERT["CONVERT_MAX_ATTEMPTS"]:
        services.job_fail(job=job, code="POISON_JOB", message=f"The conversion failed {job.attempts - 1} times; giving up.")
        return "failed"
    route = converters.route_for(job.source_format, job.target_format)
    if route is None:
        services.job_fail(job=job, code="CONVERTER_UNAVAILABLE", message="No converter for this pair is available any more.")
        return "failed"
    try:
        return _execute(job, route)
    except ProcessingFailed as exc:
        services.job_fail(job=job, code=exc.code, message=exc.message)
        return "failed"
    except BaseException:
        # Transient (database, storage): give the claim back so the retry can take it.
        ConversionJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, claimed_by=job.claimed_by).update(
            status=JobStatus.QUEUED, claimed_by=""
        )
        raise


def _execute(job: ConversionJob, route: converters.Route) -> str:
    converters.preload()
    if not ConversionJob.source.is_cached(job):  # the claim returns the job alone
        source = fastsql.get(StoredFile, job.source_id)
        if source is None:
            raise ProcessingFailed("SOURCE_GONE", "The source file is gone.")
        job.source = source
    timeout = float(settings.FILECONVERT["CONVERT_TIMEOUT_SECONDS"])
    with contextlib.ExitStack() as stack:
        src, src_size, _digest = stack.enter_context(local_copy(job.source, with_digest=False))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="conv-")))
        extra: list[tuple[Path, str]] = []
        for file_id in job.options.get("merge_with") or []:
            other = StoredFile.objects.filter(organization_id=job.organization_id, pk=file_id).first()
            if other is None:
                raise ProcessingFailed("SOURCE_GONE", f"File {file_id} to merge is gone.")
            path, _, _ = stack.enter_context(local_copy(other, with_digest=False))
            extra.append((path, "pdf"))
        options = dict(job.options)
        max_pixels = int(settings.FILECONVERT["MAX_IMAGE_PIXELS"])
        private_dirs = (str(settings.DATA_DIR), str(settings.MEDIA_ROOT), str(settings.FILE_UPLOAD_TEMP_DIR))

        def convert(send: Any) -> dict[str, Any]:
            ctx = converters.Context(
                workdir=work,
                max_image_pixels=max_pixels,
                timeout=timeout,
                extra_inputs=extra,
                report=lambda pct: send({"progress": pct}),
                source_name=job.source.name,
                private_dirs=private_dirs,
            )
            return converters.run_route(route, Path(src), options, ctx, work)

        try:
            if not extra and _inline_bounded(route, Path(src), src_size, options):
                result = _run_inline(convert)
            else:
                memory = route.memory_bytes()
                result = sandbox.run_forked(convert, timeout=timeout, memory_bytes=memory, on_message=_Progress(job))
        except JobReleased:  # canceled meanwhile: the child is already killed, its files go with `work`
            return "canceled"
        if result.error:
            code, message = _failure(result.error)
            services.job_fail(job=job, code=code, message=message)
            return "failed"
        output = Path(result.value["path"])
        facts = result.value.get("facts") or {}
        name = services.output_name(job.source.name, job.target_format, facts)
        key = f"{job.organization_id}/{job.pk}/{storage_slug(name)}"
        try:
            size, sha256 = storage.store_file(output, key, services.output_mime(job.target_format, facts))  # moved on disk
        except storage.UnsafeFile:
            raise ProcessingFailed("UNSAFE_OUTPUT", "The converter's output was not a plain file; it was refused.") from None
    try:
        recorded = services.result_record(job=job, key=key, name=name, size=size, sha256=sha256, facts=facts)
    except PayloadTooLarge as exc:
        storage.delete(key)
        services.job_fail(job=job, code=exc.code, message=exc.message)
        return "failed"
    except (OperationalError, InterfaceError):
        # The connection failed, perhaps at COMMIT: the finish may have committed without our
        # hearing it, and its row would then point at these bytes. They go only if a fresh
        # connection shows no row has them (the task is retried and sorts the job out).
        drop_bytes_unless_referenced(key)
        raise
    except BaseException:
        storage.delete(key)
        raise
    if recorded is None:  # canceled meanwhile, or taken over: unless a takeover's row has our key
        drop_bytes_unless_referenced(key)
        return "skipped"
    return "succeeded"


def _inline_bounded(route: converters.Route, src: Path, size: int, options: dict[str, Any]) -> bool:
    """True when the conversion is provably small (see INLINE_*): checked on the header only."""
    if len(route.steps) != 1 or size > max(INLINE_MAX_BYTES, INLINE_JPEG_MAX_BYTES):
        return False
    step = route.steps[0]
    if step.source not in INLINE_FORMATS or step.target not in INLINE_FORMATS:
        return False
    # The bound is a property of this converter's code: a subclass or a replaced ``convert`` forks.
    if type(step.converter) is not ImageConverter or ImageConverter.convert is not _BOUNDED_CONVERT:
        return False
    from PIL import Image

    try:
        with imagebounds.quiet(), Image.open(src, formats=[PIL_NAMES[step.source]]) as image:  # header only, no pixels decoded
            if getattr(image, "n_frames", 1) != 1 or not imagebounds.metadata_bounded(image):
                return False
            width, height = image.size
            box = target_size((width, height), options) or (width, height)
            if width * height <= 0:
                return False
            small = width * height <= INLINE_MAX_PIXELS and max(box) * max(box) <= INLINE_MAX_PIXELS
            if small and size <= INLINE_MAX_BYTES:
                # A small JPEG can still hold thousands of (arithmetic or progressive) scans.
                return step.source != "jpeg" or _jpeg_single_pass(src)
            return (
                step.source == "jpeg"
                and size <= INLINE_JPEG_MAX_BYTES
                and box[0] * box[1] <= INLINE_JPEG_MAX_DECODED_PIXELS
                and _jpeg_single_pass(src)
                and _jpeg_draft_bounded(image, options)
            )
    except Exception:  # noqa: BLE001  unreadable or suspicious: the sandbox reports it properly
        return False


def _jpeg_draft_bounded(image: Any, options: dict[str, Any]) -> bool:
    """A baseline JPEG whose draft-mode decode (as ``ImageConverter.convert`` asks for it)
    stays within INLINE_JPEG_MAX_DECODED_PIXELS. ``draft`` only configures the decoder."""
    if image.info.get("progressive") or image.info.get("progression"):
        return False
    _box, stored_box = output_boxes(image, options)  # the box ImageConverter.convert drafts to
    if not stored_box:
        return False
    image.draft("RGB", stored_box)
    decoded_width, decoded_height = image.size
    return decoded_width * decoded_height <= INLINE_JPEG_MAX_DECODED_PIXELS


def _run_inline(convert: Any) -> sandbox.ForkedResult:
    """``convert`` in this process, its outcome shaped like ``run_forked``'s."""
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        return sandbox.ForkedResult(convert(lambda _message: None), None, False)
    except SoftTimeLimitExceeded:  # Celery's limit, should a bounded job still overrun: reported as the sandbox would
        return sandbox.ForkedResult(None, {"type": "Timeout", "code": "TIMEOUT", "message": "Took longer than allowed."}, True)
    except Exception as exc:  # noqa: BLE001  reported like the sandboxed child reports it
        error = {"type": type(exc).__name__, "code": getattr(exc, "code", None), "message": str(exc)[:2000]}
        return sandbox.ForkedResult(None, error, False)


def job_noop(*, job_id: str) -> str:
    """The job machinery without a conversion (claim, finish, audit): bench/job_overhead.py."""
    job = job_claim(job_id)
    if job is None:
        return "skipped"
    event = audit_event(org_id=job.organization_id, actor=None, action="conversion.succeed", target=job, details={"noop": True})
    done = services.job_finish(job, {"status": JobStatus.SUCCEEDED, "progress": 100, "finished_at": timezone.now()}, event)
    return "succeeded" if done else "skipped"


def _failure(error: dict[str, Any]) -> tuple[str, str]:
    if error.get("type") in SANDBOX_ERRORS:
        return SANDBOX_ERRORS[error["type"]]
    if error.get("type") in ("ConversionFailed", "OptionInvalid") and error.get("code"):
        return str(error["code"]), str(error.get("message") or "The conversion failed.")
    if error.get("type") == "DecompressionBombError":
        return "IMAGE_TOO_LARGE", str(error.get("message"))
    logger.warning("converter raised unexpectedly", extra={"error": error})
    return "CONVERSION_FAILED", f"The file could not be converted ({error.get('type')}: {str(error.get('message'))[:300]})."
