"""Reads: jobs of the caller's organization, a file's format, what a file converts to."""

from __future__ import annotations

import contextlib
import io
import tempfile
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from accounts.identity import Identity
from conversions import converters
from conversions.models import ConversionJob
from fileconvert import sandbox, storage
from fileconvert.errors import NotFound
from uploads.models import StoredFile
from uploads.sniff import HEAD_BYTES, sniff

ZIP_KINDS = {"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp"}


def jobs_of(identity: Identity) -> QuerySet[ConversionJob]:
    return ConversionJob.objects.filter(organization=identity.org)


def get_job_for(identity: Identity, job_id: str, *, org_id: str | None = None) -> ConversionJob:
    """The caller's job, or 404 exactly as if it did not exist (other tenants included)."""
    if org_id is not None and org_id != identity.org.pk:
        raise NotFound()
    found = jobs_of(identity).filter(pk=job_id).select_related("source", "result").first()
    if found is None:
        raise NotFound()
    return found


def detect_format(stored: StoredFile) -> str:
    """The file's format from its bytes (the processing pipeline's kind when it has one)."""
    return stored.kind or format_of_key(stored.storage_key, stored.name)


def format_of_key(key: str, name: str) -> str:
    """Sniff the object at ``key``; ``name`` only breaks ties between text formats."""
    if not storage.is_s3():
        path = storage.local_path(key)
        if not path.is_file():
            return "binary"
        with open(path, "rb") as fh:
            return sniff(fh, name).kind
    with contextlib.closing(storage.open_reader(key)) as fh:
        head = fh.read(HEAD_BYTES)
    if not head.startswith(b"PK"):
        return sniff(io.BytesIO(head), name).kind
    # Office containers are told apart by their central directory: read the whole object.
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        for chunk in storage.iter_chunks(key):
            tmp.write(chunk)
        return sniff(tmp, name).kind


def _probe_size(path: str, fmt: str) -> dict[str, Any]:
    def probe(send: Any) -> dict[str, Any]:
        if fmt in converters.images.IMAGE_FORMATS:
            from PIL import Image

            Image.MAX_IMAGE_PIXELS = None
            with Image.open(path, formats=[converters.images.PIL_NAMES[fmt]]) as image:
                return {"width": image.width, "height": image.height}
        import json
        import subprocess

        cmd = ["ffprobe", "-v", "error", "-protocol_whitelist", "file,pipe", "-f", converters.media.DEMUXERS[fmt]]
        cmd += ["-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "json", f"file:{path}"]
        done = subprocess.run(cmd, capture_output=True, timeout=10, stdin=subprocess.DEVNULL, check=False)
        streams = json.loads(done.stdout or b"{}").get("streams") or [{}]
        return {"width": streams[0].get("width"), "height": streams[0].get("height")}

    result = sandbox.run_forked(probe, timeout=15, memory_bytes=512 * 1024**2)
    return {} if result.error or not result.value else dict(result.value)


def source_dimensions(stored: StoredFile, fmt: str) -> dict[str, Any]:
    """Width and height of an image or video, to prefill resize options."""
    if fmt not in converters.images.IMAGE_FORMATS and fmt not in converters.media.VIDEO_FORMATS:
        return {}
    meta = stored.metadata or {}
    if meta.get("width") and meta.get("height"):
        return {"width": meta["width"], "height": meta["height"]}
    if not stored.has_bytes:
        return {}
    if storage.is_s3():
        from uploads.processing import local_copy

        with local_copy(stored, with_digest=False) as (path, _size, _digest):
            return _probe_size(str(path), fmt)
    return _probe_size(str(storage.local_path(stored.storage_key)), fmt)


def conversions_for(stored: StoredFile) -> dict[str, Any]:
    """Targets for one file, each with its option descriptors; sizes prefilled."""
    fmt = detect_format(stored)
    dims = source_dimensions(stored, fmt)
    targets = []
    for target, route in converters.graph().get(fmt, {}).items():
        options = []
        for option in route.options():
            described = option.describe()
            if option.name in ("width", "height") and dims.get(option.name):
                described["value"] = dims[option.name]
            options.append(described)
        targets.append({"format": target, "via": route.via, "converter": route.last.converter.name, "options": options})
    return {"file_id": stored.pk, "source_format": fmt, "source": dims, "targets": targets}
