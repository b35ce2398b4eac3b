"""Writes for files, uploads and tasks: four ways in, one StoredFile at the end.

Bytes are streamed to storage outside any transaction; rows change in short
transactions with conditional updates, so a crash or a disconnect leaves either
no row with bytes or bytes with no row that the sweeper removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import Organization
from accounts.selectors import org_setting_value
from accounts.services import audit_record
from fileconvert import broker, storage
from fileconvert.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from fileconvert.ids import new_id
from fileconvert.metrics import UPLOAD_BYTES, UPLOAD_THROUGHPUT
from fileconvert.names import sanitize_filename, storage_slug
from fileconvert.usage import storage_usage
from uploads.models import Dataset, FileStatus, StoredFile, Task, TaskStatus, Upload, Visibility
from uploads.signals import file_visibility_changed, file_withdrawn, send_on_commit

logger = logging.getLogger(__name__)
STREAM_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _conf(name: str) -> Any:
    return settings.FILECONVERT[name]


def storage_key_for(org_id: str, file_id: str, name: str) -> str:
    return f"{org_id}/{file_id}/{storage_slug(name)}"


def normalize_sha256(value: str | None) -> str:
    if not value:
        return ""
    digest = value.strip().lower()
    if not _SHA256.match(digest):
        raise ValidationFailed("sha256 must be 64 hexadecimal characters.", fields={"sha256": ["64 hex characters"]})
    return digest


# --- Quota -----------------------------------------------------------------------------


def remaining_quota(org: Organization, usage: tuple[int, int] | None = None) -> tuple[int, int]:
    """(bytes, files) the organization may still add; ``usage`` when the caller has just
    read it (``fileconvert.usage.storage_usage_of``, after locking the organization)."""
    used_bytes, used_files = storage_usage(org) if usage is None else usage
    return max(org.storage_quota_bytes - used_bytes, 0), max(org.file_quota - used_files, 0)


def quota_lock(org_id: str) -> Organization:
    """The organization's row, locked until the transaction ends: what serializes quota
    checks between concurrent writers. ``FOR NO KEY UPDATE`` on PostgreSQL, so a
    transaction that wrote a row pointing at the organization (its deferred foreign key is
    checked at commit with ``FOR KEY SHARE``) can still commit meanwhile: a plain
    ``FOR UPDATE`` deadlocked a file delete against a confirmation over the usage counter
    row (decision 0010). ``fastsql.get_statement(..., for_update=True)`` takes the same lock."""
    return Organization.objects.select_for_update(no_key=True).get(pk=org_id)


def quota_check(*, org: Organization, incoming_bytes: int, incoming_files: int = 1, usage: tuple[int, int] | None = None) -> None:
    bytes_left, files_left = remaining_quota(org, usage)
    if incoming_files > files_left:
        raise PayloadTooLarge(
            f"The organization's file quota ({org.file_quota} files) would be exceeded.",
            code="QUOTA_EXCEEDED",
            quota_files=org.file_quota,
        )
    if incoming_bytes > bytes_left:
        raise PayloadTooLarge(
            f"The organization's storage quota would be exceeded ({bytes_left} bytes left).",
            code="QUOTA_EXCEEDED",
            remaining_bytes=bytes_left,
        )


def upload_limit(org: Organization) -> int:
    """Most bytes one upload may carry now: the size cap or what the quota leaves."""
    return upload_limit_and_code(org)[0]


def upload_limit_and_code(org: Organization) -> tuple[int, str]:
    """The limit and the error code to give when it is crossed."""
    cap, left = _conf("MAX_UPLOAD_BYTES"), remaining_quota(org)[0]
    return (left, "QUOTA_EXCEEDED") if left < cap else (cap, "PAYLOAD_TOO_LARGE")


# --- Datasets and uploads ----------------------------------------------------------


def dataset_resolve(*, actor: Identity, dataset_id: str | None = None, name: str | None = None) -> Dataset | None:
    """An existing dataset by id, or one by name (created on first use)."""
    if dataset_id:
        found = Dataset.objects.filter(organization=actor.org, pk=dataset_id).first()
        if found is None:
            raise NotFound("Dataset not found.")
        return found
    if name and name.strip():
        dataset, created = Dataset.objects.get_or_create(organization=actor.org, name=name.strip()[:200])
        if created:
            audit_record(org=actor.org, actor=actor, action="dataset.create", target=dataset, details={"name": dataset.name})
        return dataset
    return None


def upload_create(*, actor: Identity, source: str, name: str = "", dataset: Dataset | None = None) -> Upload:
    return Upload.objects.create(
        organization=actor.org,
        source=source,
        name=sanitize_filename(name, default="") if name else "",
        dataset=dataset,
        created_by=actor.user,
    )


def _retention_expiry(org: Organization, now: datetime) -> datetime | None:
    if org.is_anonymous:
        return now + timedelta(seconds=_conf("ANON_FILE_TTL_SECONDS"))
    days = org_setting_value(org, "files.retention_days")
    return now + timedelta(days=days) if days else None


def _default_visibility(org: Organization, requested: str | None) -> str:
    value = requested or org_setting_value(org, "files.default_visibility")
    if value not in Visibility.values:
        raise ValidationFailed("visibility is invalid.", fields={"visibility": [f"one of {', '.join(Visibility.values)}"]})
    return value


def file_init(
    *,
    actor: Identity,
    name: str,
    source: str,
    claimed_type: str = "",
    expected_size: int | None = None,
    sha256: str = "",
    dataset: Dataset | None = None,
    upload: Upload | None = None,
    visibility: str | None = None,
    file_id: str | None = None,
) -> StoredFile:
    """A pending file (and its upload and task) waiting for its bytes."""
    if expected_size is not None:
        if expected_size < 0:
            raise ValidationFailed("size must not be negative.", fields={"size": ["must be >= 0"]})
        if expected_size > _conf("MAX_UPLOAD_BYTES"):
            raise PayloadTooLarge(f"Files are limited to {_conf('MAX_UPLOAD_BYTES')} bytes.", max_bytes=_conf("MAX_UPLOAD_BYTES"))
    quota_check(org=actor.org, incoming_bytes=expected_size or 0)
    display = sanitize_filename(name)
    file_id = file_id or new_id("fil")
    now = timezone.now()
    with transaction.atomic():
        upload = upload or upload_create(actor=actor, source=source, name=display, dataset=dataset)
        stored = StoredFile.objects.create(
            id=file_id,
            organization=actor.org,
            upload=upload,
            dataset=dataset or upload.dataset,
            uploaded_by=actor.user,
            name=display,
            storage_key=storage_key_for(actor.org.pk, file_id, display),
            expected_size=expected_size,
            sha256=normalize_sha256(sha256),
            claimed_content_type=(claimed_type or "")[:200],
            visibility=_default_visibility(actor.org, visibility),
            expires_at=now + timedelta(seconds=_conf("UPLOAD_PENDING_TTL_SECONDS")),
        )
        Task.objects.create(organization=actor.org, upload=upload, file=stored)
        audit_record(org=actor.org, actor=actor, action="file.init", target=stored, details={"name": display, "source": source})
    return stored


# --- Receiving bytes ------------------------------------------------------------------


@dataclass
class Received:
    size: int
    sha256: str
    seconds: float
    head: bytes = field(default=b"", repr=False)


def stream_into(
    writer: storage.StorageWriter,
    stream: IO[bytes],
    *,
    limit: int,
    expected_length: int | None = None,
    limit_code: str = "PAYLOAD_TOO_LARGE",
) -> Received:
    """Copy ``stream`` into ``writer`` chunk by chunk, hashing as it goes.

    Raises 413 as soon as ``limit`` is crossed and 400 if the body is shorter than
    announced. Does not commit or abort: the caller decides.
    """
    digest = hashlib.sha256()
    total = 0
    head = b""
    started = time.perf_counter()
    fill = getattr(stream, "readinto_full", None)  # fileconvert.wsgi_input.SocketBody: no copies
    in_place = getattr(writer, "buffer", None) if fill else None  # storage.DirectWriter: received into its buffer
    buffer = memoryview(bytearray(STREAM_CHUNK)) if fill and not in_place else None
    room = chunk = None
    try:
        while True:
            if in_place:
                room = in_place()
                chunk = room[: fill(room)]
            elif fill:
                chunk = buffer[: fill(buffer)]  # type: ignore[index]
            else:
                chunk = stream.read(STREAM_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"The body exceeds the limit of {limit} bytes.", code=limit_code, max_bytes=limit)
            if len(head) < 8192:
                head += bytes(chunk[: 8192 - len(head)])
            digest.update(chunk)
            if in_place:
                writer.advance(len(chunk))  # type: ignore[attr-defined]
            else:
                writer.write(chunk)
    finally:
        # Views on DirectWriter's buffers must not outlive the loop (an exception's traceback keeps
        # this frame, and abort() could then not unmap them).
        room = chunk = None
    if expected_length is not None and total != expected_length:
        raise BadRequest(f"The body ended after {total} of {expected_length} bytes.", code="INCOMPLETE_BODY")
    return Received(size=total, sha256=digest.hexdigest(), seconds=time.perf_counter() - started, head=head)


def file_receive_stream(
    *, actor: Identity, file: StoredFile, stream: IO[bytes], content_length: int | None, sha256: str = ""
) -> StoredFile:
    """``PUT /api/uploads/{id}/data``: the raw body into storage, verified, then confirmed."""
    expected_digest = normalize_sha256(sha256) or file.sha256
    claimed = StoredFile.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(status=FileStatus.UPLOADING)
    if not claimed:
        file.refresh_from_db()
        if file.status == FileStatus.UPLOADING:
            raise Conflict("Bytes for this upload are already being received.", code="UPLOAD_IN_PROGRESS")
        raise Conflict("This upload already has its bytes.", code="ALREADY_UPLOADED")
    writer: storage.StorageWriter | None = None
    try:
        limit, limit_code = upload_limit_and_code(actor.org)
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(f"The body exceeds the limit of {limit} bytes.", code=limit_code, max_bytes=limit)
        if file.expected_size is not None and content_length is not None and content_length != file.expected_size:
            raise BadRequest(f"The body has {content_length} bytes; {file.expected_size} were announced.", code="SIZE_MISMATCH")
        # Opened once the announced size is acceptable: a refused body never gets a writer.
        writer = storage.open_writer(
            file.storage_key, file.claimed_content_type or "application/octet-stream", size_hint=content_length
        )
        received = stream_into(writer, stream, limit=limit, expected_length=content_length, limit_code=limit_code)
        if file.expected_size is not None and received.size != file.expected_size:
            raise BadRequest(f"The body has {received.size} bytes; {file.expected_size} were announced.", code="SIZE_MISMATCH")
        if expected_digest and received.sha256 != expected_digest:
            raise BadRequest(
                "The body does not match the SHA-256 the client sent.",
                code="CHECKSUM_MISMATCH",
                expected=expected_digest,
                actual=received.sha256,
            )
        if received.size == 0:
            raise BadRequest("The body is empty.", code="EMPTY_BODY")
        writer.commit()
    except BaseException:
        # Whatever failed (the writer's own set-up included), no bytes are kept and the row goes
        # back to pending, so the client can send them again.
        if writer is not None:
            writer.abort()
        StoredFile.objects.filter(pk=file.pk, status=FileStatus.UPLOADING).update(status=FileStatus.PENDING)
        raise
    _record_throughput(received)
    return file_confirm(
        actor=actor,
        file=file,
        size=received.size,
        sha256=received.sha256,
        from_status=FileStatus.UPLOADING,
        throughput={"seconds": round(received.seconds, 6), "bytes_per_second": _rate(received)},
    )


def _rate(received: Received) -> int:
    return int(received.size / received.seconds) if received.seconds > 0 else 0


def _record_throughput(received: Received) -> None:
    UPLOAD_BYTES.inc(received.size)
    if received.seconds > 0:
        UPLOAD_THROUGHPUT.observe(received.size / received.seconds)


def file_confirm(
    *,
    actor: Identity,
    file: StoredFile,
    size: int,
    sha256: str = "",
    from_status: str = FileStatus.PENDING,
    throughput: dict[str, Any] | None = None,
) -> StoredFile:
    """The bytes are in storage: record them, check the quota, start processing.

    On any refusal the committed bytes are deleted, so no object outlives its row.
    """
    try:
        with transaction.atomic():
            # The organization row serialises quota accounting between concurrent confirmations.
            org = quota_lock(file.organization_id)
            quota_check(org=org, incoming_bytes=size)
            now = timezone.now()
            metadata = dict(file.metadata)
            if throughput:
                metadata["upload"] = throughput
            updated = StoredFile.objects.filter(pk=file.pk, status=from_status).update(
                status=FileStatus.PROCESSING,
                size=size,
                sha256=sha256 or file.sha256,
                confirmed_at=now,
                expires_at=_retention_expiry(org, now),
                metadata=metadata,
                process_enqueued_at=now,  # in this commit: a message lost after it is the sweeper's
            )
            if not updated:
                raise Conflict("The upload was aborted or already confirmed.", code="UPLOAD_NOT_PENDING")
            audit_record(org=org, actor=actor, action="file.upload", target=file, details={"size": size, "sha256": sha256})
            transaction.on_commit(lambda: publish_processing(file.pk))
    except BaseException:
        storage.delete(file.storage_key)
        if from_status == FileStatus.UPLOADING:
            StoredFile.objects.filter(pk=file.pk, status=FileStatus.UPLOADING).update(status=FileStatus.PENDING)
        raise
    file.refresh_from_db()
    return file


def file_complete_presigned(*, actor: Identity, file: StoredFile) -> StoredFile:
    """Confirm bytes the client sent straight to storage (presigned POST)."""
    if file.confirmed_at is not None:
        return file
    if file.status != FileStatus.PENDING:
        raise Conflict("This upload is not waiting for its bytes.", code="UPLOAD_NOT_PENDING")
    size = storage.object_size(file.storage_key)
    if size is None:
        raise Conflict("No bytes have been uploaded for this file yet.", code="NOT_UPLOADED")
    if size > _conf("MAX_UPLOAD_BYTES") or size == 0:
        storage.delete(file.storage_key)
        raise (
            PayloadTooLarge("The uploaded object is larger than allowed.")
            if size
            else BadRequest("The upload is empty.", code="EMPTY_BODY")
        )
    return file_confirm(actor=actor, file=file, size=size)


def publish_processing(file_id: str) -> None:
    """Publish processing of a file whose row already has ``process_enqueued_at`` (set in the
    commit that confirmed it, or by the sweeper): no UPDATE and commit of its own; a lost
    message is the sweeper's (``file_reprocess_if_stuck``)."""
    from uploads.tasks import process_file

    try:
        broker.publish(process_file, file_id)
    except Exception:  # broker down at commit: the sweeper publishes it again
        logger.exception("could not publish processing", extra={"file_id": file_id})


def file_abort(*, actor: Identity, file: StoredFile) -> None:
    """Cancel an upload whose bytes are not confirmed; its row, task and upload go."""
    with transaction.atomic():
        locked = StoredFile.objects.select_for_update().filter(pk=file.pk).first()
        if locked is None:
            raise NotFound()
        if locked.confirmed_at is not None:
            raise Conflict("This upload is complete; delete the file instead.", code="ALREADY_UPLOADED")
        upload_id = locked.upload_id
        locked.delete()
        if upload_id and not StoredFile.objects.filter(upload_id=upload_id).exists():
            Upload.objects.filter(pk=upload_id).delete()
        audit_record(org=actor.org, actor=actor, action="file.abort", target_type="storedfile", target_id=file.pk)
    # A stream still running for it finds no row at confirmation and deletes its own bytes.
    storage.delete(file.storage_key)


# --- Deleting -------------------------------------------------------------------------


def _keys_of(files: list[StoredFile]) -> list[str]:
    keys = []
    for f in files:
        keys.append(f.storage_key)
        if f.thumbnail_key:
            keys.append(f.thumbnail_key)
    return keys


def _descendants(root: StoredFile) -> list[StoredFile]:
    found = [root]
    frontier = [root.pk]
    while frontier:
        children = list(StoredFile.objects.filter(parent_id__in=frontier))
        found.extend(children)
        frontier = [c.pk for c in children]
    return found


def file_delete(*, actor: Identity | None, file: StoredFile, reason: str = "deleted") -> None:
    """Rows first (so nothing points at missing bytes), then the bytes after commit."""
    with transaction.atomic():
        family = _descendants(file)
        keys = _keys_of(family)
        for member in family:
            send_on_commit(file_withdrawn, file_id=member.pk, organization_id=member.organization_id)
        upload_ids = {f.upload_id for f in family if f.upload_id}
        StoredFile.objects.filter(pk__in=[f.pk for f in family]).delete()
        for upload_id in upload_ids:
            if not StoredFile.objects.filter(upload_id=upload_id).exists():
                Upload.objects.filter(pk=upload_id).delete()
        audit_record(
            org=file.organization,
            actor=actor,
            action=f"file.{reason}",
            target_type="storedfile",
            target_id=file.pk,
            details={"name": file.name, "derived": len(family) - 1},
        )
        transaction.on_commit(lambda: _delete_keys(keys))


def _delete_keys(keys: list[str]) -> None:
    # Deepest first (attachments live under their message's directory), so each delete
    # can remove its now-empty directory and no empty per-file directory is left behind.
    for key in sorted(keys, key=lambda k: k.count("/"), reverse=True):
        try:
            storage.delete(key)
        except Exception:  # an orphan is swept later; the rows are already gone
            logger.exception("could not delete stored object", extra={"key": key})


def file_update(*, actor: Identity, file: StoredFile, data: dict[str, Any]) -> StoredFile:
    changes: dict[str, Any] = {}
    with transaction.atomic():
        locked = StoredFile.objects.select_for_update().get(pk=file.pk)
        if "name" in data:
            name = sanitize_filename(data["name"])
            if name != locked.name:
                changes["name"] = [locked.name, name]
                locked.name = name
        if "dataset_id" in data:
            dataset = dataset_resolve(actor=actor, dataset_id=data["dataset_id"]) if data["dataset_id"] else None
            if (dataset.pk if dataset else None) != locked.dataset_id:
                changes["dataset_id"] = [locked.dataset_id, dataset.pk if dataset else None]
                locked.dataset = dataset
        if "visibility" in data and data["visibility"] != locked.visibility:
            visibility = _default_visibility(actor.org, data["visibility"])
            if visibility == Visibility.PUBLIC and locked.status != FileStatus.ACTIVE:
                raise Conflict("Only active (reviewed) files can be made public.", code="NOT_SHAREABLE")
            changes["visibility"] = [locked.visibility, visibility]
            locked.visibility = visibility
        if changes:
            locked.save(update_fields=["name", "dataset", "visibility"])
            audit_record(org=actor.org, actor=actor, action="file.update", target=locked, details=changes)
            if "visibility" in changes:
                send_on_commit(
                    file_visibility_changed,
                    file_id=locked.pk,
                    organization_id=locked.organization_id,
                    visibility=locked.visibility,
                )
    return locked


# --- Tasks ----------------------------------------------------------------------------


def task_complete(*, actor: Identity, task: Task) -> Task:
    """The tenant accepts a task that is waiting (REVIEWING) or already done."""
    return _task_finish(actor=actor, task=task, to=TaskStatus.COMPLETED, allowed={TaskStatus.REVIEWING, TaskStatus.FAILED})


def task_discard(*, actor: Identity, task: Task) -> Task:
    return _task_finish(
        actor=actor,
        task=task,
        to=TaskStatus.DISCARDED,
        allowed={TaskStatus.REVIEWING, TaskStatus.FAILED, TaskStatus.COMPLETED, TaskStatus.PROCESSING},
    )


def _task_finish(*, actor: Identity, task: Task, to: str, allowed: set[str]) -> Task:
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.status == to:
            return locked
        if locked.status not in allowed:
            raise Conflict(f"A {locked.status} task cannot become {to}.", code="INVALID_TRANSITION", status=locked.status)
        previous = locked.status
        locked.status = to
        locked.save(update_fields=["status", "updated_at"])
        audit_record(org=actor.org, actor=actor, action=f"task.{to.lower()}", target=locked, details={"from": previous})
    return locked


def upload_move(*, actor: Identity, upload: Upload, dataset: Dataset | None, organization: Organization | None) -> Upload:
    """Move an upload (its files and tasks) to another dataset, or another organization
    where the caller is an admin (then the dataset, if named, is in the target)."""
    target_org = organization or actor.org
    with transaction.atomic():
        # NO KEY: the move changes no key, and a file committed meanwhile with this upload
        # (a conversion's output: its foreign key is checked with FOR KEY SHARE) must not wait
        # for it; waiting, it held the usage counter the move needs next (a deadlock).
        locked = Upload.objects.select_for_update(no_key=True).get(pk=upload.pk)
        files = StoredFile.objects.filter(upload=locked)
        if target_org.pk != actor.org.pk:
            # One read: what is counted against the quota is exactly what is moved (a file
            # committed into the upload meanwhile is neither; the lock does not stop it).
            rows = list(files.values_list("pk", "size"))
            ids = [pk for pk, _size in rows]
            quota_check(
                org=quota_lock(target_org.pk), incoming_bytes=sum(size or 0 for _pk, size in rows), incoming_files=len(rows)
            )
            children = StoredFile.objects.filter(parent_id__in=ids).exclude(upload=locked)
            StoredFile.objects.filter(pk__in=ids).update(organization=target_org, dataset=dataset)
            children.update(organization=target_org)
            Task.objects.filter(upload=locked).update(organization=target_org)
            locked.organization = target_org
        else:
            files.update(dataset=dataset)
        locked.dataset = dataset
        locked.save(update_fields=["organization", "dataset"])
        details = {"to_org": target_org.pk, "to_dataset": dataset.pk if dataset else None, "from_org": actor.org.pk}
        audit_record(org=actor.org, actor=actor, action="upload.move", target=locked, details=details)
        if target_org.pk != actor.org.pk:
            audit_record(org=target_org, actor=actor, action="upload.move_in", target=locked, details=details)
    return locked


def drop_bytes_unless_referenced(key: str) -> None:
    """Delete the stored bytes under ``key`` unless a file row has them; keep them when the
    database cannot say (an unreferenced object costs space, a referenced one gone loses a
    file). For a write whose connection was lost, perhaps at COMMIT, so that whether its row
    exists is unknown (SECURITY F6): a conversion's finish, a metadata edit."""
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()  # after a lost connection: a fresh one
        elif connection.needs_rollback:
            return  # the caller's transaction is broken: nothing can be read in it
        referenced = StoredFile.objects.filter(storage_key=key).exists()
    except (OperationalError, InterfaceError):
        logger.warning("kept the bytes of an unknown write", extra={"storage_key": key})
        return
    if not referenced:
        storage.delete(key)


def file_reprocess_if_stuck(*, older_than: timedelta = timedelta(minutes=15)) -> int:
    """Sweeper: re-enqueue files left in PROCESSING (lost message, dead worker, broker restart)."""
    cutoff = timezone.now() - older_than
    # A row confirmed before process_enqueued_at was written in the confirming commit may have none.
    stuck = Q(process_enqueued_at__lt=cutoff) | Q(process_enqueued_at__isnull=True, confirmed_at__lt=cutoff)
    ids = list(
        StoredFile.objects.filter(stuck, status=FileStatus.PROCESSING)
        .order_by("process_enqueued_at")
        .values_list("pk", flat=True)[:500]
    )
    # One UPDATE for the batch (the next sweep waits its turn), then the messages.
    StoredFile.objects.filter(pk__in=ids).update(process_enqueued_at=timezone.now())
    for file_id in ids:
        publish_processing(file_id)
    return len(ids)


# --- Multipart (batch and one-shot) ------------------------------------------------------


def _prescan_emails(parts: list[Any]) -> None:
    import io

    from uploads import emails
    from uploads.sniff import sniff

    for part in parts:
        if sniff(io.BytesIO(part.head), part.name).kind != "eml":
            continue
        with contextlib.closing(storage.open_reader(part.key)) as fh:
            if storage.is_s3():
                # The pre-scan needs to seek; e-mails are capped, so a bounded copy is fine.
                limit = _conf("MAX_EMAIL_BYTES")
                if part.size > limit:
                    emails.prescan(io.BytesIO(b""), part.size)
                emails.prescan(io.BytesIO(fh.read(limit + 1)), part.size)
            else:
                emails.prescan(fh, part.size)


def files_from_streamed_parts(
    *,
    actor: Identity,
    parts: list[Any],
    source: str,
    upload_name: str = "",
    dataset: Dataset | None = None,
    visibility: str | None = None,
    publish: bool = True,
) -> tuple[Upload, list[StoredFile]]:
    """Rows for bytes a multipart request already streamed into storage.

    The caller removes the stored parts if this raises (nothing is recorded then). With
    ``publish=False`` the caller publishes processing (``publish_processing``) itself, on
    commit: POST /api/convert publishes its job first.
    """
    if not parts:
        raise ValidationFailed("No file was sent.", fields={"files": ["at least one file is required"]})
    empty = [p.name for p in parts if p.size == 0]
    if empty:
        raise ValidationFailed(f"Empty file: {empty[0]}.", fields={"files": [f"{name} is empty" for name in empty]})
    _prescan_emails(parts)
    visibility = _default_visibility(actor.org, visibility)
    created: list[StoredFile] = []
    with transaction.atomic():
        org = quota_lock(actor.org.pk)
        quota_check(org=org, incoming_bytes=sum(p.size for p in parts), incoming_files=len(parts))
        now = timezone.now()
        upload = upload_create(actor=actor, source=source, name=upload_name or parts[0].name, dataset=dataset)
        for part in parts:
            stored = StoredFile.objects.create(
                id=part.file_id,
                organization=org,
                upload=upload,
                dataset=dataset,
                uploaded_by=actor.user,
                name=part.name,
                storage_key=part.key,
                size=part.size,
                expected_size=part.size,
                sha256=part.digest.hexdigest(),
                claimed_content_type=part.claimed_type,
                status=FileStatus.PROCESSING,
                visibility=visibility,
                confirmed_at=now,
                process_enqueued_at=now,  # in this commit: the sweeper republishes if the message is lost
                expires_at=_retention_expiry(org, now),
            )
            Task.objects.create(organization=org, upload=upload, file=stored)
            created.append(stored)
        audit_record(
            org=org,
            actor=actor,
            action="upload.create",
            target=upload,
            details={"files": len(created), "bytes": sum(p.size for p in parts), "source": source},
        )
        if publish:
            for stored in created:
                transaction.on_commit(lambda fid=stored.pk: publish_processing(fid))
    return upload, created


# --- Presigned uploads (seed 000 "Upload API") ------------------------------------------

PRESIGN_SALT = "fileconvert.presigned-post"


def presigned_upload_create(
    *,
    actor: Identity,
    name: str,
    claimed_type: str = "",
    expected_size: int | None = None,
    sha256: str = "",
    dataset: Dataset | None = None,
    visibility: str | None = None,
    form_url_prefix: str,
) -> tuple[StoredFile, dict[str, Any]]:
    """A pending file plus where and how to POST its bytes.

    On S3 this is a real presigned POST whose policy fixes the key and bounds the size
    by the upload cap and the quota left; in the embedded mode the same form goes to a
    URL we serve, with the policy signed by us.
    """
    from django.core import signing

    stored = file_init(
        actor=actor,
        name=name,
        source=Upload.SOURCE_PRESIGNED,
        claimed_type=claimed_type,
        expected_size=expected_size,
        sha256=sha256,
        dataset=dataset,
        visibility=visibility,
    )
    max_bytes = max(upload_limit(actor.org), 1)
    expires_in = int(_conf("PRESIGNED_EXPIRES_SECONDS"))
    if storage.is_s3():
        post = storage.presigned_post(stored.storage_key, max_bytes=max_bytes, expires_in=expires_in)
    else:
        policy = signing.dumps({"f": stored.pk, "k": stored.storage_key, "m": max_bytes}, salt=PRESIGN_SALT, compress=True)
        # The policy rides in the URL too, so the server can bound the body before parsing it.
        url = f"{form_url_prefix}{stored.pk}/form?{urlencode({'policy': policy})}"
        post = {"url": url, "fields": {"key": stored.storage_key, "policy": policy}}
    expires_at = timezone.now() + timedelta(seconds=expires_in)
    return stored, {"url": post["url"], "fields": post["fields"], "max_bytes": max_bytes, "expires_at": expires_at}


def presigned_policy_check(*, file_id: str, policy: str) -> tuple[StoredFile, int]:
    """The embedded stand-in for S3's policy check: signature, expiry, file still pending."""
    from django.core import signing

    try:
        claims = signing.loads(policy, salt=PRESIGN_SALT, max_age=int(_conf("PRESIGNED_EXPIRES_SECONDS")))
    except signing.SignatureExpired:
        raise Forbidden("The upload policy has expired.", code="POLICY_EXPIRED") from None
    except signing.BadSignature:
        raise Forbidden("The upload policy is invalid.", code="POLICY_INVALID") from None
    if claims.get("f") != file_id:
        raise Forbidden("The upload policy is for another upload.", code="POLICY_INVALID")
    stored = StoredFile.objects.filter(pk=file_id, storage_key=claims.get("k"), status=FileStatus.PENDING).first()
    if stored is None:
        raise Forbidden("This upload is no longer accepting bytes.", code="POLICY_INVALID")
    return stored, int(claims["m"])


def presigned_form_check(*, stored: StoredFile, fields: Any, parts: list[Any]) -> None:
    """After the form is parsed: the key field must be the policy's, one non-empty file."""
    if fields.get("key") != stored.storage_key:
        raise Forbidden("The key does not match the upload policy.", code="POLICY_KEY_MISMATCH")
    if len(parts) != 1 or parts[0].field_name != "file":
        raise BadRequest("Send exactly one file in the `file` field, after the policy fields.", code="VALIDATION_ERROR")
    if parts[0].size == 0:
        raise BadRequest("The upload is empty.", code="EMPTY_BODY")


def upload_delete(*, actor: Identity, file: StoredFile) -> int:
    """``DELETE /delete-upload-api``: the bytes, the records and every derived file."""
    count = len(_descendants(file))
    file_delete(actor=actor, file=file, reason="delete")
    return count
