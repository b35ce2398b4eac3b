"""Shared bench plumbing: a throw-away embedded-mode data dir, a real gunicorn, an API key."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchServer:
    def __init__(self, *, workers: int = 1, threads: int = 1, cpu: str | None = "1", data_dir: Path | None = None) -> None:
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="fileconvert-bench-", dir=os.environ.get("BENCH_TMP")))
        self.port = free_port()
        self.workers, self.threads, self.cpu = workers, threads, cpu
        self.env = {
            **os.environ,
            "FILECONVERT_DATA_DIR": str(self.data_dir),
            "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(workers),
            "WEB_THREADS": str(threads),
            # The throttle still runs on every request; its limits are not what a bench measures.
            "THROTTLE_IDENTITY": "1000000/min",
            "THROTTLE_ANON": "1000000/min",
        }
        self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [PY, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def start(self) -> BenchServer:
        self.manage("migrate", "--noinput", "-v", "0")
        org = self.manage("create_org", "Bench", "--quota-bytes", str(1 << 40)).splitlines()[-1]
        self.manage("create_user", "bench@example.com", "--org", org, "--role", "owner")
        self.manage(
            "shell",
            "-c",
            f"from accounts.models import Organization; Organization.objects.filter(pk='{org}').update(file_quota=10**9)",
        )
        self.manage(
            "shell",
            "-c",
            f"from accounts.models import Organization, OrgSetting; o = Organization.objects.get(pk='{org}'); "
            "OrgSetting.objects.create(organization=o, key='review.required', value=False)",
        )
        self.key = self.manage("create_api_key", "--org", org, "--user", "bench@example.com").splitlines()[-1]
        cmd = [
            str(Path(PY).parent / "gunicorn"),
            "fileconvert.wsgi",
            "-c",
            str(ROOT / "fileconvert/gunicorn_conf.py"),
            "-b",
            f"127.0.0.1:{self.port}",
            "--access-logfile",
            "/dev/null",
        ]
        if self.cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", self.cpu, *cmd]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-f", f"127.0.0.1:{self.port}"], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out if int(p) != self.proc.pid and _is_gunicorn_child(int(p))]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _is_gunicorn_child(pid: int) -> bool:
    try:
        return "gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore")
    except OSError:
        return False


def proc_status(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def proc_io(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def plain_write(path: Path, block: bytes, blocks: int) -> float:
    """The same bytes, written and made durable (fsync), as the upload path does: the baseline of the upload benches."""
    started = time.perf_counter()
    with open(path, "wb", buffering=0) as fh:
        for _ in range(blocks):
            fh.write(block)
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def plain_write_direct(path: Path, block: bytes, blocks: int) -> float:
    """The same bytes written with O_DIRECT from one aligned buffer, then fsync: what the
    disk takes when the page cache is out of the way (a reference, not the baseline)."""
    import mmap

    aligned = mmap.mmap(-1, len(block))
    aligned.write(block)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    started = time.perf_counter()
    try:
        for _ in range(blocks):
            os.write(fd, aligned)
        os.fsync(fd)
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        aligned.close()
        path.unlink()
    return elapsed
