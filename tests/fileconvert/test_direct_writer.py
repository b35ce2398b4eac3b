"""storage.DirectWriter: O_DIRECT writes from a ring of buffers on a writer thread."""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import signal
import socket
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from fileconvert import storage
from fileconvert.wsgi_input import content_length_body
from tests.fileconvert.test_wsgi_input import gunicorn_body, meta_for, send_later
from uploads.services import stream_into

BUF = storage.DIRECT_BUFFER


def partial_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / ".partial"


def partial_names() -> list[str]:
    return sorted(p.name for p in partial_dir().iterdir()) if partial_dir().is_dir() else []


def uses_o_direct(writer: storage.DirectWriter) -> bool:
    return bool(fcntl.fcntl(writer._fd, fcntl.F_GETFL) & os.O_DIRECT)


@pytest.fixture
def payload():
    return os.urandom(2 * BUF + 4096 * 3 + 17)


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, BUF - 1, BUF, BUF + 1, 2 * BUF + 12_345])
def test_exact_bytes_and_size_for_awkward_sizes(payload, size):
    data = (payload * 2)[:size]
    writer = storage.DirectWriter(f"org/fil_{size}/a.bin")
    assert writer.direct and uses_o_direct(writer)  # the test media directory is on a real disk
    for start in range(0, size, 777_777):  # chunks that never line up with a buffer
        writer.write(data[start : start + 777_777])
    writer.commit()
    path = storage.local_path(f"org/fil_{size}/a.bin")
    assert path.stat().st_size == size
    assert path.read_bytes() == data
    assert writer.bytes_written == size
    assert not writer._thread.is_alive()


def test_in_place_filling_matches_writes(payload):
    writer = storage.DirectWriter("org/fil/inplace.bin")
    offset = 0
    while offset < len(payload):
        room = writer.buffer()
        count = min(len(room), len(payload) - offset, 1_000_003)
        room[:count] = payload[offset : offset + count]
        writer.advance(count)
        offset += count
    writer.commit()
    assert storage.local_path("org/fil/inplace.bin").read_bytes() == payload


def test_advance_past_the_buffer_is_refused():
    writer = storage.DirectWriter("org/fil/over.bin")
    with pytest.raises(ValueError):
        writer.advance(BUF + 1)
    writer.abort()


def test_empty_commit_makes_an_empty_file():
    writer = storage.DirectWriter("org/fil/empty.bin")
    writer.commit()
    assert storage.local_path("org/fil/empty.bin").read_bytes() == b""


def test_abort_midway_leaves_nothing(payload):
    before = partial_names()
    writer = storage.DirectWriter("org/fil/aborted.bin")
    writer.write(payload)
    writer.abort()
    assert partial_names() == before
    assert not storage.local_path("org/fil/aborted.bin").exists()
    assert not writer._thread.is_alive()


def test_nothing_is_visible_before_commit(payload):
    writer = storage.DirectWriter("org/fil/later.bin")
    writer.write(payload)
    assert not storage.local_path("org/fil/later.bin").exists()
    writer.commit()
    assert storage.local_path("org/fil/later.bin").exists()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs at /dev/shm")
def test_tmpfs_works_whether_or_not_it_takes_o_direct(payload):
    """Older kernels refuse O_DIRECT on tmpfs at open (the writer then goes through the
    cache); 6.6 and newer accept it. Either way the bytes must be exact."""
    shm = Path(os.environ.get("SHM_DIR", "/dev/shm")) / f"fc-direct-{os.getpid()}"
    shm.mkdir(exist_ok=True)
    try:
        from django.core.files.storage import default_storage

        with override_settings(MEDIA_ROOT=str(shm)):
            default_storage._wrapped = type(default_storage._wrapped)()  # a storage on the new root
            try:
                writer = storage.DirectWriter("org/fil/shm.bin")
                assert writer.direct == uses_o_direct(writer)
                writer.write(payload)
                writer.commit()
                assert (shm / "org/fil/shm.bin").read_bytes() == payload
            finally:
                default_storage._wrapped = type(default_storage._wrapped)()
    finally:
        import shutil

        shutil.rmtree(shm, ignore_errors=True)


def test_a_write_the_kernel_refuses_as_unaligned_falls_back_to_the_cache(payload):
    """EINVAL from an O_DIRECT write (a block size larger than the file system reported):
    the writer drops O_DIRECT for the rest of the file instead of failing the upload."""
    writer = storage.DirectWriter("org/fil/unaligned.bin")
    writer._block = 1  # the final write then has an odd length, which O_DIRECT refuses
    data = payload[: BUF + 3]
    writer.write(data)
    writer.commit()
    assert not writer.direct
    assert storage.local_path("org/fil/unaligned.bin").read_bytes() == data


def test_a_failed_write_on_the_thread_reaches_the_caller_and_keeps_nothing(payload):
    """A real write error (EFBIG past RLIMIT_FSIZE) happens on the writer thread; the
    request thread sees an OSError at its next hand-over or at commit, and abort cleans up."""
    before = partial_names()
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    writer = storage.DirectWriter("org/fil/toolarge.bin")
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (BUF, old_limit[1]))
        with pytest.raises(OSError, match=r"toolarge\.bin"):
            for _ in range(6):
                writer.write(payload)
            writer.commit()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
        writer.abort()
    assert partial_names() == before
    assert not storage.local_path("org/fil/toolarge.bin").exists()


def test_open_writer_picks_direct_writes_for_large_announced_bodies():
    conf = {**settings.FILECONVERT, "DIRECT_WRITE_MIN_BYTES": 1024}
    with override_settings(FILECONVERT=conf):
        small = storage.open_writer("org/fil/s.bin", size_hint=1023)
        large = storage.open_writer("org/fil/l.bin", size_hint=1024)
        unknown = storage.open_writer("org/fil/u.bin")
    with override_settings(FILECONVERT={**conf, "DIRECT_WRITE_MIN_BYTES": 0}):
        never = storage.open_writer("org/fil/n.bin", size_hint=10**9)
    assert isinstance(large, storage.DirectWriter)
    assert [type(w) for w in (small, unknown, never)] == [storage.LocalWriter] * 3
    for writer in (small, large, unknown, never):
        writer.abort()


def test_stream_into_receives_from_the_socket_straight_into_the_ring():
    server, client = socket.socketpair()
    try:
        payload = os.urandom(3 * BUF + 999)
        body = gunicorn_body(server, len(payload), read_ahead=payload[:500])
        sender = send_later(client, payload[500:])
        writer = storage.DirectWriter("org/fil/socket.bin")
        filled = []
        original = writer.advance
        writer.advance = lambda n: (filled.append(n), original(n))[1]  # observe, not replace
        received = stream_into(writer, content_length_body(meta_for(body, server), len(payload)), limit=10**9)
        writer.commit()
        sender.join()
    finally:
        server.close()
        client.close()
    assert received.size == len(payload)
    assert received.sha256 == hashlib.sha256(payload).hexdigest()
    assert received.head == payload[:8192]
    assert sum(filled) == len(payload)  # every byte was placed in the writer's buffers, none copied through write()
    assert storage.local_path("org/fil/socket.bin").read_bytes() == payload


def test_the_limit_stops_the_stream_and_abort_cleans_up():
    server, client = socket.socketpair()
    before = partial_names()
    try:
        body = gunicorn_body(server, 3 * BUF)
        send_later(client, b"z" * (3 * BUF))
        writer = storage.DirectWriter("org/fil/limit.bin")
        with pytest.raises(Exception) as caught:
            stream_into(writer, content_length_body(meta_for(body, server), 3 * BUF), limit=BUF + 5)
        writer.abort()
    finally:
        server.close()
        client.close()
    assert caught.value.status_code == 413
    assert partial_names() == before


def test_writers_on_several_threads_do_not_mix(payload):
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            writer = storage.DirectWriter(f"org/fil_t{i}/t.bin")
            writer.write(payload[i:] + payload[:i])
            writer.commit()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i in range(4):
        assert storage.local_path(f"org/fil_t{i}/t.bin").read_bytes() == payload[i:] + payload[:i]


def test_a_failed_write_leaves_no_buffer_mapped_after_abort(monkeypatch):
    """The error kept from the writer thread must not pin a buffer (a view in its traceback) nor
    keep the writer alive through a reference cycle: 12 MiB per failed upload until the GC ran."""
    import errno
    import gc
    import weakref

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    gc.disable()
    try:
        monkeypatch.setattr(os, "pwrite", full)
        writer = storage.DirectWriter("org/fil/full.bin")
        buffers, ref = list(writer._buffers), weakref.ref(writer)
        with pytest.raises(OSError, match="No space"):
            writer.write(b"x" * (3 * BUF))
        writer.abort()
        assert all(buf.closed for buf in buffers)
        del writer
        assert ref() is None
    finally:
        gc.enable()


def test_a_preferred_io_size_larger_than_a_buffer_is_not_the_alignment(monkeypatch, payload):
    real = os.fstat

    class Big:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return getattr(self._st, name)

        st_blksize = 8 * BUF  # GPFS, Lustre, XFS largeio, ZFS recordsize=16M

    monkeypatch.setattr(os, "fstat", lambda fd: Big(real(fd)))
    writer = storage.DirectWriter("org/fil/bigblk.bin")
    monkeypatch.setattr(os, "fstat", real)
    writer.write(payload[:1000])
    writer.commit()
    assert storage.local_path("org/fil/bigblk.bin").read_bytes() == payload[:1000]


def test_abort_drops_buffers_not_yet_written(monkeypatch, payload):
    """Only the write in flight finishes; queued buffers are not written to a file about to go."""
    import time

    real, calls = os.pwrite, []

    def slow(fd, data, offset):
        calls.append(offset)
        time.sleep(0.3)
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", slow)
    writer = storage.DirectWriter("org/fil/dropped.bin")
    writer.write(payload[: 2 * BUF])  # two full buffers handed over
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:  # the first is in flight, the second queued
        time.sleep(0.01)
    writer.abort()
    assert calls == [0]
    assert not writer._thread.is_alive()
    assert not storage.local_path("org/fil/dropped.bin").exists()
