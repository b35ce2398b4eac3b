"""Run risky parsing (thumbnails now, converters later) in a child process with a
wall-clock timeout and an address-space cap; the whole process group dies on timeout."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


# glibc's malloc asks for transparent huge pages on the memory it maps (glibc >= 2.35; older
# ones ignore the tunable). A forked converter child starts with a cold heap: decoding a
# 3000x2000 JPEG at draft scale touched ~5,300 fresh 4 KiB pages (13 ms of page faults on
# this VM) and ~920 with huge pages (bench/convert_images.py; decision 0007). glibc reads
# tunables once, at exec, so whoever starts a worker sets this (``worker_environ``).
WORKER_GLIBC_TUNABLES = "glibc.malloc.hugetlb=1"


def worker_environ(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to start a Celery worker with: ``base`` (default ``os.environ``)
    plus ``WORKER_GLIBC_TUNABLES``, keeping any tunables already set (theirs win)."""
    env = dict(os.environ if base is None else base)
    current = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" not in current:
        env["GLIBC_TUNABLES"] = ":".join(t for t in (current, WORKER_GLIBC_TUNABLES) if t)
    return env


def _limits(memory_bytes: int, cpu_seconds: int) -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass(frozen=True)
class ForkedResult:
    value: Any  # what the function returned (JSON-able), or None
    error: dict[str, Any] | None  # {"type", "code", "message"} when it raised or died
    timed_out: bool


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def die_with_parent(parent: int | None = None) -> None:
    """In a child: be SIGKILLed when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a worker
    killed mid-job leaves no converter running. Also usable as a ``preexec_fn``."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def run_forked(
    func: Callable[[Callable[[Any], None]], Any],
    *,
    timeout: float = 60,
    memory_bytes: int = 1024**3,
    on_message: Callable[[Any], None] | None = None,
) -> ForkedResult:
    """Run ``func(send)`` in a forked child under the same limits (own process group,
    address space capped at what the parent maps plus ``memory_bytes``, CPU seconds),
    killed with its whole group (programs it started included) after ``timeout``.

    Forking keeps the parent's imports, so a child costs milliseconds, not an
    interpreter start. ``send(obj)`` passes JSON messages (progress) to ``on_message``
    in the parent while the child runs; the return value comes back the same way.
    The child never returns into the caller's code: it ends with ``os._exit``.
    """
    read_fd, write_fd = os.pipe()
    cap = _vm_bytes() + memory_bytes
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(read_fd)
            out = os.fdopen(write_fd, "w", buffering=1)
            _limits(cap, int(timeout) + 1)
            die_with_parent(parent)

            def send(obj: Any) -> None:
                out.write(json.dumps({"m": obj}) + "\n")

            value = func(send)
            out.write(json.dumps({"r": value}) + "\n")
            out.flush()
            code = 0
        except BaseException as exc:  # noqa: BLE001  the child reports everything, then dies
            with contextlib.suppress(BaseException):
                error = {"type": type(exc).__name__, "code": getattr(exc, "code", None), "message": str(exc)[:2000]}
                out.write(json.dumps({"e": error}) + "\n")
                out.flush()
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    value: Any = None
    error: dict[str, Any] | None = None
    timed_out = False
    buffer = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "m" in message and on_message is not None:
                    on_message(message["m"])
                elif "r" in message:
                    value = message["r"]
                elif "e" in message:
                    error = message["e"]
    finally:
        os.close(read_fd)
        if timed_out:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # stragglers the child started (its group)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return ForkedResult(None, {"type": "Timeout", "code": "TIMEOUT", "message": f"Took longer than {timeout:g}s."}, True)
    if error is None and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        error = {"type": "Died", "code": "CRASHED", "message": f"The converter process died (signal {signum})."}
    return ForkedResult(value, error, False)


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


def run_command(
    cmd: list[str], *, timeout: float = 30, memory_bytes: int = 1024**3, max_output_bytes: int = 16 * 1024 * 1024
) -> SandboxResult:
    """Run a program (ffprobe, ffmpeg…) under the same limits: own process group,
    address-space and CPU caps, a minimal environment, killed as a group on timeout."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")}
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=lambda: _limits(memory_bytes, int(timeout) + 1),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    return SandboxResult(
        -9 if timed_out else proc.returncode,
        out[:max_output_bytes].decode(errors="replace"),
        err[-65536:].decode(errors="replace"),
        timed_out,
    )
