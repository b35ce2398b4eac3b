"""Run risky parsing (thumbnails now, converters later) in a child process with a
wall-clock timeout and an address-space cap; the whole process group dies on timeout."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def _limits(memory_bytes: int, cpu_seconds: int) -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python_module(
    module: str, args: list[str], *, timeout: float = 30, memory_bytes: int = 1024**3, cwd: str | None = None
) -> SandboxResult:
    cmd = [sys.executable, "-m", module, *args]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "HOME", "TMPDIR")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd() if cwd is None else cwd, env.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        preexec_fn=lambda: _limits(memory_bytes, int(timeout) + 1),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return SandboxResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), False)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return SandboxResult(-9, out.decode(errors="replace"), err.decode(errors="replace"), True)
