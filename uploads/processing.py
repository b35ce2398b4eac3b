"""What happens after the bytes land: verify, detect, summarise, thumbnail, expand
e-mails, and move the task on (REVIEWING when the organization wants review).

``file_process`` is idempotent: it claims the row (attempt counter), does its work
on a local copy, writes outputs under deterministic keys, and finishes with a
conditional update from PROCESSING, so a second delivery does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization, OrgSetting
from accounts.selectors import org_setting_resolved
from fileconvert import fastsql, imagebounds, sandbox, storage
from fileconvert.errors import AppError
from fileconvert.ids import new_id
from uploads import emails
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus
from uploads.signals import file_activated, send_on_commit
from uploads.sniff import sniff

logger = logging.getLogger(__name__)
REVIEW_REQUIRED = "review.required"
INSPECTED_KINDS = {"png", "jpeg", "gif", "webp", "bmp", "tiff", "ico", "pdf", "mp3", "flac", "ogg", "wav", "m4a", "mp4", "webm"}
THUMBNAIL_KINDS = {"png", "jpeg", "gif", "webp", "bmp", "tiff", "ico", "pdf"}


class ProcessingFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@contextlib.contextmanager
def local_copy(stored: StoredFile, *, with_digest: bool = True) -> Iterator[tuple[Path, int, str]]:
    """A readable local path for the file's bytes, with their size and SHA-256 (``""``
    without ``with_digest``: a local file is then not read at all here)."""
    digest = hashlib.sha256()
    size = 0
    if not storage.is_s3():
        path = storage.local_path(stored.storage_key)
        if not path.is_file():
            raise ProcessingFailed("MISSING_BYTES", "The uploaded bytes are not in storage.")
        if not with_digest:
            yield path, path.stat().st_size, ""
            return
        with open(path, "rb") as fh:
            while chunk := fh.read(storage.READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        yield path, size, digest.hexdigest()
        return
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="proc-") as tmp:
        try:
            for chunk in storage.iter_chunks(stored.storage_key):
                if with_digest:
                    digest.update(chunk)
                size += len(chunk)
                tmp.write(chunk)
        except Exception as exc:
            if "NoSuchKey" in type(exc).__name__ or "404" in str(exc):
                raise ProcessingFailed("MISSING_BYTES", "The uploaded bytes are not in storage.") from None
            raise
        tmp.flush()
        yield Path(tmp.name), size, digest.hexdigest() if with_digest else ""


def inspect(path: Path, kind: str, thumb_path: Path, size: int) -> dict[str, Any]:
    """Summary (and thumbnail) from a sandboxed child process, or in this process for a small
    raster image whose header bounds its decoding (``fileconvert.imagebounds``, decision
    0013): a fresh interpreter costs about 55 ms of CPU, the inspection of such an image a
    few. Both report the same summary, thumbnail and errors."""
    if kind not in INSPECTED_KINDS:
        return {}
    max_pixels = int(settings.FILECONVERT["MAX_IMAGE_PIXELS"])
    if imagebounds.small_raster(path, kind, size, max_pixels=max_pixels):
        return _inspect_here(path, kind, thumb_path)
    result = sandbox.run_python_module(
        "uploads.inspect_worker",
        [kind, str(path), str(thumb_path), str(max_pixels)],
        timeout=60,
        memory_bytes=2 * 1024**3,
        cwd=str(settings.BASE_DIR),
    )
    if result.timed_out:
        raise ProcessingFailed("PROCESSING_TIMEOUT", "Inspecting the file took too long.")
    try:
        payload = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ProcessingFailed("UNREADABLE_CONTENT", "The file could not be inspected.") from None
    if "error" in payload:
        raise ProcessingFailed(payload["error"]["code"], payload["error"]["message"])
    return dict(payload.get("summary") or {})


def _inspect_here(path: Path, kind: str, thumb_path: Path) -> dict[str, Any]:
    from uploads import inspect_worker

    try:
        with imagebounds.quiet():  # not the worker's filters: this call's, and nothing printed
            return dict(inspect_worker.image_summary_of(str(path), kind, str(thumb_path)))
    except SoftTimeLimitExceeded:  # the task's limit (uploads.tasks): as the child's timeout
        raise ProcessingFailed("PROCESSING_TIMEOUT", "Inspecting the file took too long.") from None
    except Exception as exc:  # noqa: BLE001 - reported as the sandboxed child reports it
        code, message = inspect_worker.error_of(exc)
        raise ProcessingFailed(code, message) from None


def _claim(file_id: str) -> StoredFile | None:
    """A processing file with ``process_attempts + 1`` counted in its own commit, before
    anything is decoded (the poison counter), and its row: one UPDATE ... RETURNING where
    the database has it (compiled once). A file that is no longer processing is None. The
    UPDATE waits for a row another transaction holds (a finishing duplicate delivery, a
    review) instead of skipping it, as the SELECT ... SKIP LOCKED it replaces did: then
    the message was dropped until the sweeper republished it."""
    connection = connections[router.db_for_write(StoredFile)]
    if fastsql.supports_update_returning(connection.alias):

        def build() -> str:
            qn = connection.ops.quote_name
            meta = StoredFile._meta
            attempts, status = (qn(meta.get_field(n).column) for n in ("process_attempts", "status"))
            return (
                f"UPDATE {qn(meta.db_table)} SET {attempts} = {attempts} + 1 "  # noqa: S608 - names from meta
                f"WHERE {qn(meta.pk.column)} = %s AND {status} = %s "
                f"RETURNING {fastsql.returning_columns(StoredFile, connection)}"
            )

        sql = fastsql.once(("file claim", connection.vendor), build)
        statement = fastsql.Statement(sql, [file_id, FileStatus.PROCESSING.value], connection.alias)
        return fastsql.run([statement])[0].first(StoredFile)
    with transaction.atomic():
        stored = StoredFile.objects.select_for_update(skip_locked=True).filter(pk=file_id).first()
        if stored is None or stored.status != FileStatus.PROCESSING:
            return None
        stored.process_attempts = F("process_attempts") + 1
        stored.save(update_fields=["process_attempts"])
    stored.refresh_from_db()
    return stored


def file_process(*, file_id: str) -> str:
    """Run the pipeline for one file; returns the outcome (for logs and tests)."""
    stored = _claim(file_id)
    if stored is None:
        return "skipped"
    if stored.process_attempts > settings.FILECONVERT["PROCESS_MAX_ATTEMPTS"]:
        _fail(stored, "POISON_FILE", f"Processing failed {stored.process_attempts - 1} times; giving up.")
        return "failed"
    try:
        updates = _analyse(stored)
    except SoftTimeLimitExceeded:  # the task's soft limit (PROCESS_TIMEOUT_SECONDS)
        _fail(stored, "PROCESSING_TIMEOUT", "Processing the file took too long.")
        return "failed"
    except ProcessingFailed as exc:
        _fail(stored, exc.code, exc.message)
        return "failed"
    except AppError as exc:
        _fail(stored, exc.code, exc.message)
        return "failed"
    return _succeed(stored, updates)


def _analyse(stored: StoredFile) -> dict[str, Any]:
    thumb_key = f"{stored.organization_id}/{stored.pk}/.thumbnail.png"
    with local_copy(stored) as (path, size, digest), tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as work:
        if stored.size is not None and size != stored.size:
            raise ProcessingFailed("SIZE_MISMATCH", f"Storage holds {size} bytes, {stored.size} were recorded.")
        if stored.sha256 and digest != stored.sha256:
            raise ProcessingFailed("CHECKSUM_MISMATCH", "The stored bytes do not match the recorded SHA-256.")
        with open(path, "rb") as fh:
            detected = sniff(fh, stored.name)
        metadata = dict(stored.metadata)
        thumb_path = Path(work) / "thumb.png"
        metadata.update(inspect(path, detected.kind, thumb_path, size))
        thumbnail_key = ""
        if detected.kind in THUMBNAIL_KINDS and thumb_path.exists():
            try:
                storage.store_file(thumb_path, thumb_key, "image/png")
                thumbnail_key = thumb_key
            except storage.UnsafeFile:  # not a plain file where the thumbnail should be: none, not a failure
                logger.warning("thumbnail refused", extra={"file_id": stored.pk})
                storage.delete(thumb_key)  # nor an older one, which nothing would point at any more
        if detected.kind == "eml" and stored.parent_id is None:
            with open(path, "rb") as fh:
                metadata["email"] = _expand_email(stored, fh, size)
    return {
        "size": size,
        "sha256": digest,
        "content_type": detected.mime,
        "kind": detected.kind,
        "metadata": metadata,
        "thumbnail_key": thumbnail_key,
    }


def _expand_email(message: StoredFile, fh: Any, size: int) -> dict[str, Any]:
    """Store each attachment as a child file with its own task (once per message)."""
    parsed = emails.parse(fh, size)
    summary = {
        "subject": parsed.subject,
        "from": parsed.sender,
        "to": parsed.recipients,
        "date": parsed.date,
        "text_excerpt": parsed.text[:2000],
        "attachments": len(parsed.attachments),
    }
    if message.children.exists() or not parsed.attachments:
        return summary
    from uploads.services import quota_check, quota_lock

    incoming = {"incoming_bytes": sum(len(a.payload) for a in parsed.attachments), "incoming_files": len(parsed.attachments)}
    quota_check(org=Organization.objects.get(pk=message.organization_id), **incoming)  # before storing any bytes
    planned = []
    for index, attachment in enumerate(parsed.attachments, start=1):
        file_id = new_id("fil")
        # Deterministic per message and position: a retry overwrites, never duplicates.
        key = f"{message.organization_id}/{message.pk}/.attachments/{index:04d}"
        storage.save_bytes(key, attachment.payload, "application/octet-stream")
        planned.append((file_id, key, attachment))
    now = timezone.now()
    with transaction.atomic():
        if StoredFile.objects.filter(parent=message).exists():
            return summary
        try:
            quota_check(org=quota_lock(message.organization_id), **incoming)  # again, under the quota lock
        except Exception:
            for _file_id, key, _attachment in planned:
                storage.delete(key)
            raise
        for file_id, key, attachment in planned:
            child = StoredFile.objects.create(
                id=file_id,
                organization_id=message.organization_id,
                upload_id=message.upload_id,
                dataset_id=message.dataset_id,
                parent=message,
                uploaded_by_id=message.uploaded_by_id,
                name=attachment.name,
                storage_key=key,
                size=len(attachment.payload),
                sha256=hashlib.sha256(attachment.payload).hexdigest(),
                claimed_content_type=attachment.claimed_type,
                status=FileStatus.PROCESSING,
                visibility=message.visibility,
                confirmed_at=now,
                process_enqueued_at=now,  # in this commit: a message lost after it is the sweeper's
                expires_at=message.expires_at,
                metadata={"email_part": {"inline": attachment.inline}},
            )
            if message.upload_id:
                Task.objects.create(
                    organization_id=message.organization_id, upload_id=message.upload_id, file=child, kind=Task.KIND_ATTACHMENT
                )
        Task.objects.filter(file=message).update(kind=Task.KIND_EMAIL_BODY)
        from uploads.services import publish_processing

        for file_id, _key, _attachment in planned:
            transaction.on_commit(lambda fid=file_id: publish_processing(fid))
    return summary


def _succeed(stored: StoredFile, updates: dict[str, Any]) -> str:
    # Every processed file runs these: compiled once (fileconvert.fastsql), the two reads in one batch.
    found, setting = fastsql.run(
        [
            fastsql.get_statement(Organization, stored.organization_id),
            fastsql.select_where_statement(OrgSetting, organization=stored.organization_id, key=REVIEW_REQUIRED),
        ]
    )
    org = found.first(Organization)
    if org is None:
        raise Organization.DoesNotExist(stored.organization_id)
    row = setting.first(OrgSetting)
    review = bool(org_setting_resolved(org, REVIEW_REQUIRED, None if row is None else row.value))
    now = timezone.now()
    if review:
        window = timedelta(seconds=settings.FILECONVERT["REVIEW_WINDOW_SECONDS"])
        updates = {**updates, "review_expires_at": (stored.confirmed_at or stored.created_at or now) + window}
    values = {
        "status": FileStatus.STAGED if review else FileStatus.ACTIVE,
        "review_state": ReviewState.PENDING if review else ReviewState.NOT_REQUIRED,
        "error_code": "",
        "error_message": "",
        **updates,
    }
    task = {"status": TaskStatus.REVIEWING if review else TaskStatus.COMPLETED, "updated_at": now}
    with transaction.atomic():
        (done,) = fastsql.run([fastsql.update_where_statement(StoredFile, values, pk=stored.pk, status=FileStatus.PROCESSING)])
        if not done.rowcount:
            return "skipped"
        fastsql.run([fastsql.update_where_statement(Task, task, file=stored.pk, status=TaskStatus.PROCESSING)])
        if not review:
            send_on_commit(file_activated, file_id=stored.pk, organization_id=stored.organization_id)
    return "staged" if review else "active"


def _fail(stored: StoredFile, code: str, message: str) -> None:
    logger.info("file processing failed", extra={"file_id": stored.pk, "code": code})
    with transaction.atomic():
        StoredFile.objects.filter(pk=stored.pk, status=FileStatus.PROCESSING).update(
            status=FileStatus.FAILED, error_code=code[:64], error_message=message[:1000]
        )
        Task.objects.filter(file_id=stored.pk, status=TaskStatus.PROCESSING).update(
            status=TaskStatus.FAILED, error_code=code[:64], error_message=message[:1000], updated_at=timezone.now()
        )
