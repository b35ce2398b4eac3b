"""One storage layer over Django's default storage: local disk or S3.

Writers stream: bytes go to storage chunk by chunk (a temporary file renamed into
place on disk; a multipart upload on S3), so memory stays flat whatever the size,
and nothing is visible at the final key until ``commit``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage

S3_PART_SIZE = 8 * 1024 * 1024  # S3 minimum is 5 MiB for every part but the last
READ_CHUNK = 1024 * 1024


class StorageWriter(Protocol):
    bytes_written: int

    def write(self, chunk: bytes | memoryview) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


def is_s3() -> bool:
    return not isinstance(default_storage, FileSystemStorage)


def _s3() -> tuple[Any, str]:
    storage: Any = default_storage
    return storage.connection.meta.client, storage.bucket_name


def local_path(key: str) -> Path:
    return Path(default_storage.path(key))


class LocalWriter:
    def __init__(self, key: str) -> None:
        self.key = key
        self.final = local_path(key)
        partial = Path(settings.MEDIA_ROOT) / ".partial"
        partial.mkdir(parents=True, exist_ok=True)
        # Same file system as the final path, so commit is a rename, not a copy.
        fd, name = tempfile.mkstemp(dir=partial, prefix="up-")
        self._tmp = Path(name)
        self._fh: IO[bytes] = os.fdopen(fd, "wb", buffering=0)
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)  # bytes or a memoryview of the caller's reused buffer
        while view:  # an unbuffered write may be partial
            written = self._fh.write(view)
            if not written:
                raise OSError("the file system accepted no bytes")
            view = view[written:]
        self.bytes_written += len(chunk)

    def commit(self) -> None:
        # Durable before visible: a row is confirmed only after this returns.
        os.fsync(self._fh.fileno())
        self._fh.close()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, self.final)
        dir_fd = os.open(self.final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


class S3Writer:
    def __init__(self, key: str, content_type: str = "application/octet-stream") -> None:
        self.key = key
        self.client, self.bucket = _s3()
        self.content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        self.bytes_written += len(chunk)
        while len(self._buffer) >= S3_PART_SIZE:
            self._flush_part(bytes(self._buffer[:S3_PART_SIZE]))
            del self._buffer[:S3_PART_SIZE]

    def _flush_part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, ContentType=self.content_type)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        part = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data)
        self._parts.append({"PartNumber": number, "ETag": part["ETag"]})

    def commit(self) -> None:
        if self._upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self.content_type)
        else:
            if self._buffer:
                self._flush_part(bytes(self._buffer))
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer = bytearray()

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            self._upload_id = None


def open_writer(key: str, content_type: str = "application/octet-stream") -> StorageWriter:
    return S3Writer(key, content_type) if is_s3() else LocalWriter(key)


def open_reader(key: str) -> IO[bytes]:
    if is_s3():
        client, bucket = _s3()
        return client.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[no-any-return]
    return open(local_path(key), "rb")


def iter_chunks(key: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    with contextlib.closing(open_reader(key)) as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def open_range(key: str, start: int, end: int, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Bytes ``start..end`` (inclusive) of an object: one S3 ranged GET (never the whole
    object) or a seek on disk; memory stays at one chunk. The object is opened *now*, so a
    missing object raises ``FileNotFoundError`` here, before a response has started; the
    iterator raises OSError if the object turns out shorter."""
    if is_s3():
        client, bucket = _s3()
        try:
            body: Any = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"]
        except client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None
    else:
        body = open(local_path(key), "rb")  # noqa: SIM115 - closed by the iterator
        body.seek(start)
    return _read_span(body, key, end - start + 1, chunk_size)


def _read_span(body: Any, key: str, remaining: int, chunk_size: int) -> Iterator[bytes]:
    with contextlib.closing(body):
        while remaining > 0:
            chunk = body.read(min(chunk_size, remaining))
            if not chunk:
                raise OSError(f"stored object {key} ended {remaining} bytes early")
            remaining -= len(chunk)
            yield chunk


def iter_range(key: str, start: int, end: int, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Like ``open_range``, but the object is opened when iteration starts."""
    yield from open_range(key, start, end, chunk_size)


def object_size(key: str) -> int | None:
    """Size of the object at ``key``, or None if there is none."""
    if is_s3():
        client, bucket = _s3()
        try:
            return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
    path = local_path(key)
    return path.stat().st_size if path.is_file() else None


def delete(key: str) -> None:
    """Idempotent delete."""
    if not key:
        return
    if is_s3():
        client, bucket = _s3()
        client.delete_object(Bucket=bucket, Key=key)
        return
    path = local_path(key)
    path.unlink(missing_ok=True)
    # Remove the now-empty per-file directory (org/file_id/), never the org directory.
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def check_reachable() -> None:
    """Raises if storage cannot be used (readiness): the bucket, or the media directory."""
    if is_s3():
        client, bucket = _s3()
        client.head_bucket(Bucket=bucket)
        return
    root = local_path("")
    if not root.is_dir() or not os.access(root, os.W_OK):
        raise OSError(f"media directory {root} is not writable")


def save_bytes(key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    writer = open_writer(key, content_type)
    try:
        writer.write(data)
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def presigned_post(key: str, *, max_bytes: int, expires_in: int, content_type: str | None = None) -> dict[str, Any]:
    """A real S3 presigned POST whose policy fixes the key and bounds the size."""
    client, bucket = _s3()
    conditions: list[Any] = [{"key": key}, ["content-length-range", 1, max_bytes]]
    fields: dict[str, str] = {}
    if content_type:
        fields["Content-Type"] = content_type
        conditions.append({"Content-Type": content_type})
    return client.generate_presigned_post(  # type: ignore[no-any-return]
        Bucket=bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
    )
