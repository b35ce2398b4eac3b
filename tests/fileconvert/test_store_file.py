"""storage.store_file: a finished local file into storage, moved on the same file system,
copied otherwise; never through a symlink, never sharing an inode with another name."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from fileconvert import storage
from tests.s3 import moto_server, s3_storage  # noqa: F401 - fixtures


@pytest.fixture
def key():
    """A key of its own per test: the media root is shared by a worker's tests."""
    return f"org_store/fil_{uuid.uuid4().hex}/out.bin"


@pytest.fixture
def work():
    """A work directory where converters write: on the media root's file system."""
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as path:
        yield Path(path)


def written(directory: Path, data: bytes, name: str = "out.bin") -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def partial_names() -> list[str]:
    partial = Path(settings.MEDIA_ROOT) / ".partial"
    return sorted(p.name for p in partial.iterdir()) if partial.is_dir() else []


def test_a_file_on_the_media_file_system_is_moved_into_place(work, key):
    data = os.urandom(300_000)
    path = written(work, data)
    inode = path.stat().st_ino
    before = partial_names()

    assert storage.store_file(path, key, "application/octet-stream") == (len(data), hashlib.sha256(data).hexdigest())

    final = storage.local_path(key)
    assert final.read_bytes() == data
    assert final.stat().st_ino == inode  # the same file: renamed, not copied
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert not path.exists()
    assert partial_names() == before  # no temporary copy was made


def test_an_empty_file_is_stored(work, key):
    path = written(work, b"")
    assert storage.store_file(path, key) == (0, hashlib.sha256(b"").hexdigest())
    assert storage.local_path(key).read_bytes() == b""


def test_a_file_with_another_link_is_refused_not_published(work, key):
    outside = written(work, b"another tenant's bytes", "elsewhere.bin")
    path = work / "out.bin"
    os.link(outside, path)  # what a compromised converter could leave at its output path

    with pytest.raises(storage.UnsafeFile):
        storage.store_file(path, key)

    assert not storage.local_path(key).exists()
    assert outside.read_bytes() == b"another tenant's bytes"  # untouched


@pytest.mark.parametrize("meddle", ["swap", "link"])
def test_a_file_swapped_or_linked_between_the_checks_and_the_rename_is_refused(work, key, monkeypatch, meddle):
    path = written(work, b"checked bytes")
    secret = written(work, b"secret", "secret.bin")
    existing = storage.local_path(key)
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_bytes(b"what the key held before")  # e.g. a thumbnail made again
    real_partial_path = storage._partial_path

    def meddle_then_partial_path() -> Path:
        # after the checks on the open file, just before the rename by name
        if meddle == "swap":
            path.unlink()
            path.symlink_to(secret)
        else:
            os.link(path, work / "kept-link.bin")
        return real_partial_path()

    monkeypatch.setattr(storage, "_partial_path", meddle_then_partial_path)
    before = partial_names()
    with pytest.raises(storage.UnsafeFile, match="swapped or linked"):
        storage.store_file(path, key)
    assert existing.read_bytes() == b"what the key held before"  # the key is never unlinked by name
    assert partial_names() == before  # the private name is cleaned up
    assert secret.read_bytes() == b"secret"


def test_new_directories_of_a_key_are_made_durable_in_their_parents(work, key, monkeypatch):
    synced: list[Path] = []
    real_fsync_dir = storage._fsync_dir

    def fsync_dir(directory: Path) -> None:
        synced.append(directory)
        real_fsync_dir(directory)

    monkeypatch.setattr(storage, "_fsync_dir", fsync_dir)
    storage.store_file(written(work, b"x"), key)
    final = storage.local_path(key)
    org_dir, file_dir = final.parent.parent, final.parent
    media = Path(settings.MEDIA_ROOT)
    # each new entry in the directory holding it, then the file's own entry
    assert synced == [media, org_dir, file_dir] or synced == [org_dir, file_dir]
    synced.clear()
    storage.store_file(written(work, b"y", "second.bin"), key.replace("out.bin", "second.bin"))
    assert synced == [file_dir]  # nothing new to make durable but the file's entry


def test_a_symlink_at_the_output_path_is_refused_not_followed(work, key):
    target = written(work, b"secret", "target.bin")
    path = work / "out.bin"
    path.symlink_to(target)

    with pytest.raises(storage.UnsafeFile) as raised:
        storage.store_file(path, key)

    assert raised.value.errno == errno.ELOOP
    assert not storage.local_path(key).exists()
    assert path.is_symlink() and target.read_bytes() == b"secret"


@pytest.mark.parametrize("make", [Path.mkdir, os.mkfifo], ids=["directory", "fifo"])
def test_a_directory_or_a_fifo_at_the_output_path_is_refused_without_waiting(work, key, make):
    make(work / "out.bin")
    with pytest.raises(storage.UnsafeFile) as raised:
        storage.store_file(work / "out.bin", key)
    assert raised.value.errno == errno.EINVAL
    assert not storage.local_path(key).exists()


@pytest.mark.skipif(
    not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tempfile.gettempdir()).st_dev,
    reason="needs a second file system (/dev/shm)",
)
def test_a_file_on_another_file_system_is_copied_through_the_writer(monkeypatch, key):
    data = os.urandom(2 * storage.DIRECT_BUFFER + 123)
    writers: list[str] = []
    real_open_writer = storage.open_writer

    def open_writer(*args, **kwargs):
        writer = real_open_writer(*args, **kwargs)
        writers.append(type(writer).__name__)
        return writer

    monkeypatch.setattr(storage, "open_writer", open_writer)
    with (
        tempfile.TemporaryDirectory(dir="/dev/shm") as other,
        override_settings(FILECONVERT={**settings.FILECONVERT, "DIRECT_WRITE_MIN_BYTES": storage.DIRECT_BUFFER}),
    ):
        path = written(Path(other), data)
        assert storage.store_file(path, key) == (len(data), hashlib.sha256(data).hexdigest())
        assert path.read_bytes() == data  # copied: the source stays for its directory's clean-up
    assert storage.local_path(key).read_bytes() == data
    assert writers == ["DirectWriter"]  # a large body goes through O_DIRECT as an upload's does


def test_a_bind_mounted_work_directory_falls_back_to_a_copy(work, monkeypatch, key):
    # Same device number, yet rename(2) refuses across mount points (EXDEV): copied instead.
    data = b"across a mount"
    path = written(work, data)
    real_replace = os.replace

    def replace(src, dst):
        if Path(src) == path:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace)
    before = partial_names()
    assert storage.store_file(path, key) == (len(data), hashlib.sha256(data).hexdigest())
    assert storage.local_path(key).read_bytes() == data
    assert partial_names() == before and path.exists()  # copied from the open file; the source is the caller's


def test_another_rename_failure_is_raised_and_stores_nothing(work, monkeypatch, key):
    path = written(work, b"x")

    def publish(tmp: Path, final: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "_publish", publish)
    before = partial_names()
    with pytest.raises(OSError) as raised:
        storage.store_file(path, key)
    assert raised.value.errno == errno.ENOSPC
    assert not storage.local_path(key).exists()
    assert partial_names() == before  # nothing left under a private name either


def test_on_s3_the_file_is_uploaded(work, s3_storage, key):  # noqa: F811
    data = os.urandom(50_000)
    path = written(work, data)
    assert storage.store_file(path, key, "image/png") == (len(data), hashlib.sha256(data).hexdigest())
    assert s3_storage.get(key) == data
    assert s3_storage.head(key)["ContentType"] == "image/png"
