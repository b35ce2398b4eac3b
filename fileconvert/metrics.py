"""Prometheus metrics. Under gunicorn/celery with several processes, set
``PROMETHEUS_MULTIPROC_DIR`` (``make run`` and compose do) and /metrics aggregates them."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

HTTP_REQUESTS = Counter("fileconvert_http_requests_total", "HTTP requests served.", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "fileconvert_http_request_duration_seconds",
    "Time to produce a response (streamed bodies excluded).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

UPLOAD_BYTES = Counter("fileconvert_upload_bytes_total", "Bytes received by streamed and batch uploads.")
UPLOAD_THROUGHPUT = Histogram(
    "fileconvert_upload_throughput_bytes_per_second",
    "Throughput of each upload body, client to storage.",
    buckets=(1e5, 1e6, 5e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9, 2e9),
)


def render_latest() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
