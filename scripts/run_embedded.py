#!/usr/bin/env python
"""``make run``: the whole product on one machine with no services.

Migrates, creates the demo data (printing the admin login and an API key), then
runs gunicorn and a Celery worker with an embedded beat. Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fileconvert.sandbox import worker_environ  # noqa: E402 - needs ROOT on the path (loads the Celery app object, not Django)

BIN = Path(sys.executable).parent


def main() -> int:
    data = Path(os.environ.setdefault("FILECONVERT_DATA_DIR", str(ROOT / "var"))).resolve()
    data.mkdir(parents=True, exist_ok=True)
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    prom = data / "prometheus"
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom), "DJANGO_SETTINGS_MODULE": "fileconvert.settings"}
    env.setdefault("LOG_FORMAT", "text")

    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)
    subprocess.run([*manage, "demo_setup", "--port", port], check=True, env=env, cwd=ROOT)

    commands = {
        "web": [
            str(BIN / "gunicorn"),
            "fileconvert.wsgi",
            "-c",
            str(ROOT / "fileconvert" / "gunicorn_conf.py"),
            "-b",
            f"{host}:{port}",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "fileconvert",
            "worker",
            "--beat",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--schedule",
            str(data / "celerybeat-schedule"),
        ],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, cmd in commands.items():
        # The worker's converter children fork from it: huge pages for their heaps (fileconvert.sandbox).
        proc_env = worker_environ(env) if name == "worker" else env
        procs[name] = subprocess.Popen(cmd, env=proc_env, cwd=ROOT, start_new_session=True)
    print(f"fileconvert running on http://{host}:{port}/  (Ctrl-C stops web and worker)", flush=True)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                code = proc.returncode or 1
                stopping = True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # warm shutdown; each server stops its own children
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
