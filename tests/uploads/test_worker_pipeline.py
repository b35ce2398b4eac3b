"""The whole path through a real Celery worker: API -> on_commit -> broker -> worker -> DB.

The worker runs in a thread of the test process (celery.contrib.testing) and consumes
this xdist worker's own queue (tests/settings.py) from whichever broker the settings
name: the file-system transport by default, Redis when REDIS_URL is set. The test is
transactional so that ``transaction.on_commit`` in ``uploads.services.file_confirm``
really fires and the worker's own connection sees the committed rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import OperationalError, connections

from tests.uploads.filebytes import png_bytes, sha256_of, upload_file
from uploads.models import FileStatus, StoredFile, Task, TaskStatus

POLL_SECONDS = 30.0


@pytest.fixture
def celery_worker_thread() -> Iterator[list[tuple[str, tuple, str]]]:
    """A worker on this test process's queue; yields the (task, args, thread) it ran."""
    from fileconvert.celery import app

    ran: list[tuple[str, tuple, str]] = []

    def after_task(sender=None, args=(), **_kwargs) -> None:
        ran.append((sender.name, tuple(args), threading.current_thread().name))
        # This runs in the thread that ran the task: its connections must not outlive the
        # test (an idle one would keep PostgreSQL from dropping the test database).
        connections.close_all()

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    signals.task_postrun.connect(after_task, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            perform_ping_check=False,
            queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
            shutdown_timeout=30,
        ):
            yield ran
    finally:
        signals.task_postrun.disconnect(after_task)
        # start_worker configures logging for the whole process; give it back.
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.captureWarnings(False)


def _wait_for(predicate, timeout: float = POLL_SECONDS):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except OperationalError:  # SQLite may report the table busy while the worker writes
            last = None
        if last:
            return last
        time.sleep(0.2)
    return last


@pytest.mark.django_db(transaction=True)
def test_streamed_png_is_processed_by_a_real_worker(owner, celery_worker_thread):
    body = png_bytes(size=(120, 90))
    client = owner.client()

    uploaded = upload_file(client, body, filename="picture.png")

    assert (uploaded["size"], uploaded["sha256"]) == (len(body), sha256_of(body))  # status races the worker
    stored = StoredFile.objects.get(pk=uploaded["id"])
    assert stored.process_enqueued_at is not None  # the on_commit hook ran and published

    def finished() -> StoredFile | None:
        row = StoredFile.objects.get(pk=stored.pk)
        done = row.status not in (FileStatus.PROCESSING, FileStatus.UPLOADING, FileStatus.PENDING)
        return row if done and not Task.objects.filter(file_id=row.pk, status=TaskStatus.PROCESSING).exists() else None

    row = _wait_for(finished)

    assert row is not None, f"not processed within {POLL_SECONDS}s: {StoredFile.objects.get(pk=stored.pk).status}"
    assert row.status in (FileStatus.ACTIVE, FileStatus.STAGED), (row.status, row.error_code, row.error_message)
    assert row.process_attempts == 1
    assert (row.size, row.sha256) == (len(body), sha256_of(body))
    assert row.kind == "png"
    assert row.content_type == "image/png"
    assert row.thumbnail_key
    task = Task.objects.get(file_id=row.pk)
    expected = TaskStatus.REVIEWING if row.status == FileStatus.STAGED else TaskStatus.COMPLETED
    assert task.status == expected
    # Processed by the worker (its thread, from the broker), not inline by the request.
    threads = [thread for name, args, thread in celery_worker_thread if (name, args) == ("uploads.tasks.process_file", (row.pk,))]
    assert len(threads) == 1
    assert threads[0] != threading.current_thread().name
