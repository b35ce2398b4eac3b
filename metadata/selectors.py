"""Reads: the metadata probe of a stored file."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from fileconvert import storage
from fileconvert.errors import Conflict
from metadata.probe import probe_path
from uploads.models import StoredFile


def ffprobe_path() -> str | None:
    return shutil.which("ffprobe")


@contextlib.contextmanager
def readable_copy(stored: StoredFile) -> Iterator[Path]:
    """A local path holding the file's bytes: the file itself on disk, a temporary copy from S3."""
    if not stored.has_bytes or not stored.storage_key:
        raise Conflict("The file has no bytes yet.", code="FILE_NOT_READY")
    if not storage.is_s3():
        path = storage.local_path(stored.storage_key)
        if not path.is_file():
            raise Conflict("The file's bytes are missing from storage.", code="MISSING_BYTES")
        yield path
        return
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="meta-") as tmp:
        for chunk in storage.iter_chunks(stored.storage_key):
            tmp.write(chunk)
        tmp.flush()
        yield Path(tmp.name)


def file_metadata(*, file: StoredFile) -> dict[str, Any]:
    """``{kind, containers, common, sections, editable}`` of the file's current bytes."""
    with readable_copy(file) as path:
        return probe_path(
            str(path),
            name=file.name,
            ffprobe=ffprobe_path(),
            timeout=settings.FILECONVERT["METADATA_FFPROBE_TIMEOUT_SECONDS"],
        )


def edits_of(file: StoredFile) -> Any:
    from metadata.models import MetadataEdit

    return MetadataEdit.objects.filter(file=file).order_by("-version")
