"""Real files made by real libraries, and small helpers to drive the upload API with them.

Shared by test_stream, test_presigned_local, test_seed_endpoints, test_files_resource
and test_sweeper (not a conftest, so it never collides with other upload test modules).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from email.message import EmailMessage
from pathlib import Path

from django.conf import settings
from PIL import Image

from fileconvert import storage
from tests.conftest import data_of


def jpeg_bytes(size: tuple[int, int] = (48, 32), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=85)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (40, 24), color: tuple[int, int, int, int] = (10, 120, 220, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, color).save(out, "PNG")
    return out.getvalue()


def noise_png(size: tuple[int, int] = (64, 64)) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def eml_bytes(attachments: int = 2) -> bytes:
    """A real multipart e-mail (stdlib ``email``) with PNG attachments."""
    message = EmailMessage()
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "bob@example.com"
    message["Subject"] = "Quarterly pictures"
    message["Date"] = "Tue, 01 Apr 2025 10:00:00 +0000"
    message["Message-ID"] = "<quarterly@example.com>"
    message.set_content("Hello Bob,\nthe pictures are attached.\n")
    for index in range(attachments):
        message.add_attachment(
            png_bytes(color=(index * 40, 10, 10, 255)), maintype="image", subtype="png", filename=f"picture-{index}.png"
        )
    return message.as_bytes()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_bytes(key: str) -> bytes | None:
    """The object at ``key`` read back through the storage layer, or None."""
    if storage.object_size(key) is None:
        return None
    with contextlib.closing(storage.open_reader(key)) as fh:
        return fh.read()


def media_paths_mentioning(*needles: str) -> list[str]:
    """Every file under MEDIA_ROOT (partials included) whose path contains a needle."""
    found = []
    for root, _dirs, names in os.walk(settings.MEDIA_ROOT):
        for name in names:
            path = str(Path(root, name).relative_to(settings.MEDIA_ROOT))
            if any(n in path for n in needles):
                found.append(path)
    return found


def media_dirs_mentioning(*needles: str) -> list[str]:
    """Directories under MEDIA_ROOT (empty ones included) whose path contains a needle."""
    found = []
    for root, dirs, _names in os.walk(settings.MEDIA_ROOT):
        for name in dirs:
            path = str(Path(root, name).relative_to(settings.MEDIA_ROOT))
            if any(n in path for n in needles):
                found.append(path)
    return found


def partial_files() -> list[str]:
    partial = Path(settings.MEDIA_ROOT) / ".partial"
    return sorted(p.name for p in partial.iterdir()) if partial.is_dir() else []


def init_upload(client, filename: str = "photo.jpg", status: int = 201, **fields) -> dict:
    return data_of(client.post("/api/uploads/init", {"filename": filename, **fields}, format="json"), status)


def put_bytes(client, file_id: str, body: bytes, sha256: str | None = None, **extra):
    headers = {"HTTP_X_CONTENT_SHA256": sha256} if sha256 is not None else {}
    return client.put(f"/api/uploads/{file_id}/data", data=body, content_type="application/octet-stream", **headers, **extra)


def chunked_put(client, file_id: str, body: bytes, **extra):
    """A PUT without Content-Length (chunked transfer encoding): the size is only known by reading."""
    return client.generic(
        "PUT",
        f"/api/uploads/{file_id}/data",
        b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
        **extra,
    )


def upload_file(client, body: bytes, filename: str = "photo.jpg", **fields) -> dict:
    """init + PUT with the right checksum; returns the PUT's file representation."""
    started = init_upload(client, filename, **fields)
    return data_of(put_bytes(client, started["file_id"], body, sha256_of(body)))
