"""Writes: metadata write-back as a new version of a file's bytes, or as a copy.

The editor (``metadata.writers``) runs in a sandboxed child on a local copy; the result is
streamed to storage under a new key outside any transaction; then one short transaction
swaps the row to the new bytes (or creates the copy), records the version and the audit
row, and after commit deletes the old object and sends ``file_content_changed``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.identity import Identity
from accounts.services import audit_record
from fileconvert import sandbox, storage
from fileconvert.errors import Conflict, Unprocessable, ValidationFailed
from fileconvert.ids import new_id
from fileconvert.names import storage_slug
from metadata.capabilities import unsupported
from metadata.models import MetadataEdit
from metadata.probe import probe_path
from metadata.selectors import readable_copy
from uploads.models import FileStatus, StoredFile, Visibility
from uploads.services import drop_bytes_unless_referenced, quota_check, quota_lock, storage_key_for
from uploads.signals import file_activated, file_content_changed, send_on_commit
from uploads.sniff import sniff

logger = logging.getLogger(__name__)
EDITABLE_STATUSES = {FileStatus.ACTIVE, FileStatus.STAGED}


@dataclass
class EditOutcome:
    file: StoredFile
    edit: MetadataEdit | None
    changed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Written:
    path: Path
    size: int
    mime: str
    kind: str
    report: dict[str, Any]
    sha256: str = ""  # of the bytes as stored (``_upload``: storage.store_file hashes them as it stores)


def _conf(name: str) -> Any:
    return settings.FILECONVERT[name]


def metadata_edit(
    *,
    actor: Identity,
    file: StoredFile,
    anonymize: bool = False,
    strip_all: bool = False,
    set: dict[str, dict[str, str]] | None = None,
    remove: dict[str, list[str]] | None = None,
    as_copy: bool = False,
) -> EditOutcome:
    ops = {"anonymize": anonymize, "strip_all": strip_all, "set": set or {}, "remove": remove or {}}
    if not (anonymize or strip_all or ops["set"] or ops["remove"]):
        raise ValidationFailed("Nothing to do: give anonymize, strip_all, set or remove.", code="VALIDATION_ERROR")
    if file.status not in EDITABLE_STATUSES or not file.has_bytes:
        raise Conflict(f"A {file.status} file cannot be edited; wait until it is processed.", code="FILE_NOT_READY")
    if (file.size or 0) > _conf("METADATA_MAX_EDIT_BYTES"):
        raise Unprocessable(
            f"Files over {_conf('METADATA_MAX_EDIT_BYTES')} bytes are not edited.",
            code="FILE_TOO_LARGE",
            max_bytes=_conf("METADATA_MAX_EDIT_BYTES"),
        )
    read_key, read_sha = file.storage_key, file.sha256
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="meta-edit-") as work:
        with readable_copy(file) as src, open(src, "rb") as fh:
            kind = sniff(fh, file.name).kind
            problems = unsupported(kind, ops)
            if problems:
                raise Unprocessable(
                    "This edit is not supported for this file: " + "; ".join(problems.values()),
                    code="UNSUPPORTED_EDIT",
                    kind=kind,
                    sections=problems,
                )
            written = _run_editor(kind, src, Path(work), ops)
        if not written.report["changed"]:
            return EditOutcome(file=file, edit=None, changed=[], skipped=written.report["skipped"])
        if as_copy:
            return _store_copy(actor, file, written, ops)
        return _store_version(actor, file, written, ops, read_key, read_sha)


def _run_editor(kind: str, src: Path, work: Path, ops: dict[str, Any]) -> _Written:
    dst, ops_path = work / "out", work / "ops.json"
    ops_path.write_text(json.dumps(ops), encoding="utf-8")
    result = sandbox.run_python_module(
        "metadata.edit_worker",
        [kind, str(src), str(dst), str(ops_path), shutil.which("ffmpeg") or ""],
        timeout=_conf("METADATA_EDIT_TIMEOUT_SECONDS"),
        memory_bytes=2 * 1024**3,
        cwd=str(settings.BASE_DIR),
    )
    if result.timed_out:
        raise Unprocessable("Editing the metadata took too long.", code="EDIT_TIMEOUT")
    try:
        payload = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        logger.warning("metadata editor died", extra={"stderr": result.stderr[-2000:]})
        raise Unprocessable("The file could not be edited.", code="UNREADABLE_CONTENT") from None
    if "error" in payload:
        raise Unprocessable(payload["error"]["message"], code=payload["error"]["code"])
    with open(dst, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        detected = sniff(fh, f"x.{kind}")
    return _Written(dst, size, detected.mime, detected.kind, payload["report"])


def _upload(written: _Written, key: str) -> None:
    """The edited file into storage under ``key`` (moved on local disk, storage.store_file,
    which hashes it as it stores: ``written.sha256``); it must still be the size it was when
    the editor finished, which the quota was checked on. The caller deletes ``key`` if this
    raises."""
    try:
        size, written.sha256 = storage.store_file(written.path, key, written.mime)
    except storage.UnsafeFile:
        raise Unprocessable("The editor's output was not a plain file; it was refused.", code="UNREADABLE_CONTENT") from None
    if size != written.size:
        raise Unprocessable("The edited file changed before it was stored.", code="UNREADABLE_CONTENT")


def _summary(old: dict[str, Any], written: _Written) -> dict[str, Any]:
    """The upload-time summary, kept true: title/author follow the new bytes."""
    summary = dict(old)
    common = probe_path(str(written.path), kind=written.kind)["common"]
    for key in ("title", "author"):
        if key in summary:
            summary[key] = str(common.get(key, ""))[:500]
    if "has_exif" in summary:
        summary["has_exif"] = any(k in common for k in ("camera_make", "camera_model", "gps", "created"))
    return summary


def _store_version(
    actor: Identity, file: StoredFile, written: _Written, ops: dict[str, Any], read_key: str, read_sha: str
) -> EditOutcome:
    # Before writing any bytes; checked again under the quota lock below.
    quota_check(org=actor.org, incoming_bytes=max(written.size - (file.size or 0), 0), incoming_files=0)
    edit_id = new_id("mde")
    key = f"{file.organization_id}/{file.pk}/{edit_id.lower()}-{storage_slug(file.name)}"
    summary = _summary(file.metadata, written)
    try:
        _upload(written, key)
        with transaction.atomic():
            org = quota_lock(file.organization_id)  # the organization first, then the file (as every writer)
            locked = StoredFile.objects.select_for_update().get(pk=file.pk)
            quota_check(org=org, incoming_bytes=max(written.size - (locked.size or 0), 0), incoming_files=0)
            if locked.storage_key != read_key or locked.sha256 != read_sha:
                raise Conflict("The file changed while it was being edited; retry.", code="CONTENT_CHANGED")
            if locked.status not in EDITABLE_STATUSES:
                raise Conflict(f"A {locked.status} file cannot be edited.", code="FILE_NOT_READY")
            version = (MetadataEdit.objects.filter(file=locked).aggregate(v=Max("version"))["v"] or 0) + 1
            old_key, old_sha = locked.storage_key, locked.sha256
            locked.storage_key, locked.size, locked.sha256 = key, written.size, written.sha256
            locked.content_type, locked.kind, locked.metadata = written.mime, written.kind, summary
            locked.save(update_fields=["storage_key", "size", "sha256", "content_type", "kind", "metadata"])
            edit = _record_edit(actor, locked, locked, written, ops, version=version, previous_sha256=old_sha, id=edit_id)
            audit_record(
                org=actor.org,
                actor=actor,
                action="file.metadata_edit",
                target=locked,
                details={"version": version, "changed": _keys(written.report["changed"]), "sha256": [old_sha, written.sha256]},
            )
            transaction.on_commit(lambda: _delete_quietly(old_key))
            send_on_commit(file_content_changed, file_id=locked.pk, organization_id=locked.organization_id, sha256=written.sha256)
    except (OperationalError, InterfaceError):
        drop_bytes_unless_referenced(key)  # the COMMIT may have gone through unheard (SECURITY F6)
        raise
    except BaseException:
        _delete_quietly(key)
        raise
    return EditOutcome(file=locked, edit=edit, changed=written.report["changed"], skipped=written.report["skipped"])


def _record_edit(
    actor: Identity,
    file: StoredFile,
    source: StoredFile,
    written: _Written,
    ops: dict[str, Any],
    *,
    version: int,
    previous_sha256: str,
    **extra: Any,
) -> MetadataEdit:
    """The version-history row of one edit (in place, or ``as_copy`` into a new file)."""
    return MetadataEdit.objects.create(
        organization_id=source.organization_id,
        file=file,
        source=source,
        version=version,
        previous_sha256=previous_sha256,
        sha256=written.sha256,
        size=written.size,
        actor=actor.user,
        operations=ops,
        changed=written.report["changed"],
        skipped=written.report["skipped"],
        **extra,
    )


def _store_copy(actor: Identity, source: StoredFile, written: _Written, ops: dict[str, Any]) -> EditOutcome:
    # Before writing any bytes; checked again under the quota lock below.
    quota_check(org=actor.org, incoming_bytes=written.size, incoming_files=1)
    file_id = new_id("fil")
    key = storage_key_for(source.organization_id, file_id, source.name)
    summary = _summary(source.metadata, written)
    try:
        _upload(written, key)
        with transaction.atomic():
            quota_check(org=quota_lock(source.organization_id), incoming_bytes=written.size, incoming_files=1)
            copy = StoredFile.objects.create(
                id=file_id,
                organization_id=source.organization_id,
                dataset_id=source.dataset_id,
                parent=source,
                uploaded_by=actor.user,
                name=source.name,
                storage_key=key,
                size=written.size,
                sha256=written.sha256,
                content_type=written.mime,
                kind=written.kind,
                status=source.status,
                review_state=source.review_state,
                review_expires_at=source.review_expires_at,  # a staged copy waits in the same review queue
                visibility=Visibility.PRIVATE,
                metadata=summary,
                thumbnail_key="",
                confirmed_at=timezone.now(),
                expires_at=source.expires_at,
            )
            edit = _record_edit(actor, copy, source, written, ops, version=1, previous_sha256=source.sha256, as_copy=True)
            audit_record(
                org=actor.org,
                actor=actor,
                action="file.metadata_copy",
                target=copy,
                details={"source": source.pk, "changed": _keys(written.report["changed"])},
            )
            if copy.status == FileStatus.ACTIVE:
                send_on_commit(file_activated, file_id=copy.pk, organization_id=copy.organization_id)
    except (OperationalError, InterfaceError):
        drop_bytes_unless_referenced(key)  # the COMMIT may have gone through unheard (SECURITY F6)
        raise
    except BaseException:
        _delete_quietly(key)
        raise
    return EditOutcome(file=copy, edit=edit, changed=written.report["changed"], skipped=written.report["skipped"])


def _keys(changed: list[dict[str, Any]]) -> list[str]:
    return [f"{c['section']}.{c['key']}:{c['action']}" for c in changed][:200]


def _delete_quietly(key: str) -> None:
    try:
        storage.delete(key)
    except Exception:
        logger.exception("could not delete stored object", extra={"key": key})
