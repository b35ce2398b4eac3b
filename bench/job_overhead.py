"""The job machinery against bare Celery, and end-to-end latency of a tiny conversion.

    .venv/bin/python bench/job_overhead.py [--jobs 500] [--latency 50]

1. Throughput: N no-op jobs through our machinery (ConversionJob row created by
   ``services.job_create`` with its audit row, published after commit, claimed by a
   conditional UPDATE, finished with an audit row: ``conversions.tasks.noop``) against N
   bare Celery no-op tasks (``bench.bare_noop``: one Redis INCR so completion is
   observable) on the same Redis broker (DB 11) and the same worker (2 prefork
   processes), in one run. Target: ours >= 0.5 of bare.
2. Latency: a tiny PNG -> JPEG job submitted over HTTP (``POST /api/convert`` to a real
   gunicorn) until its row says ``succeeded``, sequentially. Targets: p50 <= 100 ms,
   p95 <= 250 ms on Redis.

The processing of the uploaded sources (``uploads.tasks.process_file``, then search's
``index_file``) is parked on a queue no worker consumes, like that of the outputs
(``bench/_settings.py``, ``bench/_conversions_app.py``): both phases time the job
machinery and the conversion, not a sandboxed inspection competing for the same worker.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._conversions_env import BenchEnv, cpu_delta, cpu_seconds_by_group, load, percentile


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def multipart(fields: dict[str, str], name: str, body: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + body
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--latency", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--reuse-db", type=int, default=0, help="CELERY_DB_REUSE_MAX for the worker (experiment; 0 = product default)"
    )
    args = parser.parse_args()

    env = BenchEnv(name="overhead", redis_db=11)
    if args.reuse_db:
        env.env["BENCH_DB_REUSE_MAX"] = str(args.reuse_db)
        print(f"experiment: worker with CELERY_DB_REUSE_MAX={args.reuse_db} (database connections kept across tasks)")
    print(f"load average at start: {load()}  (cpus: {os.cpu_count()})")
    env.prepare()
    env.apply()
    import redis

    import bench._conversions_app as bench_app
    from bench._conversions_env import identity
    from conversions import services
    from conversions.models import ACTIVE_STATUSES, ConversionJob, JobStatus
    from conversions.tasks import noop
    from fileconvert import broker
    from uploads.models import StoredFile

    actor = identity()
    env.start_worker(concurrency=2)
    port = env.start_web(workers=1, park_uploads_processing=True)
    client = redis.Redis.from_url(env.env["REDIS_URL"])
    try:
        # A source for the no-op jobs (job_create validates it like any other).
        source_id = _convert_http(port, env.key, tiny_png())["source_file_id"]
        source = StoredFile.objects.get(pk=source_id)
        _wait(lambda: ConversionJob.objects.filter(status=JobStatus.SUCCEEDED).count() == 1)

        def publish_noop(job_id: str) -> None:
            broker.publish(noop, job_id)  # as services.job_publish publishes run_job

        real_publish = services.job_publish
        services.job_publish = publish_noop

        def submit(count: int) -> list[str]:
            # job_create as POST /api/conversion-jobs runs it: its own connection, no transaction
            # around it (job_create's batch is one, and it publishes after the batch commits).
            from django.db import connections

            try:
                return [services.job_create(actor=actor, source=source, target_format="jpeg").pk for _ in range(count)]
            finally:
                connections.close_all()

        def all_done() -> bool:
            # Every job of the round exists when this is asked (and earlier rounds finished):
            # "none queued or running" is the partial index job_active_idx, not a count over
            # an IN list of `--jobs` ids every poll (a 2-core machine shares it with the worker).
            return not ConversionJob.objects.filter(status__in=ACTIVE_STATUSES).exists()

        ours = bare = worker_side = 0.0
        cpu = {phase: dict.fromkeys(cpu_seconds_by_group(), 0.0) for phase in ("bare", "ours", "worker side")}

        def account(phase: str, before: dict[str, float]) -> None:
            for group, used in cpu_delta(before, cpu_seconds_by_group()).items():
                cpu[phase][group] += used

        try:
            for round_ in range(2):  # interleaved: bare, ours (end to end), ours (worker side)
                key = f"bench-bare-{round_}"
                client.delete(key)
                before, started = cpu_seconds_by_group(), time.perf_counter()
                for _ in range(args.jobs):
                    bench_app.bare_noop.delay(key)
                _wait(lambda key=key: int(client.get(key) or 0) >= args.jobs)
                bare += time.perf_counter() - started
                account("bare", before)

                # End to end: rows and audit written by 2 submitting threads (like 2 web processes).
                before, started = cpu_seconds_by_group(), time.perf_counter()
                with ThreadPoolExecutor(2) as pool:
                    ids = [i for chunk in pool.map(submit, [args.jobs // 2, args.jobs - args.jobs // 2]) for i in chunk]
                _wait(all_done)
                ours += time.perf_counter() - started
                account("ours", before)

                # Worker side: rows exist; publish them all, time claim + finish + audit.
                services.job_publish = lambda job_id: None
                ids = submit(args.jobs)
                services.job_publish = publish_noop
                before, started = cpu_seconds_by_group(), time.perf_counter()
                for job_id in ids:
                    broker.publish(noop, job_id)
                _wait(all_done)
                worker_side += time.perf_counter() - started
                account("worker side", before)
        finally:
            services.job_publish = real_publish
        n = 2 * args.jobs
        print(
            f"throughput: bare Celery {n / bare:7.1f} tasks/s   our jobs end to end {n / ours:7.1f} jobs/s "
            f"(ours/bare {bare / ours:.2f}, target >= 0.5)   worker side {n / worker_side:7.1f} jobs/s "
            f"(ours/bare {bare / worker_side:.2f})"
        )
        groups = list(cpu["bare"])
        print("  CPU ms per job or task, by process (the 2 cores are shared by all of them):")
        print("    " + f"{'phase':<12}" + "".join(f"{g:>10}" for g in groups) + f"{'total':>10}")
        for phase, used in cpu.items():
            cells = "".join(f"{used[g] * 1000 / n:10.2f}" for g in groups)
            print(f"    {phase:<12}{cells}{sum(used.values()) * 1000 / n:10.2f}")

        latencies = []
        body = tiny_png()
        for _ in range(args.latency):
            started = time.perf_counter()
            job = _convert_http(port, env.key, body)
            _wait(lambda job=job: ConversionJob.objects.filter(pk=job["id"], status=JobStatus.SUCCEEDED).exists(), poll=0.002)
            latencies.append((time.perf_counter() - started) * 1000)
        failed = ConversionJob.objects.exclude(status=JobStatus.SUCCEEDED).count()
        assert failed == 0, f"{failed} jobs did not succeed"
        print(
            f"latency PNG->JPEG, HTTP submit -> succeeded ({args.latency} sequential): p50 {percentile(latencies, 0.5):.0f} ms "
            f"(target <= 100)   p95 {percentile(latencies, 0.95):.0f} ms (target <= 250)   max {max(latencies):.0f} ms"
        )
        print(f"load average at end: {load()}")
    finally:
        env.stop(keep=args.keep)
    return 0


def _convert_http(port: int, key: str, body: bytes) -> dict:
    payload, content_type = multipart({"target_format": "jpeg"}, "tiny.png", body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/convert", body=payload, headers={"X-API-Key": key, "Content-Type": content_type})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    if response.status != 202:
        raise RuntimeError(f"convert failed: {response.status} {data}")
    return data["data"]


def _wait(predicate, timeout: float = 600, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise RuntimeError("timed out waiting")


if __name__ == "__main__":
    sys.exit(main())
