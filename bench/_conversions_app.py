"""The Celery app of the conversion benches: the product's app, with the uploads
processing of outputs (thumbnail, summary) routed to a queue no bench worker consumes,
so the workers do exactly the conversions the in-process baseline does."""

from __future__ import annotations

import os

from fileconvert.celery import app

app.conf.task_routes = {"uploads.tasks.process_file": {"queue": os.environ.get("CELERY_QUEUE", "bench") + "-uploads-parked"}}
# Experiment (--reuse-db): Celery's Django fixup closes every database connection before and
# after each task unless CELERY_DB_REUSE_MAX is set, so each task opens a new one.
if os.environ.get("BENCH_DB_REUSE_MAX"):
    app.conf.update(CELERY_DB_REUSE_MAX=int(os.environ["BENCH_DB_REUSE_MAX"]))


@app.task(name="bench.bare_noop", acks_late=True, reject_on_worker_lost=True)
def bare_noop(counter_key: str) -> None:
    """A bare Celery task: one Redis INCR so the bench can tell when all have run."""
    _client().incr(counter_key)


_REDIS = None


def _client():
    global _REDIS
    if _REDIS is None:
        import redis

        _REDIS = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _REDIS
