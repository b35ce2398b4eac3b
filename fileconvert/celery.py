import os

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


@signals.task_prerun.connect
def _usable_connections_before_task(task: object = None, **_kwargs: object) -> None:
    if _in_worker(task):
        from django.db import close_old_connections

        close_old_connections()


@signals.task_postrun.connect
def _expire_connections_after_task(task: object = None, **_kwargs: object) -> None:
    if _in_worker(task):
        from django.db import close_old_connections

        close_old_connections()


@app.task(name="fileconvert.ping")
def ping() -> str:
    """Round trip through broker and worker; used by readiness tests."""
    return "pong"
