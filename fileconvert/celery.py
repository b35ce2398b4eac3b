import os
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fileconvert.settings")

app = Celery("fileconvert")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Database connections across tasks are kept the way Django keeps them across requests.
# Celery's Django fixup would close every connection before and after each task (a new
# PostgreSQL connection per task: about half of a short job's cost, bench/job_overhead.py);
# a reuse limit that is never reached turns that off, and the two handlers below apply
# Django's own rule instead: CONN_MAX_AGE and health checks decide, and a connection left
# unusable by a failed task is dropped before the next one. SQLite (CONN_MAX_AGE 0) still
# closes after every task.
app.conf.CELERY_DB_REUSE_MAX = 2**62


def _in_worker(task: object) -> bool:
    # A task applied eagerly runs inside its caller (a request, a test's transaction): the
    # caller owns the connection, as with Celery's own fixup.
    return not getattr(getattr(task, "request", None), "is_eager", False)


# Django's health check (CONN_HEALTH_CHECKS) pings a kept connection with a round trip
# before its first query after every close_old_connections, so once per task: about a
# tenth of a short task's time in the pool process (py-spy on bench/job_overhead.py). A
# connection that finished a task cleanly less than RECHECK_SECONDS ago skips it, as
# PgBouncer's server_check_delay does (30 s there). Should the database restart inside
# that window, the task's first statement fails instead: Django drops the connection after
# it, and the per-file and per-job tasks retry on OperationalError (autoretry_for).
RECHECK_SECONDS = 2.0
_clean_at: dict[str, float] = {}


@signals.task_prerun.connect
def _usable_connections_before_task(task: object = None, **_kwargs: object) -> None:
    if _in_worker(task):
        from django.db import close_old_connections, connections

        close_old_connections()
        now = time.monotonic()
        for conn in connections.all(initialized_only=True):
            clean_at = _clean_at.get(conn.alias)
            if conn.connection is not None and clean_at is not None and now - clean_at < RECHECK_SECONDS:
                conn.health_check_done = True


@signals.task_postrun.connect
def _expire_connections_after_task(task: object = None, **_kwargs: object) -> None:
    if _in_worker(task):
        from django.db import close_old_connections, connections

        close_old_connections()
        now = time.monotonic()
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and not conn.errors_occurred:
                _clean_at[conn.alias] = now
            else:
                _clean_at.pop(conn.alias, None)


@app.task(name="fileconvert.ping")
def ping() -> str:
    """Round trip through broker and worker; used by readiness tests."""
    return "pong"
