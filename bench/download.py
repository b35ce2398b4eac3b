"""Download throughput: ``GET /api/files/{org_id}/{id}/download`` through a real gunicorn
against reading the same stored file straight from disk, interleaved, in one run.

    .venv/bin/python bench/download.py [--size-mib 1024] [--rounds 3]

The file is uploaded through the API first (``PUT /api/uploads/{id}/data``). Each round
reads it from disk (1 MiB reads, page cache warm), downloads it whole through the API,
and downloads its second half with ``Range`` (client: curl into /dev/null when installed,
else Python's http.client). Prints medians, the api/disk throughput
ratio (target >= 0.5), the web worker's peak RSS growth while serving (target < 64 MiB:
flat memory whatever the size), and a SHA-256 check of one full download. Server on
CPU 1, client on CPU 0 (taskset) when there are two.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import BenchServer, median, proc_status
from bench.upload_stream import api_upload

BLOCK = 1024 * 1024


def disk_read(path: Path) -> tuple[float, int]:
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    total = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            total += n
    return time.perf_counter() - started, total


def api_get(server: BenchServer, path: str, headers: dict[str, str], digest: object = None) -> tuple[float, int, int]:
    """(seconds, bytes, status) of one GET read to the end with 1 MiB ``readinto``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    total = 0
    started = time.perf_counter()
    conn.request("GET", path, headers={"X-API-Key": server.key, **headers})
    response = conn.getresponse()
    while n := response.readinto(view):
        total += n
        if digest is not None:
            digest.update(view[:n])  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, total, response.status


def curl_get(server: BenchServer, path: str, headers: dict[str, str]) -> tuple[float, int, int]:
    """The same GET by curl into /dev/null: a client that costs less CPU than Python's, so
    the figure is the server's. (seconds, bytes, status)"""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-H", f"X-API-Key: {server.key}"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    started = time.perf_counter()
    out = subprocess.run([*cmd, f"http://127.0.0.1:{server.port}{path}"], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    status, size = out.stdout.split()
    return elapsed, int(size), int(status)


class PeakRss:
    """Samples a process's RSS every 20 ms while active (VmHWM alone includes start-up)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {0})
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    block = os.urandom(BLOCK)
    size = args.size_mib * BLOCK
    server = BenchServer(workers=1, threads=1, cpu="1").start()
    try:
        time.sleep(1)
        pids = server.worker_pids()
        assert len(pids) == 1, pids
        worker = pids[0]
        _elapsed, uploaded = api_upload(server, block, args.size_mib)
        file_id, org_id = uploaded["id"], uploaded["organization_id"]
        stored = next((server.data_dir / "media").rglob(f"{file_id}/*"))
        assert stored.stat().st_size == size
        path = f"/api/files/{org_id}/{file_id}/download"
        half = size // 2
        api_get(server, path, {"Range": "bytes=0-1023"})  # warm up imports and connections
        rss_before = proc_status(worker, "VmRSS")
        fetch = curl_get if shutil.which("curl") else api_get
        disk, full, ranged = [], [], []
        with PeakRss(worker) as peak:
            for _ in range(args.rounds):
                seconds, got = disk_read(stored)
                assert got == size
                disk.append(seconds)
                seconds, got, status = fetch(server, path, {})
                assert (status, got) == (200, size), (status, got)
                full.append(seconds)
                seconds, got, status = fetch(server, path, {"Range": f"bytes={half}-"})
                assert (status, got) == (206, size - half), (status, got)
                ranged.append(seconds)
        digest = hashlib.sha256()
        api_get(server, path, {}, digest)
        expected = hashlib.sha256()
        with open(stored, "rb") as fh:
            while chunk := fh.read(BLOCK):
                expected.update(chunk)
        assert digest.hexdigest() == expected.hexdigest(), "downloaded bytes differ from the stored file"
    finally:
        server.stop()
    disk_mbs = size / median(disk) / 1e6
    full_mbs = size / median(full) / 1e6
    ranged_mbs = (size - half) / median(ranged) / 1e6
    client = "curl" if shutil.which("curl") else "python http.client"
    print(f"download of {args.size_mib} MiB, {args.rounds} rounds (medians), 1 gunicorn worker, client {client}")
    print(f"  disk read (page cache)   : {disk_mbs:9.1f} MB/s")
    print(f"  GET through gunicorn     : {full_mbs:9.1f} MB/s")
    print(f"  GET Range second half    : {ranged_mbs:9.1f} MB/s")
    print(f"  ratio api/disk           : {full_mbs / disk_mbs:9.2f}   (target >= 0.5)")
    print(
        f"  worker peak RSS growth   : {(peak.peak - rss_before) / 2**20:9.1f} MiB "
        f"(target < 64; RSS before {rss_before / 2**20:.0f} MiB, peak {peak.peak / 2**20:.0f} MiB)"
    )
    print("  sha256 of a full download: matches the stored file")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
