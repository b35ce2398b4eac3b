"""The worker's database connections across tasks (fileconvert/celery.py): kept, health-
checked only when they have not finished a task cleanly within RECHECK_SECONDS, and dropped
after a task that broke them, so the next task (or the retry) gets a working one."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection

from fileconvert import celery as fc_celery

pytestmark = [
    pytest.mark.django_db(transaction=True),  # autocommit, as in a worker
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite closes its connection after every task"),
]

TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))


def run_task(body=None) -> None:
    """What the worker does around a task: prerun, the body, postrun."""
    fc_celery._usable_connections_before_task(task=TASK)
    try:
        if body:
            body()
    finally:
        fc_celery._expire_connections_after_task(task=TASK)


def query() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def fresh_state():
    fc_celery._clean_at.clear()
    yield
    fc_celery._clean_at.clear()


def test_a_connection_that_just_finished_a_task_skips_the_health_check():
    run_task(query)
    kept = connection.connection
    fc_celery._usable_connections_before_task(task=TASK)
    assert connection.connection is kept
    assert connection.health_check_done is True  # no SELECT 1 round trip before the next query
    assert query() == 1


def test_after_the_window_the_health_check_runs_again(monkeypatch):
    run_task(query)
    monkeypatch.setitem(fc_celery._clean_at, connection.alias, fc_celery._clean_at[connection.alias] - fc_celery.RECHECK_SECONDS)
    fc_celery._usable_connections_before_task(task=TASK)
    assert connection.health_check_done is False  # Django pings it before the first query


def test_after_a_failed_statement_the_connection_is_checked_when_the_task_ends(monkeypatch):
    from django.db import ProgrammingError, connections

    wrapper = type(connections["default"])
    real_is_usable = wrapper.is_usable
    pings = []

    def broken():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_here")

    run_task(query)
    kept = connection.connection
    monkeypatch.setattr(wrapper, "is_usable", lambda self: pings.append(1) or real_is_usable(self))
    with pytest.raises(ProgrammingError):
        run_task(broken)
    assert pings == [1]  # Django's rule after an error: checked (and found usable) in postrun
    assert connection.connection is kept and not connection.errors_occurred
    fc_celery._usable_connections_before_task(task=TASK)
    assert connection.health_check_done is True and query() == 1


def test_a_connection_killed_inside_the_window_fails_one_task_then_recovers():
    run_task(query)
    pid = connection.connection.info.backend_pid
    params = settings.DATABASES["default"]
    with psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    # Inside the window: no health check, so this task's first statement meets the dead
    # connection (the real tasks retry on it), and postrun drops the connection.
    with pytest.raises(OperationalError):
        run_task(query)
    assert connection.connection is None
    run_task(lambda: query() == 1 or pytest.fail("no new connection"))
    assert connection.connection.info.backend_pid != pid
