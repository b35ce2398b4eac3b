"""One storage layer over Django's default storage: local disk or S3.

Writers stream: bytes go to storage chunk by chunk (a temporary file renamed into
place on disk; a multipart upload on S3), so memory stays flat whatever the size,
and nothing is visible at the final key until ``commit``. A file the platform made itself
(a conversion's output, a thumbnail) goes in with ``store_file``: moved into place on the
same file system instead of copied.

A large body of known size on local disk goes through ``DirectWriter`` (decision 0006):
``O_DIRECT`` writes from a small ring of aligned buffers, on a writer thread, while the
request thread receives and hashes the next buffer. The bytes skip the page cache (no
copy into it, no cache pollution, nothing left to flush at ``commit``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import mmap
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage

S3_PART_SIZE = 8 * 1024 * 1024  # S3 minimum is 5 MiB for every part but the last
READ_CHUNK = 1024 * 1024
DIRECT_BUFFER = 4 * 1024 * 1024  # one O_DIRECT write; a multiple of any block size
DIRECT_BUFFERS = 3  # one being filled, up to two being written


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


def _partial_path() -> Path:
    # Same file system as the final path, so commit is a rename, not a copy.
    partial = Path(settings.MEDIA_ROOT) / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=partial, prefix="up-")
    os.close(fd)
    return Path(name)


class LocalWriter:
    def __init__(self, key: str) -> None:
        self.key = key
        self.final = local_path(key)
        self._tmp = _partial_path()
        self._fh: IO[bytes] = open(self._tmp, "wb", buffering=0)  # noqa: SIM115 - closed by commit/abort
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
        _publish(self._tmp, self.final)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def _publish(tmp: Path, final: Path) -> None:
    """Rename a durable temporary file to its key and make the rename durable too."""
    _durable_dirs(final.parent)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _durable_dirs(directory: Path) -> None:
    """``directory`` and its missing parents, each new entry made durable in the directory
    holding it (a key's ``org/<id>/`` is new for every file: without this a crash could lose
    the entry, and the file with it, on a file system that does not order metadata)."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another writer: synced again here anyway
            new.mkdir()
        _fsync_dir(new.parent)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class DirectWriter:
    """A local writer for large bodies: ``O_DIRECT`` writes on a thread, from a ring of buffers.

    The caller either ``write``s chunks (copied into the current buffer) or fills
    ``buffer()`` in place and calls ``advance`` (one copy fewer: ``uploads.services.stream_into``
    receives from the socket straight into it). A full buffer is handed to the writer
    thread and the next free one is taken; memory is ``DIRECT_BUFFERS`` x ``DIRECT_BUFFER``
    whatever the size. Only full buffers are written until ``commit``, so every write
    is aligned; the last one is padded to the block size and the file truncated back.
    A file system that refuses ``O_DIRECT`` (tmpfs, some network mounts) is written
    through the page cache instead, by the same thread.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.final = local_path(key)
        self._tmp = _partial_path()
        self.direct = True
        try:
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                self._tmp.unlink(missing_ok=True)
                raise
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            self.direct = False
        self._buffers: list[mmap.mmap] = []
        self._free = list(range(1, DIRECT_BUFFERS))
        self._queue: list[tuple[int, int, int] | None] = []
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._current = 0
        self._filled = 0
        self._offset = 0  # file offset of the current buffer
        self.bytes_written = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"direct-writer-{key}", daemon=True)
        try:
            # st_blksize is the preferred I/O size, not the O_DIRECT alignment: GPFS, Lustre, XFS
            # largeio or ZFS may report more than a buffer (the final pad would not fit). 4 KiB is
            # enough for any logical block size; an EINVAL on a write still drops O_DIRECT.
            blksize = os.fstat(self._fd).st_blksize
            self._block = blksize if 4096 <= blksize <= DIRECT_BUFFER and DIRECT_BUFFER % blksize == 0 else 4096
            self._buffers = [mmap.mmap(-1, DIRECT_BUFFER) for _ in range(DIRECT_BUFFERS)]
            self._thread.start()  # RuntimeError when the process cannot get another thread
        except BaseException:
            os.close(self._fd)
            self._closed = True
            self._release()
            self._tmp.unlink(missing_ok=True)
            raise

    # -- the caller's side ------------------------------------------------------------

    def buffer(self) -> memoryview:
        """The unfilled rest of the current buffer: fill some of it, then ``advance``."""
        return memoryview(self._buffers[self._current])[self._filled :]

    def advance(self, count: int) -> None:
        if count < 0 or self._filled + count > DIRECT_BUFFER:
            raise ValueError("advance beyond the buffer")
        self._filled += count
        self.bytes_written += count
        if self._filled == DIRECT_BUFFER:
            self._hand_over()

    def write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        while view:
            room = self.buffer()
            count = min(len(room), len(view))
            room[:count] = view[:count]
            view = view[count:]
            self.advance(count)

    def _hand_over(self) -> None:
        with self._cond:
            self._raise_error()
            self._queue.append((self._current, self._filled, self._offset))
            self._offset += self._filled
            self._cond.notify_all()
            while not self._free and self._error is None:
                self._cond.wait()
            self._raise_error()
            self._current = self._free.pop()
            self._filled = 0

    def _raise_error(self) -> None:
        if self._error is not None:
            raise OSError(f"writing {self.key} failed: {self._error}") from self._error

    def commit(self) -> None:
        size = self._offset + self._filled
        if self._filled:
            padded = -(-self._filled // self._block) * self._block
            memoryview(self._buffers[self._current])[self._filled : padded] = bytes(padded - self._filled)
            self._filled = padded
            self._hand_over()
        self._stop()
        self._raise_error()
        if self._offset != size:
            os.ftruncate(self._fd, size)
        os.fsync(self._fd)  # metadata and the size; the data went past the cache
        os.close(self._fd)
        self._closed = True
        self._release()
        _publish(self._tmp, self.final)

    def abort(self) -> None:
        with self._cond:  # buffers handed over but not yet written are dropped, not written
            self._queue = [item for item in self._queue if item is None]
        self._stop()  # waits for the one write in flight, if any
        if not self._closed:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._closed = True
        self._release()
        self._tmp.unlink(missing_ok=True)

    def _stop(self) -> None:
        with self._cond:
            self._queue.append(None)
            self._cond.notify_all()
        self._thread.join()

    def _release(self) -> None:
        # The thread's error keeps its traceback (for the caller's ``raise ... from``), but not a
        # reference back to this writer: writer -> _error -> traceback -> frame -> writer was a
        # cycle that kept the buffers mapped until the cyclic GC ran.
        self._error = None
        for buf in self._buffers:
            with contextlib.suppress(BufferError):  # a caller's view still open: the GC frees it
                buf.close()

    # -- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.pop(0)
            if item is None:
                return
            index, length, offset = item
            try:
                if self._error is None:
                    with memoryview(self._buffers[index]) as whole, whole[:length] as view:
                        self._pwrite_all(view, offset)
            except Exception as exc:  # noqa: BLE001 - any failure reaches the caller at its next hand-over
                self._error = exc
            with self._cond:
                self._free.append(index)
                self._cond.notify_all()

    def _pwrite_all(self, whole: memoryview, offset: int) -> None:
        done = 0
        while done < len(whole):
            try:
                # A fresh slice per call, dropped at once: no view on the buffer outlives the write
                # (not even in the traceback of an error kept in ``_error``).
                written = os.pwrite(self._fd, whole[done:], offset + done)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self.direct:
                    raise
                # The file system takes O_DIRECT at open but not this write: go through the cache.
                fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                self.direct = False
                continue
            if not written:
                raise OSError("the file system accepted no bytes")
            done += written


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


def open_writer(key: str, content_type: str = "application/octet-stream", *, size_hint: int | None = None) -> StorageWriter:
    """A writer for ``key``; ``size_hint`` (the announced size) picks ``DirectWriter`` for
    large bodies on local disk (``settings.FILECONVERT["DIRECT_WRITE_MIN_BYTES"]``, 0 = never)."""
    if is_s3():
        return S3Writer(key, content_type)
    threshold = settings.FILECONVERT.get("DIRECT_WRITE_MIN_BYTES", 0)
    if threshold and size_hint is not None and size_hint >= threshold:
        return DirectWriter(key)
    return LocalWriter(key)


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


class UnsafeFile(OSError):
    """What ``store_file`` refuses: anything but a regular file with one link at the path (a
    symlink, FIFO, directory or hard link planted where an output should be), or a file
    swapped for another while it was being stored. Not transient: retrying gives the same."""


def store_file(path: Path, key: str, content_type: str = "application/octet-stream") -> tuple[int, str]:
    """Put a finished local file (a conversion's output, a thumbnail, an edited copy) into
    storage under ``key``: (size, SHA-256). Durable before visible, as with the writers
    (decision 0015).

    On local storage on the same file system the file is moved, not copied: hashed, made
    durable where it is, renamed to a private name in ``.partial`` where it is checked, then
    renamed to its key and its directory made durable. A gigabyte video output is then never
    copied, and a small one skips the copy and its second set of writes. The file at ``path``
    is gone afterwards; the caller's temporary directory is cleaned up either way. Another
    file system (a bind mount: ``EXDEV``) or S3: copied through ``open_writer``.

    Only a regular file with one link is taken (``UnsafeFile`` otherwise): a symlink is
    refused, never followed (``O_NOFOLLOW``), a FIFO is opened without waiting for a writer
    and refused, and a hard link (which a compromised converter could make to another
    tenant's file) is refused rather than published. The checks are made on the open file;
    the first rename is by name, so the private name is checked afterwards to hold that same
    file with still one link (a swap, or a link made meanwhile, is undone there and refused).
    The key itself is only ever replaced by the checked file, never unlinked by name.
    """
    try:
        # O_NONBLOCK: a FIFO planted there is opened without waiting for a writer, then refused.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(errno.ELOOP, "a symlink, not a file", str(path)) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise UnsafeFile(errno.EINVAL, "not a regular file with one link", str(path))
    with os.fdopen(fd, "rb", buffering=0) as fh:
        if not is_s3() and info.st_dev == os.stat(settings.MEDIA_ROOT).st_dev:
            size, digest = _digest_of(fh)
            os.fchmod(fd, 0o600)  # as private as the writers' temporary files
            os.fsync(fd)
            private = _partial_path()
            try:
                os.replace(path, private)
            except OSError as exc:
                private.unlink(missing_ok=True)
                if exc.errno != errno.EXDEV:
                    raise
            else:
                try:
                    _checked(private, fd, info)
                    _publish(private, local_path(key))
                except BaseException:
                    private.unlink(missing_ok=True)  # a file or a link: a directory cannot replace it
                    raise
                return size, digest
            fh.seek(0)
        return _copy_into(fh, key, content_type, info.st_size)


def _checked(private: Path, fd: int, info: os.stat_result) -> None:
    """``private`` holds the file opened as ``fd``, which still has one link."""
    moved, now = os.lstat(private), os.fstat(fd)
    if (moved.st_dev, moved.st_ino) != (info.st_dev, info.st_ino) or now.st_nlink != 1:
        raise UnsafeFile(errno.EINVAL, "the file was swapped or linked while it was stored", str(private))


def _digest_of(fh: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while chunk := fh.read(READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _copy_into(fh: IO[bytes], key: str, content_type: str, size_hint: int) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    writer = open_writer(key, content_type, size_hint=size_hint)
    try:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return size, digest.hexdigest()


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
