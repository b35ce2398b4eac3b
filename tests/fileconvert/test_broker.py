"""fileconvert.broker: the message it pushes is the one Celery sends, it runs on a real
worker, and everything it does not reproduce goes through Celery unchanged."""

from __future__ import annotations

import base64
import contextlib
import json
import time

import pytest
import redis
from celery import signals
from django.conf import settings

from fileconvert import broker
from fileconvert.celery import app
from tests.uploads.test_worker_pipeline import celery_worker_thread  # noqa: F401  fixture

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"), reason="the fast path is for a Redis broker (REDIS_URL)"
)


@pytest.fixture
def queue():
    """This test process's queue, empty before and after (no worker consumes it here)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    client.delete(name)
    broker.reset()
    yield client, name
    client.delete(name)
    broker.reset()


@app.task(name="tests.fileconvert.publish_from_a_task")
def publish_from_a_task(file_id: str) -> None:
    from uploads.tasks import process_file

    broker.publish(process_file, file_id)


@contextlib.contextmanager
def conf(**values):
    """Celery settings changed for a block (attribute access, as Celery reads them)."""
    saved = {key: getattr(app.conf, key) for key in values}
    for key, value in values.items():
        setattr(app.conf, key, value)
    broker.reset()
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(app.conf, key, value)
        broker.reset()


@contextlib.contextmanager
def _refusing_apply_async(task):
    def refuse(*_args, **_kwargs):
        raise AssertionError("went through apply_async")

    real = task._get_current_object() if hasattr(type(task), "_get_current_object") else task
    real.apply_async = refuse  # an instance attribute: the class's own method stays Celery's
    try:
        yield
    finally:
        del real.apply_async


def _pop(client, name) -> dict:
    raw = client.rpop(name)
    assert raw is not None, "no message was pushed"
    return json.loads(raw)


def _our_tasks():
    from conversions.tasks import run_job
    from search.tasks import index_file, remove_file
    from uploads.tasks import process_file

    return [run_job, process_file, index_file, remove_file]


@pytest.mark.parametrize("task", _our_tasks(), ids=lambda t: t.name)
def test_the_message_is_the_one_celery_sends(queue, task):
    client, name = queue
    task.apply_async(("fil_0123456789abcdef",))
    theirs = _pop(client, name)
    with _refusing_apply_async(task):  # the message below is really ours
        broker.publish(task, "fil_0123456789abcdef")
    ours = _pop(client, name)
    assert client.llen(name) == 0

    assert set(ours) == set(theirs)
    for key in ("content-type", "content-encoding"):
        assert ours[key] == theirs[key]
    assert base64.b64decode(ours["body"]) and json.loads(base64.b64decode(ours["body"])) == json.loads(
        base64.b64decode(theirs["body"])
    )
    unique = {"id", "root_id"}
    assert {k: v for k, v in ours["headers"].items() if k not in unique} == {
        k: v for k, v in theirs["headers"].items() if k not in unique
    }
    assert ours["headers"]["root_id"] == ours["headers"]["id"] != theirs["headers"]["id"]
    unique = {"correlation_id", "delivery_tag"}
    assert {k: v for k, v in ours["properties"].items() if k not in unique} == {
        k: v for k, v in theirs["properties"].items() if k not in unique
    }
    assert ours["properties"]["correlation_id"] == ours["headers"]["id"]
    assert ours["properties"]["delivery_tag"] != theirs["properties"]["delivery_tag"]


def test_the_fast_path_is_taken(queue, monkeypatch):
    """The parity test above would pass if publish fell back to Celery every time."""
    from uploads.tasks import process_file

    with _refusing_apply_async(process_file):
        broker.publish(process_file, "fil_x")
    client, name = queue
    assert _pop(client, name)["headers"]["task"] == "uploads.tasks.process_file"


def test_a_published_task_runs_on_a_real_worker(queue, celery_worker_thread):  # noqa: F811
    from fileconvert.celery import ping

    broker.publish(ping)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n == "fileconvert.ping" for n, _a, _t in celery_worker_thread):
        time.sleep(0.05)
    assert [n for n, _a, _t in celery_worker_thread] == ["fileconvert.ping"]


@pytest.mark.django_db(transaction=True)
def test_a_message_published_from_a_task_names_its_parent(queue, celery_worker_thread):  # noqa: F811
    """Celery links a message sent while a task runs to that task (root_id, parent_id)."""
    seen = {}

    def record(task=None, **_kwargs) -> None:
        if task.name == "uploads.tasks.process_file":
            seen.update(parent_id=task.request.parent_id, root_id=task.request.root_id, args=task.request.args)

    from uploads.tasks import process_file

    ran = ("uploads.tasks.process_file", ("fil_not_there",))
    signals.task_prerun.connect(record, weak=False)
    try:
        with _refusing_apply_async(process_file):  # the worker publishes through the fast path
            sent = publish_from_a_task.delay("fil_not_there")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and ran not in [(n, a) for n, a, _t in celery_worker_thread]:
                time.sleep(0.05)
    finally:
        signals.task_prerun.disconnect(record)
    assert seen == {"parent_id": sent.id, "root_id": sent.id, "args": ["fil_not_there"]}
    assert ran in [(n, a) for n, a, _t in celery_worker_thread]


def test_a_message_after_a_dropped_connection_still_arrives(queue):
    from uploads.tasks import process_file

    client, name = queue
    broker.publish(process_file, "fil_1")
    ours = broker._redis(app.conf.broker_write_url)
    client.client_kill_filter(_id=ours.client_id())
    broker.publish(process_file, "fil_2")
    assert [json.loads(base64.b64decode(_pop(client, name)["body"]))[0] for _ in range(2)] == [["fil_1"], ["fil_2"]]


def test_a_broker_that_is_down_raises(queue, monkeypatch):
    from uploads.tasks import process_file

    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # Celery reads the variable first
    with conf(task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0}):
        assert broker._build_route(process_file) is not None
        with pytest.raises(redis.ConnectionError):
            broker.publish(process_file, "fil_1")


def test_what_it_does_not_reproduce_goes_through_celery(queue, monkeypatch):
    from uploads import processing
    from uploads.tasks import process_file

    assert broker._build_route(process_file) is not None
    cases = [
        ("task_send_sent_event", True),
        ("broker_transport_options", {"visibility_timeout": 60, "global_keyprefix": "x:"}),
        ("task_routes", [lambda name, *a, **k: {"queue": "elsewhere"}]),
        ("broker_use_ssl", {"ssl_cert_reqs": "required"}),
        ("task_compression", "gzip"),
    ]
    for setting, value in cases:
        with conf(**{setting: value}):
            assert broker._build_route(process_file) is None, setting
    with conf(task_publish_retry_policy={"max_retries": None}):  # unbounded: kombu's
        assert broker._build_route(process_file) is None
    assert broker._retry_plan(app.conf) == (0.0, 0.2, 0.4)  # Celery's default policy, spaced as kombu does
    for url in ("redis://127.0.0.1:6379/0?ssl_cert_reqs=required", "redis://a:6379/0;redis://b:6379/0"):
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        assert broker._build_route(process_file) is None, url
    monkeypatch.setenv("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", "redis://127.0.0.1:6379/15")
    assert broker._build_route(process_file) is None
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
    assert broker._build_route(process_file) is not None
    # Task options beyond the queue change the message (a queue of its own is only a queue).
    for option, value in (("delivery_mode", "transient"), ("compression", "gzip"), ("priority", 5), ("expires", 60)):
        with monkeypatch.context() as patch:
            real = process_file._get_current_object()
            patch.setattr(type(real), option, value, raising=False)
            patch.setattr(real, "_exec_options", None)  # Celery caches them per task
            assert broker._build_route(process_file) is None, option

    def receiver(**_kwargs):
        pass

    # A receiver connected after the route was settled (an integration set up late).
    sent = []
    monkeypatch.setattr(process_file, "apply_async", lambda args: sent.append(args))
    client, name = queue
    broker.publish(process_file, "fil_fast")
    assert json.loads(base64.b64decode(_pop(client, name)["body"]))[0] == ["fil_fast"]
    signals.before_task_publish.connect(receiver)
    try:
        broker.publish(process_file, "fil_signalled")
    finally:
        signals.before_task_publish.disconnect(receiver)
    signals.task_sent.connect(receiver)
    try:
        broker.publish(process_file, "fil_sent_signal")
    finally:
        signals.task_sent.disconnect(receiver)
    assert sent == [("fil_signalled",), ("fil_sent_signal",)]
    monkeypatch.undo()
    # apply_async wrapped by an integration (Sentry, ddtrace add trace headers there).
    import functools

    from celery.app.task import Task

    real_apply = Task.apply_async

    @functools.wraps(real_apply)
    def traced(self, *args, **kwargs):
        traced.calls += 1
        return real_apply(self, *args, **kwargs)

    traced.calls = 0
    monkeypatch.setattr(Task, "apply_async", traced)
    broker.publish(process_file, "fil_traced")
    assert traced.calls == 1
    assert json.loads(base64.b64decode(_pop(client, name)["body"]))[0] == ["fil_traced"]
    monkeypatch.undo()
    # Eager mode, switched on after the route was settled (tests do): the task runs here.
    ran = []
    monkeypatch.setattr(processing, "file_process", lambda file_id: ran.append(file_id) or "skipped")
    broker.publish(process_file, "fil_before")  # settles the route
    with conf(task_always_eager=True):
        broker._route_for(process_file)  # settled again under eager mode: still not used
        broker.publish(process_file, "fil_eager")
    assert ran == ["fil_eager"]
    assert json.loads(base64.b64decode(_pop(client, name)["body"]))[0] == ["fil_before"]
    assert client.llen(name) == 0
    # Arguments that are not short strings: Celery's own serialisation.
    seen = []
    monkeypatch.setattr(process_file, "apply_async", lambda args: seen.append(args))
    broker.publish(process_file, 42)  # type: ignore[arg-type]
    broker.publish(process_file, "x" * 1000)
    broker.publish(process_file, "it's")  # repr and Celery's saferepr differ on quotes
    assert seen == [(42,), ("x" * 1000,), ("it's",)]


def test_a_route_by_name_is_followed(queue, monkeypatch):
    from uploads.tasks import process_file

    client, _name = queue
    routes = {"uploads.tasks.process_file": {"queue": "tests-broker-routed"}}
    try:
        with conf(task_routes=routes):
            _rebuild_router()  # Celery builds its router from task_routes once
            process_file.apply_async(("fil_r",))
            theirs = _pop(client, "tests-broker-routed")
            broker.publish(process_file, "fil_r")
            ours = _pop(client, "tests-broker-routed")
            assert ours["properties"]["delivery_info"] == theirs["properties"]["delivery_info"]
            assert ours["properties"]["delivery_info"]["routing_key"] == "tests-broker-routed"
        # A task's own ``queue=`` (its execution options) wins over the routes, as in Celery.
        with monkeypatch.context() as patch:
            real = process_file._get_current_object()
            patch.setattr(type(real), "queue", "tests-broker-routed", raising=False)
            patch.setattr(real, "_exec_options", None)
            broker.reset()
            broker.publish(process_file, "fil_own_queue")
            assert _pop(client, "tests-broker-routed")["headers"]["argsrepr"] == "('fil_own_queue',)"
            broker.reset()
    finally:
        _rebuild_router()
        app.amqp.queues.pop("tests-broker-routed", None)  # Celery added it (create_missing_queues)
        client.delete("tests-broker-routed", *client.keys("_kombu.binding*tests-broker-routed*"))


def _rebuild_router() -> None:
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()
