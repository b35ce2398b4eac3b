"""Shared plumbing of the conversion benches: a throw-away PostgreSQL database, a Redis
broker on a DB index of our own, real Celery worker processes, an organization with an
API key, and (for latency) a real gunicorn. Not run directly."""

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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchEnv:
    """Environment variables every process of the bench shares, and their set-up."""

    def __init__(self, *, name: str, redis_db: int) -> None:
        import psycopg
        from psycopg import sql

        base = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
        self.db_name = f"fileconvert_bench_{name}"
        admin_url = base.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        self.admin_url = admin_url
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"fileconvert-bench-{name}-", dir=os.environ.get("BENCH_TMP")))
        redis = os.environ.get("BENCH_REDIS", DEFAULT_REDIS)
        self.broker = f"{redis}/{redis_db}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")},
            "FILECONVERT_DATA_DIR": str(self.data_dir),
            "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
            "DATABASE_URL": base.rsplit("/", 1)[0] + "/" + self.db_name,
            "REDIS_URL": f"{redis}/{redis_db + 1}",
            "CELERY_BROKER_URL": self.broker,
            "CELERY_QUEUE": f"bench-{name}",
            "LOG_LEVEL": "WARNING",
            "THROTTLE_IDENTITY": "1000000/min",
            "THROTTLE_ANON": "1000000/min",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.org = self.key = ""

    def apply(self) -> None:
        """Point this process at the bench environment and set Django up."""
        os.environ.update(self.env)
        import django

        django.setup()

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [PY, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def prepare(self) -> None:
        import redis

        redis.Redis.from_url(self.broker).flushdb()
        self.manage("migrate", "--noinput", "-v", "0")
        self.org = self.manage("create_org", "Bench", "--quota-bytes", str(1 << 42)).splitlines()[-1]
        self.manage("create_user", "bench@example.com", "--org", self.org, "--role", "owner")
        self.manage(
            "shell",
            "-c",
            "from accounts.models import Organization, OrgSetting; "
            f"Organization.objects.filter(pk='{self.org}').update(file_quota=10**9); "
            f"OrgSetting.objects.create(organization_id='{self.org}', key='review.required', value=False)",
        )
        self.key = self.manage("create_api_key", "--org", self.org, "--user", "bench@example.com").splitlines()[-1]

    def start_worker(self, *, concurrency: int = 2, app: str = "bench._conversions_app") -> subprocess.Popen[bytes]:
        cmd = [str(Path(PY).parent / "celery"), "-A", app, "worker", "--loglevel", "WARNING"]
        cmd += ["--concurrency", str(concurrency), "--pool", "prefork", "-Q", self.env["CELERY_QUEUE"], "--without-gossip"]
        cmd += ["--without-mingle", "--without-heartbeat", *os.environ.get("BENCH_WORKER_ARGS", "").split()]
        from fileconvert.sandbox import worker_environ

        env = worker_environ(self.env) if os.environ.get("BENCH_WORKER_HUGEPAGES", "1") != "0" else self.env
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        time.sleep(4)  # the pool forks and connects
        return proc

    def start_web(self, *, workers: int = 1, park_uploads_processing: bool = False) -> int:
        """gunicorn; with ``park_uploads_processing`` the processing of what it stores (a
        ``POST /api/convert`` source) goes to the parked queue, not to the bench's workers."""
        port = free_port()
        env = {**self.env, "WEB_CONCURRENCY": str(workers), "WEB_THREADS": "1"}
        if park_uploads_processing:
            env["DJANGO_SETTINGS_MODULE"] = "bench._settings"
        cmd = [str(Path(PY).parent / "gunicorn"), "fileconvert.wsgi", "-c", str(ROOT / "fileconvert/gunicorn_conf.py")]
        cmd += ["-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"]
        self.procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return port
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self, keep: bool = False) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if not keep:
            import psycopg
            from django.db import connections
            from psycopg import sql

            connections.close_all()
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
            shutil.rmtree(self.data_dir, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def identity() -> Any:
    from accounts.identity import MODE_API_KEY, Identity
    from accounts.models import Membership
    from accounts.scopes import ROLE_SCOPES

    membership = Membership.objects.select_related("organization", "user").get(user__email="bench@example.com")
    return Identity(
        org=membership.organization,
        user=membership.user,
        role=membership.role,
        mode=MODE_API_KEY,
        scopes=ROLE_SCOPES[membership.role],
    )


def file_with_bytes(actor: Any, name: str, data: bytes, **fields: Any) -> Any:
    """A ``StoredFile`` of ``actor``'s organization (not saved yet) whose bytes are in storage
    under the key the product would give it, with their size, SHA-256 and confirmation."""
    import hashlib

    from django.utils import timezone

    from fileconvert import storage
    from uploads.models import StoredFile
    from uploads.services import storage_key_for

    stored = StoredFile(organization=actor.org, name=name, uploaded_by=actor.user, **fields)
    stored.storage_key = storage_key_for(actor.org.pk, stored.pk, name)
    storage.save_bytes(stored.storage_key, data, fields.get("content_type") or "application/octet-stream")
    stored.size, stored.sha256, stored.confirmed_at = len(data), hashlib.sha256(data).hexdigest(), timezone.now()
    return stored


def cpu_seconds_by_group() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this machine's processes, grouped as the
    benches read them: this bench process, Celery workers, gunicorn, PostgreSQL, Redis,
    and everything else (kernel threads included). A process counts what its children used
    once it has waited for them (a Celery pool process for its forked converters); other
    exited processes are not counted, so take differences across a phase in which the
    groups' processes stay alive."""
    tick = os.sysconf("SC_CLK_TCK")
    groups = {"bench": 0.0, "celery": 0.0, "gunicorn": 0.0, "postgres": 0.0, "redis": 0.0, "other": 0.0}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # utime, stime, and cutime, cstime: what its waited-for children used (forked converters)
        used = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
        if int(entry.name) == me:
            group = "bench"
        elif "celery" in cmdline:
            group = "celery"
        elif "gunicorn" in cmdline:
            group = "gunicorn"
        elif "postgres" in cmdline or "postgres" in stat.split(" ", 2)[1]:
            group = "postgres"
        elif "redis" in cmdline:
            group = "redis"
        else:
            group = "other"
        groups[group] += used
    return groups


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}
