"""Publishing tasks: the one way product code enqueues work (``publish(task, *ids)``).

On a Redis broker, the production set-up, the message is built here in Celery's message
protocol 2 (the envelope kombu's Redis transport stores) and pushed with one LPUSH on a
Redis client kept per process. That is the message ``task.delay(*ids)`` sends, without
the layers around its LPUSH: Celery's options, routing and signals and kombu's producer,
channel and a new Redis client object per message. Those cost 0.35 ms of CPU per message
in a warm loop and 1.0-1.3 ms in a worker process right after a conversion has evicted
the interpreter from the CPU caches (bench/convert_images.py, decision 0011).

Anything this does not reproduce goes through ``task.apply_async`` unchanged:
- another broker (the embedded file-system one), Redis over TLS, Sentinel, a socket;
- eager mode (``task_always_eager``: tests);
- a key prefix or other transport options;
- routes given as functions, or a route to a named exchange;
- receivers on ``before_task_publish``/``after_task_publish``, or sent events;
- arguments other than short strings (ids are what our tasks take).

``tests/fileconvert/test_broker.py`` checks the message against the one Celery itself
sends for the same task, so an upgrade of Celery or kombu that changes the format fails
there, not in production.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery import signals

MAX_ARG_LENGTH = 200
_KNOWN_TRANSPORT_OPTIONS = frozenset({"visibility_timeout"})


@dataclass(frozen=True)
class _Route:
    queue: str  # the list kombu's Redis transport pushes to (priority 0, anonymous exchange)
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
    route = _route_for(task) if _simple(args) and _as_is(task.app) else None
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
        "properties": {**route.properties, "correlation_id": task_id, "delivery_tag": str(uuid.uuid4())},
    }
    _push(task.app, route.queue, json.dumps(message))


def _as_is(app: Any) -> bool:
    return not (app.conf.task_always_eager or signals.before_task_publish.receivers or signals.after_task_publish.receivers)


def _simple(args: tuple[Any, ...]) -> bool:
    return all(type(a) is str and len(a) <= MAX_ARG_LENGTH for a in args)


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


def _build_route(task: Any) -> _Route | None:
    app = task.app
    conf = app.conf
    url = conf.broker_url or ""
    if not url.startswith("redis://") or conf.broker_use_ssl:
        return None
    if set(conf.broker_transport_options or {}) - _KNOWN_TRANSPORT_OPTIONS:
        return None
    if conf.task_send_sent_event or conf.task_inherit_parent_priority or conf.task_compression:
        return None
    if conf.task_serializer != "json" or (task.serializer or "json") != "json":
        return None
    if task.priority or getattr(task, "expires", None):
        return None
    routes = conf.task_routes
    if routes and not (isinstance(routes, dict) and all(isinstance(v, dict) for v in routes.values())):
        return None  # routers as functions may look at the arguments
    options = app.amqp.router.route({}, task.name, (), {}, task)
    queue = options.get("queue")
    if queue is None or options.get("exchange") or options.get("routing_key") or options.get("priority"):
        return None
    if isinstance(queue, str):
        queue = app.amqp.queues[queue]
    if queue.exchange is not None and queue.exchange.type != "direct":
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
        "timelimit": [task.time_limit, task.soft_time_limit],
        "kwargsrepr": "{}",
        "ignore_result": bool(task.ignore_result),
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {
        "reply_to": app.thread_oid,
        "delivery_mode": delivery_mode,
        "delivery_info": {"exchange": "", "routing_key": queue.name},
        "priority": 0,
        "body_encoding": "base64",
    }
    return _Route(queue=queue.name, headers=headers, properties=properties)


_origin_of: tuple[int, str] | None = None


def _origin() -> str:
    """Celery's ``anon_nodename()`` (gen<pid>@<host>), once per process."""
    global _origin_of
    pid = os.getpid()
    if _origin_of is None or _origin_of[0] != pid:
        from celery.utils.nodenames import anon_nodename

        _origin_of = (pid, anon_nodename())
    return _origin_of[1]


def _redis(app: Any) -> Any:
    global _client
    url = app.conf.broker_url
    current = _client
    if current is not None and current[0] == os.getpid() and current[1] == url:
        return current[2]
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=25)
    _client = (os.getpid(), url, client)
    return client


def _push(app: Any, queue: str, payload: str) -> None:
    """LPUSH, retried on a lost connection as Celery's publish retry policy says
    (``task_publish_retry_policy``: 3 retries, 0 / 0.2 / 0.2 s by default)."""
    import redis

    policy = app.conf.task_publish_retry_policy or {}
    retries = int(policy.get("max_retries", 3)) if app.conf.task_publish_retry else 0
    wait = float(policy.get("interval_start", 0))
    step, ceiling = float(policy.get("interval_step", 0.2)), float(policy.get("interval_max", 0.2))
    for attempt in range(retries + 1):
        try:
            _redis(app).lpush(queue, payload)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            if attempt == retries:
                raise
        time.sleep(wait)
        wait = min(wait + step, ceiling)
