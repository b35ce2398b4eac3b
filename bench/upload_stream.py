"""Streamed upload throughput: ``PUT /api/uploads/{id}/data`` through a real gunicorn
against a plain write of the same bytes to the same disk, interleaved, in one run.

    .venv/bin/python bench/upload_stream.py [--size-mib 1024] [--rounds 5]

Prints: medians of both, their ratio (target >= 0.6), bytes written by the web
process / bytes uploaded (target <= 1.05), and the web worker's peak memory growth
(target < 64 MiB). Server on CPU 1, client on CPU 0 (taskset) when there are two.

One full-size round of each side runs first and is not counted: on this VM the first
touch of fresh page-cache memory is several times slower than later rounds. The plain
write through the page cache is the baseline; an O_DIRECT plain write of the same bytes
is printed beside it as a reference (it is what the upload path does for large bodies,
decision 0006). The page-cache write itself varies 0.5-5 GB/s between identical runs
here, so read the per-round figures too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import BenchServer, median, plain_write, plain_write_direct, proc_io, proc_status

BLOCK = 1024 * 1024


def api_upload(server: BenchServer, block: bytes, blocks: int) -> tuple[float, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    body = json.dumps({"filename": "bench.bin", "size": blocks * len(block)})
    conn.request("POST", "/api/uploads/init", body=body, headers={"X-API-Key": server.key, "Content-Type": "application/json"})
    init = json.loads(conn.getresponse().read())["data"]
    started = time.perf_counter()
    conn.putrequest("PUT", f"/api/uploads/{init['file_id']}/data")
    conn.putheader("X-API-Key", server.key)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(blocks * len(block)))
    conn.endheaders()
    for _ in range(blocks):
        conn.send(block)
    response = conn.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"upload failed: {response.status} {payload}")
    return elapsed, payload["data"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {0})
    block = os.urandom(BLOCK)
    blocks = args.size_mib
    size = blocks * BLOCK
    server = BenchServer(workers=1, threads=1, cpu="1").start()
    try:
        time.sleep(1)
        pids = server.worker_pids()
        assert len(pids) == 1, pids
        worker = pids[0]
        api_upload(server, block, 4)  # warm up imports and connections
        hwm_before = proc_status(worker, "VmHWM")
        rss_before = proc_status(worker, "VmRSS")
        plain, direct, api, ratios_written = [], [], [], []
        for round_no in range(args.rounds + 1):
            if round_no == 1:  # the warm-up round is dropped
                plain, direct, api, ratios_written = [], [], [], []
            plain.append(plain_write(server.data_dir / "plain.bin", block, blocks))
            direct.append(plain_write_direct(server.data_dir / "direct.bin", block, blocks))
            wchar_before = proc_io(worker, "wchar")
            elapsed, data = api_upload(server, block, blocks)
            wchar = proc_io(worker, "wchar") - wchar_before
            api.append(elapsed)
            ratios_written.append(wchar / size)
            assert data["size"] == size
            for path in (server.data_dir / "media").rglob("bench.bin"):
                path.unlink()
        hwm_after = proc_status(worker, "VmHWM")
    finally:
        server.stop()
    plain_mbs = size / median(plain) / 1e6
    direct_mbs = size / median(direct) / 1e6
    api_mbs = size / median(api) / 1e6

    def rounds(values: list[float]) -> str:
        return " ".join(f"{size / v / 1e6:.0f}" for v in values)

    print(f"streamed upload of {args.size_mib} MiB, {args.rounds} rounds after a warm-up (medians; rounds in MB/s)")
    print(f"  plain disk write      : {plain_mbs:8.1f} MB/s   [{rounds(plain)}]")
    print(f"  plain O_DIRECT write  : {direct_mbs:8.1f} MB/s   [{rounds(direct)}]  (reference)")
    print(f"  PUT through gunicorn  : {api_mbs:8.1f} MB/s   [{rounds(api)}]")
    print(f"  ratio api/plain       : {api_mbs / plain_mbs:8.2f}   (target >= 0.6)")
    print(f"  ratio api/O_DIRECT    : {api_mbs / direct_mbs:8.2f}   (reference)")
    print(f"  ratio per round       : {' '.join(f'{p / a:.2f}' for p, a in zip(plain, api, strict=True))}")
    print(f"  written/uploaded      : {median(ratios_written):8.3f}   (target <= 1.05; bytes the web process wrote)")
    print(
        f"  peak memory growth    : {(hwm_after - hwm_before) / 2**20:8.1f} MiB "
        f"(target < 64; RSS before {rss_before / 2**20:.0f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
