"""Serving a stored file's bytes over HTTP: conditional requests, ranges, safe headers.

One function, ``serve_file``, used by every way of downloading (the authenticated
``download`` action, ``?dl=`` links and share links), so they all answer alike:

- validators: a strong ``ETag`` (the SHA-256), ``Last-Modified`` (when the bytes were
  confirmed); ``If-None-Match`` (weak comparison) and ``If-Modified-Since`` → 304;
- ranges (``sharing.ranges``): one range → 206 with ``Content-Range``; several → a
  ``multipart/byteranges`` 206 (coalesced, capped, never bigger than the file: else the
  plain 200); none satisfiable → 416 with
  ``Content-Range: bytes */size`` in the house error shape; ``If-Range`` (strong ETag or
  exact date) falls back to the full 200 on a mismatch;
- bytes stream with flat memory: a bounded file object that gunicorn turns into
  ``sendfile`` on local disk; S3 ranged GETs (one per range) otherwise;
- safety: ``X-Content-Type-Options: nosniff`` and a ``sandbox`` CSP on every response;
  ``inline`` only for a short list of passive types (raster images, audio, video, plain
  text); everything else, active content above all (HTML, SVG, XML, JavaScript, PDF),
  is always an ``attachment``; ``Content-Disposition`` per RFC 6266 with an ASCII
  ``filename`` fallback and ``filename*=UTF-8''…``.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import http_date, parse_http_date_safe

from fileconvert import storage
from fileconvert.api.errors import json_error_response
from fileconvert.errors import NotFound
from sharing.ranges import UNSATISFIABLE, parse_range
from uploads.models import StoredFile

logger = logging.getLogger(__name__)

SANDBOX_CSP = "sandbox; default-src 'none'"
INLINE_SAFE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "text/plain",
        "text/csv",
    }
)
INLINE_SAFE_FAMILIES = ("audio/", "video/")
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"  # RFC 8187 attr-char beyond ALPHA / DIGIT


def _conf(name: str) -> Any:
    return settings.FILECONVERT[name]


def mime_of(file: StoredFile) -> str:
    return (file.content_type or "application/octet-stream").split(";")[0].strip().lower() or "application/octet-stream"


def may_be_inline(mime: str) -> bool:
    """Passive types a browser renders without running anything; all others download."""
    return mime in INLINE_SAFE_TYPES or mime.startswith(INLINE_SAFE_FAMILIES)


def ascii_fallback(name: str) -> str:
    """A ``filename="…"`` that any client parses: ASCII, no quotes, backslashes or controls."""
    base = os.path.basename(name.replace("\\", "/"))
    decomposed = unicodedata.normalize("NFKD", base)
    text = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%;' else "_"
        for ch in decomposed
        if unicodedata.category(ch) != "Mn"  # accents go, their letters stay: é → e
    )
    text = re.sub(r"_+", "_", text).strip(" .")
    if not text.strip("_"):
        _stem, dot, ext = base.rpartition(".")
        ext_ascii = "".join(ch for ch in ext if ch.isascii() and ch.isalnum())[:16]
        text = f"download.{ext_ascii}" if dot and ext_ascii else "download"
    return text[:200]


def content_disposition(name: str, *, inline: bool) -> str:
    base = os.path.basename(name.replace("\\", "/"))
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")) or "download"
    kind = "inline" if inline else "attachment"
    fallback = ascii_fallback(base)
    header = f'{kind}; filename="{fallback}"'
    if base != fallback:
        header += f"; filename*=UTF-8''{quote(base, safe=_ATTR_CHAR_SAFE)}"
    return header


def etag_of(file: StoredFile) -> str | None:
    return f'"{file.sha256}"' if file.sha256 else None


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(header: str, etag: str | None) -> bool:
    if etag is None:
        return False
    tags = _etags(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _if_range_allows(request: HttpRequest, etag: str | None, modified: datetime | None) -> bool:
    value = request.META.get("HTTP_IF_RANGE")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return etag is not None and value == etag  # strong comparison: a weak tag never matches
    when = parse_http_date_safe(value)
    return when is not None and modified is not None and int(modified.timestamp()) == when


def _not_modified(request: HttpRequest, etag: str | None, modified: datetime | None) -> bool:
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return _weak_match(if_none_match, etag)
    since = parse_http_date_safe(request.META.get("HTTP_IF_MODIFIED_SINCE", ""))
    return since is not None and modified is not None and int(modified.timestamp()) <= since


class BoundedFile:
    """A read-only window ``[start, start+length)`` of a file on disk. It has ``fileno`` and
    sits at ``start``, so gunicorn can ``sendfile`` exactly ``Content-Length`` bytes;
    elsewhere ``read`` stops at the window's end."""

    def __init__(self, fh: IO[bytes], start: int, length: int) -> None:
        self._fh = fh
        self._fh.seek(start)
        self._remaining = length

    def fileno(self) -> int:
        return self._fh.fileno()

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._fh.read(want)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()


def _span_response(file: StoredFile, start: int, end: int, status: int, mime: str) -> HttpResponseBase:
    length = end - start + 1
    response: HttpResponseBase
    try:
        if storage.is_s3():
            chunks = storage.open_range(file.storage_key, start, end)
            response = StreamingHttpResponse(chunks, status=status, content_type=mime)
        else:
            fh = open(storage.local_path(file.storage_key), "rb")  # noqa: SIM115 - the response closes it
            response = FileResponse(BoundedFile(fh, start, length), status=status, content_type=mime)
    except FileNotFoundError:
        # The row says the bytes exist and storage has none: data loss to look into, not a 500.
        logger.error("stored object missing", extra={"file_id": file.pk, "key": file.storage_key})
        raise NotFound("The stored bytes of this file are missing.", code="CONTENT_MISSING") from None
    response["Content-Length"] = str(length)
    return response


def _multipart(file: StoredFile, spans: list[tuple[int, int]], size: int, mime: str) -> tuple[Iterator[bytes], int, str]:
    boundary = secrets.token_hex(16)
    heads = [
        f"--{boundary}\r\nContent-Type: {mime}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n".encode()
        for start, end in spans
    ]
    tail = f"--{boundary}--\r\n".encode()
    total = sum(len(h) + (end - start + 1) + 2 for h, (start, end) in zip(heads, spans, strict=True)) + len(tail)

    def body() -> Iterator[bytes]:
        for head, (start, end) in zip(heads, spans, strict=True):
            yield head
            yield from storage.iter_range(file.storage_key, start, end)
            yield b"\r\n"
        yield tail

    return body(), total, f"multipart/byteranges; boundary={boundary}"


def serve_file(request: HttpRequest, file: StoredFile, *, inline: bool = False) -> HttpResponseBase:
    """The response for GET or HEAD of ``file``'s bytes (the caller has authorised it)."""
    size = int(file.size or 0)
    mime = mime_of(file)
    etag = etag_of(file)
    modified = file.confirmed_at
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX_CSP,
    }
    if etag:
        headers["ETag"] = etag
    if modified:
        headers["Last-Modified"] = http_date(modified.timestamp())

    if _not_modified(request, etag, modified):
        response: HttpResponseBase = HttpResponse(status=304)
        for key, value in headers.items():
            response[key] = value
        return response

    headers["Content-Disposition"] = content_disposition(file.name, inline=inline and may_be_inline(mime))
    spans = None
    if request.method in ("GET", "HEAD") and _if_range_allows(request, etag, modified):
        spans = parse_range(request.META.get("HTTP_RANGE"), size, max_ranges=_conf("DOWNLOAD_MAX_RANGES"))
    if spans == UNSATISFIABLE:
        response = json_error_response(416, "RANGE_NOT_SATISFIABLE", f"No requested range overlaps the {size} bytes.")
        response["Content-Range"] = f"bytes */{size}"
        for key in ("Accept-Ranges", "ETag", "Last-Modified", "X-Content-Type-Options"):
            if key in headers:
                response[key] = headers[key]
        return response

    head_only = request.method == "HEAD"
    multipart = _multipart(file, spans, size, mime) if isinstance(spans, list) and len(spans) > 1 else None
    if multipart is not None and multipart[1] >= size:
        multipart, spans = None, None  # part headers would make it bigger than the file: send the file
    if multipart is not None:
        body, total, multipart_type = multipart
        if head_only:
            response = HttpResponse(status=206, content_type=multipart_type)
        else:
            response = StreamingHttpResponse(body, status=206, content_type=multipart_type)
        response["Content-Length"] = str(total)
    else:
        start, end = spans[0] if isinstance(spans, list) else (0, size - 1)
        status = 206 if isinstance(spans, list) else 200
        if head_only or size == 0:
            response = HttpResponse(status=status, content_type=mime)
            response["Content-Length"] = str(end - start + 1 if size else 0)
        else:
            response = _span_response(file, start, end, status, mime)
        if status == 206:
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
    for key, value in headers.items():
        response[key] = value
    # One download is a body that starts at byte 0, so a player's many range requests count once.
    response.counts_as_download = not head_only and (not isinstance(spans, list) or spans[0][0] == 0)  # type: ignore[attr-defined]
    return response
