"""Publishing tasks: the one way product code enqueues work (``publish(task, *ids)``).

On a Redis broker, the production set-up, the message is built here in Celery's message
protocol 2 (the envelope kombu's Redis transport stores) and pushed with one LPUSH on a
Redis client kept per process. That is the message ``task.delay(*ids)`` sends, without
the layers around its LPUSH: Celery's options, routing and signals and kombu's producer,
channel and a new Redis client object per message. Those cost 0.35 ms of CPU per message
in a warm loop and 1.0-1.3 ms in a worker process right after a conversion has evicted
the interpreter from the CPU caches (bench/convert_images.py, decision 0011).

Anything this does not reproduce goes through ``task.apply_async`` unchanged:
- another broker (the embedded file-system one), Redis over TLS, Sentinel, a socket, a URL
  with options or alternates, a separate write URL or broker settings outside the URL;
- eager mode (``task_always_eager``: tests);
- a key prefix or other transport options;
- routes given as functions, a route or a task option beyond the queue (exchange, routing
  key, delivery mode, compression, priority, expiry), a queue with arguments (TTL, expiry);
- receivers on ``before_task_publish``/``after_task_publish``/``task_sent``, sent events, and
  an ``apply_async`` or ``send_task`` wrapped by an integration (Sentry, ddtrace add their
  trace headers there);
- another message protocol, a custom ``shadow_name``, an unbounded retry policy;
- arguments other than short ids (``[A-Za-z0-9_-]``: their ``repr`` is Celery's
  ``saferepr``). Celery's check of the argument count is not made: our callers are ours.

``tests/fileconvert/test_broker.py`` checks the message against the one Celery itself
sends for the same task, so an upgrade of Celery or kombu that changes the format fails
there, not in production.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery import signals
from celery.app.task import Task
from celery.local import Proxy

MAX_ARG_LENGTH = 200
_ID = re.compile(r"[A-Za-z0-9_-]+")
_KNOWN_TRANSPORT_OPTIONS = frozenset({"visibility_timeout"})
_PLAIN_OPTIONS = frozenset({"queue", "time_limit", "soft_time_limit", "serializer"})  # what the message below carries


@dataclass(frozen=True)
class _Route:
    queue: str  # the list kombu's Redis transport pushes to (priority 0, anonymous exchange)
    url: str  # the broker's write URL
    retry: tuple[float, ...]  # waits before each retry of a lost connection
    headers: dict[str, Any]  # what is the same for every message of the task
    properties: dict[str, Any]


_lock = threading.Lock()
_routes: dict[str, _Route | None] = {}  # task name -> route, or None: use apply_async
_client: tuple[int, str, Any] | None = None  # (pid, broker URL, redis client)


def publish(task: Any, *args: str) -> None:
    """Enqueue ``task(*args)`` as ``task.delay(*args)`` would. Raises what the broker raises
    (callers log it and leave the message to their sweeper)."""
    # Eager mode and the publish signals' receivers are read on every call (tests switch
    # eager mode on and off, an integration may connect late); the rest is settled per task
    # name on first use (``reset`` after changing it).
    task = _real(task)
    route = _route_for(task) if _simple(args) and _as_is(task) else None
    if route is None:
        task.apply_async(args)
        return
    task_id = str(uuid.uuid4())
    root_id, parent_id = task_id, None
    parent = task.app.current_worker_task
    if parent is not None:
        root_id = parent.request.root_id or parent.request.id
        parent_id = parent.request.id
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    message = {
        "body": base64.b64encode(body.encode()).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            **route.headers,
            "id": task_id,
            "root_id": root_id,
            "parent_id": parent_id,
            "argsrepr": repr(args),
            "origin": _origin(),
        },
        "properties": {
            **route.properties,
            "correlation_id": task_id,
            "reply_to": task.app.thread_oid,  # per thread, as Celery's
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    _push(route, json.dumps(message))


def _as_is(task: Any) -> bool:
    """Nothing that changes a message between ``apply_async`` and the broker, now."""
    if task.app.conf.task_always_eager:
        return False
    if signals.before_task_publish.receivers or signals.after_task_publish.receivers or signals.task_sent.receivers:
        return False
    return _celerys(type(task).apply_async, "celery.app.task", "Task.apply_async") and _celerys(
        type(task.app).send_task, "celery.app.base", "Celery.send_task"
    )


def _celerys(function: Any, module: str, qualname: str) -> bool:
    """Celery's own function, not one an integration replaced or wrapped (``functools.wraps``
    keeps the names but adds ``__wrapped__``)."""
    return (
        getattr(function, "__module__", None) == module
        and function.__qualname__ == qualname
        and not hasattr(function, "__wrapped__")
    )


def _simple(args: tuple[Any, ...]) -> bool:
    return all(type(a) is str and 0 < len(a) <= MAX_ARG_LENGTH and _ID.fullmatch(a) for a in args)


def _route_for(task: Any) -> _Route | None:
    try:
        return _routes[task.name]
    except KeyError:
        pass
    with _lock:
        route = _build_route(task)
        _routes[task.name] = route
    return route


def reset() -> None:
    """Forget routes and the client (settings changed: tests)."""
    global _client
    with _lock:
        _routes.clear()
        _client = None


def _real(task: Any) -> Any:
    """A ``shared_task`` is a proxy: the app's own task behind it (its class is what counts)."""
    return task._get_current_object() if isinstance(task, Proxy) else task


def _build_route(task: Any) -> _Route | None:
    task = _real(task)
    app = task.app
    conf = app.conf
    url = conf.broker_write_url or ""
    if not url.startswith("redis://") or "?" in url or ";" in url or url != (conf.broker_url or ""):
        return None
    if conf.broker_use_ssl or any(conf.get(k) for k in ("broker_user", "broker_password", "broker_vhost", "broker_port")):
        return None
    if conf.get("broker_transport") or set(conf.broker_transport_options or {}) - _KNOWN_TRANSPORT_OPTIONS:
        return None
    if conf.task_protocol != 2 or conf.task_send_sent_event or conf.task_inherit_parent_priority or conf.task_compression:
        return None
    if conf.task_serializer != "json" or type(task).shadow_name is not Task.shadow_name:
        return None
    retry = _retry_plan(conf)
    if retry is None:
        return None
    routes = conf.task_routes
    if routes and not (isinstance(routes, dict) and all(isinstance(v, dict) and set(v) <= {"queue"} for v in routes.values())):
        return None  # routers as functions may look at the arguments; other keys change the message
    given = {k: v for k, v in task._get_exec_options().items() if v is not None}
    options = app.amqp.router.route(given, task.name, (), {}, task)
    if set(options) - _PLAIN_OPTIONS or options.get("serializer", "json") != "json":
        return None
    queue = options.get("queue")
    if queue is None:
        return None
    if isinstance(queue, str):
        queue = app.amqp.queues[queue]
    if queue.exchange is not None and queue.exchange.type != "direct":
        return None
    if queue.expires or queue.message_ttl or queue.max_priority or queue.queue_arguments:
        return None
    delivery_mode = getattr(queue.exchange, "delivery_mode", None) or conf.task_default_delivery_mode
    if delivery_mode in ("persistent", None):
        delivery_mode = 2
    elif delivery_mode == "transient":
        delivery_mode = 1
    headers = {
        "lang": "py",
        "task": task.name,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [options.get("time_limit"), options.get("soft_time_limit")],
        "kwargsrepr": "{}",
        "ignore_result": bool(task.ignore_result),
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {
        "delivery_mode": delivery_mode,
        "delivery_info": {"exchange": "", "routing_key": queue.name},
        "priority": 0,
        "body_encoding": "base64",
    }
    return _Route(queue=queue.name, url=url, retry=retry, headers=headers, properties=properties)


def _retry_plan(conf: Any) -> tuple[float, ...] | None:
    """The waits before each retry of a lost connection, as kombu's ``Connection.ensure``
    spaces them under ``task_publish_retry_policy`` (Celery's default: 0, 0.2, 0.4 s); None
    for an unbounded policy (left to kombu)."""
    if not conf.task_publish_retry:
        return ()
    policy = {"interval_start": 1, "interval_step": 1, "interval_max": 1, **(conf.task_publish_retry_policy or {})}
    if policy.get("max_retries") is None:
        return None
    wait, waits = float(policy["interval_start"]), []
    for _ in range(int(policy["max_retries"])):
        waits.append(wait)
        wait = min(wait + float(policy["interval_step"]), float(policy["interval_max"]))
    return tuple(waits)


_origin_of: tuple[int, str] | None = None


def _origin() -> str:
    """Celery's ``anon_nodename()`` (gen<pid>@<host>), once per process."""
    global _origin_of
    pid = os.getpid()
    if _origin_of is None or _origin_of[0] != pid:
        from celery.utils.nodenames import anon_nodename

        _origin_of = (pid, anon_nodename())
    return _origin_of[1]


def _redis(url: str) -> Any:
    global _client
    current = _client
    if current is not None and current[0] == os.getpid() and current[1] == url:
        return current[2]
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=25)
    _client = (os.getpid(), url, client)
    return client


def _push(route: _Route, payload: str) -> None:
    """LPUSH, retried on a lost connection (``route.retry``: the waits); a refused login is
    not retried."""
    import redis

    for wait in (*route.retry, None):
        try:
            _redis(route.url).lpush(route.queue, payload)
            return
        except redis.AuthenticationError:
            raise
        except (redis.ConnectionError, redis.TimeoutError):
            if wait is None:
                raise
        time.sleep(wait)
