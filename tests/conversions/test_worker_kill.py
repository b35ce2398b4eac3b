"""Fault F1: the worker process running a conversion is SIGKILLed mid-job. With acks_late
and reject_on_worker_lost the message is redelivered; the new process sees the claim of a
dead process and takes the job over; the job ends exactly once (one output, one success
audit row) and nothing the dead process started keeps running.

Needs a real Redis broker (REDIS_URL) and PostgreSQL (the worker is a separate process
that must see the test database); skipped otherwise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from accounts.models import AuditEvent
from conversions.models import ConversionJob, JobStatus
from tests.conftest import data_of
from tests.conversions import samples
from uploads.models import StoredFile

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis broker)"),
    pytest.mark.skipif(not samples.HAS_FFMPEG, reason="ffmpeg is not installed"),
    pytest.mark.slow,
]


def _processes_mentioning(needle: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            except OSError:
                continue
            if needle in cmdline and "ffmpeg" in cmdline:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate, timeout: float = 120.0, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(poll)
    return None


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_job_ends_exactly_once(member, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a shared database (PostgreSQL)")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
        "FILECONVERT_DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "fileconvert", "worker", "--pool", "prefork", "--concurrency", "1"]
    command += ["-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    worker = subprocess.Popen(
        command,
        env=env,
        cwd=settings.BASE_DIR,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        video = samples.video_bytes(tmp_path, "mp4", seconds=40.0, size="640x360")
        form = {"file": SimpleUploadedFile("long.mp4", video), "target_format": "webm"}
        job = data_of(member.client().post("/api/convert", form, format="multipart"), 202)

        def mid_job():
            row = ConversionJob.objects.get(pk=job["id"])
            return row if row.status == JobStatus.RUNNING and row.progress >= 3 else None

        running = _wait(mid_job)
        assert running is not None, ConversionJob.objects.get(pk=job["id"]).status
        victim = int(running.claimed_by.rsplit(":", 1)[1])
        encoders = _processes_mentioning(str(settings.DATA_DIR))
        assert encoders, "ffmpeg should be running for the job"
        os.kill(victim, signal.SIGKILL)

        # Nothing the dead process started keeps running (PR_SET_PDEATHSIG down the chain).
        assert _wait(lambda: not any(_alive(pid) for pid in encoders), timeout=10), "orphaned ffmpeg survived"

        def finished():
            row = ConversionJob.objects.get(pk=job["id"])
            return row if row.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None

        done = _wait(finished, timeout=300, poll=0.5)
        assert done is not None and done.status == JobStatus.SUCCEEDED, done and (done.error_code, done.error_message)
        assert done.attempts == 2
        assert done.claimed_by != running.claimed_by
        outputs = StoredFile.objects.filter(parent_id=job["source_file_id"], metadata__conversion__job_id=job["id"])
        assert outputs.count() == 1 and outputs[0].pk == done.result_id
        assert AuditEvent.objects.filter(target_id=job["id"], action="conversion.succeed").count() == 1
        info = samples.probe(Path(settings.MEDIA_ROOT) / outputs[0].storage_key)
        assert abs(float(info["format"]["duration"]) - 40.0) < 1.0
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
