"""Keyset-pagination depth benchmark for ``GET /api/audit`` (and the serializer cost per row).

Standalone (not pytest). Creates its own PostgreSQL database (``--bench-db``, default
``fileconvert_bench``) next to the one in ``DATABASE_URL`` and never touches the latter:

    .venv/bin/python bench/list_depth.py            # 1,000,000 rows, drops the bench DB at the end
    .venv/bin/python bench/list_depth.py --rows 100000 --keep

What it does, in order (each step prints its figures; a summary block closes the run):

1. drop + create the bench database, build the schema (migrations, or the current models
   when they have changes with no migration yet), create an organization, an owner and an
   API key through ``accounts.services``;
2. load ``--rows`` audit events for that organization and ``--rows / 5`` for a second one,
   server-side (``INSERT … SELECT generate_series``) with ids of the real shape
   (``aud_`` + 26-char Crockford ULID whose time part is the row's ``created_at``);
3. time ``GET /api/audit?limit=50`` through the whole Django stack (in-process test client,
   ``X-API-Key``) at depth 0, 100,000 and rows-50, and report the deepest/first ratio;
4. capture the SQL of one page request (no ``COUNT(``) and ``EXPLAIN ANALYZE`` the page query;
5. time ``AuditEventSerializer(many=True)`` + JSON rendering per row against a floor of plain
   dicts + ``json.dumps``, with a per-field breakdown and a profile of where the time goes.

Timings are printed, never asserted; the exit status is 0 unless the run itself fails
(or the page SQL contains a ``COUNT(``, which is a correctness bug, not a timing).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
PAGE_LIMIT = 50
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"  # fileconvert.ids._ALPHABET
ID_RE = re.compile(r"^aud_[0-9a-hjkmnp-tv-z]{26}$")
RATIO_TARGET = 1.5
SERIALIZER_TARGET = 4.0
SPREAD_MS = 30 * 86_400_000  # generated events cover the last 30 days

# --------------------------------------------------------------------------------------
# Database lifecycle (plain psycopg, before Django is set up)
# --------------------------------------------------------------------------------------


def bench_url(source_url: str, db_name: str) -> str:
    parts = urlsplit(source_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"DATABASE_URL must point at PostgreSQL, got scheme {parts.scheme!r}")
    source_db = parts.path.lstrip("/")
    if source_db == db_name:
        sys.exit(f"--bench-db {db_name!r} is the database of DATABASE_URL; refusing to drop it")
    return urlunsplit(parts._replace(path=f"/{db_name}"))


def admin_conninfo(url: str) -> str:
    """libpq URL of the server's maintenance database (``postgres``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))


def recreate_database(url: str, db_name: str) -> None:
    with psycopg.connect(admin_conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))


def drop_database(url: str, db_name: str) -> None:
    with psycopg.connect(admin_conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000.0


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def timed_best(fn: Callable[[], Any], repeat: int) -> float:
    """Best (minimum) wall time of ``fn`` in seconds over ``repeat`` calls, after one untimed call.

    For CPU-bound micro-measurements the minimum is the figure least disturbed by whatever
    else the machine is doing (as ``timeit`` advises); request latencies use median/p95.
    """
    return interleaved_best({"fn": fn}, repeat)["fn"]


def interleaved_best(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time (s) of each function, calling them round-robin ``repeat`` times so that
    a burst of load elsewhere on the machine hits all of them alike; GC paused while timing
    (as ``timeit`` does), collected between rounds."""
    best = dict.fromkeys(fns, math.inf)
    for fn in fns.values():
        fn()
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            for name, fn in fns.items():
                started = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - started)
        finally:
            gc.enable()
    return best


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def decode_ulid_ms(ulid: str) -> int:
    value = 0
    for char in ulid[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


def build_schema() -> str:
    """Migrate; if models have changes that no migration covers yet, build from the models."""
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
    from django.db.migrations.state import ProjectState

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    changes = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(apps), NonInteractiveMigrationQuestioner(specified_apps=set())
    ).changes(graph=loader.graph)
    if not changes:
        call_command("migrate", verbosity=0, interactive=False)
        return "migrations"
    print(
        f"  WARNING: models of {', '.join(sorted(changes))} have changes without a migration; "
        "building the schema from the current models (migrate --run-syncdb, migrations disabled)."
    )
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    return "models (syncdb: migrations missing)"


# --------------------------------------------------------------------------------------
# Data load
# --------------------------------------------------------------------------------------

# 1024 two-character Crockford pairs, 10 bits each; ``substring`` on bytea is O(1).
PAIRS = b"".join((CROCKFORD[i >> 5] + CROCKFORD[i & 31]).encode() for i in range(1024))
ACTIONS = [
    "api_key.create",
    "api_key.revoke",
    "setting.set",
    "feature_flag.update",
    "user.create",
    "membership.update",
    "file.upload",
    "file.delete",
]


def ulid_sql(ms_expr: str) -> str:
    """SQL for ``aud_`` + ULID: 10 chars of the 48-bit ms time (5 pairs) + 16 random chars (8 pairs)."""
    time_pairs = [f"substring(p.b from ((({ms_expr}) >> {10 * (4 - k)}) & 1023)::int * 2 + 1 for 2)" for k in range(5)]
    random_pairs = ["substring(p.b from floor(random() * 1024)::int * 2 + 1 for 2)"] * 8
    return "'aud_' || convert_from(" + " || ".join(time_pairs + random_pairs) + ", 'UTF8')"


def insert_sql(*, with_actor: bool) -> str:
    actor = "CASE WHEN g.i %% 3 = 0 THEN NULL ELSE %(user_id)s END" if with_actor else "NULL"
    label = "CASE WHEN g.i %% 3 = 0 THEN 'system' ELSE %(label)s END" if with_actor else "'system'"
    return f"""
        INSERT INTO accounts_auditevent
            (id, organization_id, actor_id, actor_label, action, target_type, target_id,
             request_id, ip, details, created_at)
        SELECT {ulid_sql("g.ms")}, %(org_id)s, {actor}, {label}, a.action,
               split_part(a.action, '.', 1), 'obj_' || substr(md5(g.i::text), 1, 26),
               'req_' || substr(md5('r' || g.i::text), 1, 26),
               ('10.' || (g.i >> 16) %% 256 || '.' || (g.i >> 8) %% 256 || '.' || g.i %% 256)::inet,
               jsonb_build_object('name', 'item ' || g.i, 'n', g.i, 'ok', g.i %% 2 = 0),
               to_timestamp(g.ms / 1000.0)
        FROM (SELECT i, %(t0)s::bigint + i::bigint * %(stride)s + %(offset)s AS ms
              FROM generate_series(0, %(count)s - 1) AS i) AS g
        CROSS JOIN (SELECT %(pairs)s::bytea AS b) AS p
        CROSS JOIN LATERAL (SELECT (%(actions)s::text[])[g.i %% {len(ACTIONS)} + 1] AS action) AS a
    """


def load_events(*, org_a: Any, org_b: Any, user: Any, key: Any, rows: int) -> dict[str, float]:
    from django.db import connection, transaction

    other_rows = rows // 5
    step = max(2, SPREAD_MS // max(rows, 1))  # >= 2 ms: org A at multiples, org B at multiples + 1 -> unique times
    t0 = int(time.time() * 1000) - (rows + 2) * step - 60_000  # all strictly older than the setup events
    common = {"pairs": PAIRS, "actions": ACTIONS, "t0": t0, "user_id": user.id, "label": f"{user.email} via {key.id}"}
    figures: dict[str, float] = {}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts_auditevent' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'accounts_auditevent'::regclass)"
        )
        secondary = cur.fetchall()
        cur.execute("SET maintenance_work_mem = '256MB'")
        started = time.perf_counter()
        with transaction.atomic():
            # Bulk-load shape: no secondary indexes while inserting, no per-row FK trigger
            # (rows are consistent by construction); indexes rebuilt below from their definitions.
            for name, _ in secondary:
                cur.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute(insert_sql(with_actor=True), {**common, "org_id": org_a.id, "stride": step, "offset": 0, "count": rows})
            cur.execute(
                insert_sql(with_actor=False),
                {**common, "org_id": org_b.id, "stride": 5 * step, "offset": 1, "count": other_rows},
            )
        figures["insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, definition in secondary:
            cur.execute(definition)
        figures["index_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cur.execute("VACUUM (ANALYZE) accounts_auditevent")
        figures["vacuum_s"] = time.perf_counter() - started
        cur.execute("RESET maintenance_work_mem")
        cur.execute("SELECT pg_total_relation_size('accounts_auditevent')")
        figures["table_mb"] = cur.fetchone()[0] / 1024 / 1024
    figures["index_count"] = len(secondary)
    return figures


def check_ids(org_a: Any) -> None:
    """Generated ids have the real shape and their ULID time is the row's created_at."""
    from accounts.models import AuditEvent

    events = AuditEvent.objects.filter(organization=org_a).values_list("id", "created_at")
    sample = list(events.order_by("-pk")[:100]) + list(events.order_by("pk")[:100])
    for event_id, created_at in sample:
        assert ID_RE.match(event_id), event_id
        assert abs(decode_ulid_ms(event_id[4:]) - created_at.timestamp() * 1000) < 1.5, (event_id, created_at)


# --------------------------------------------------------------------------------------
# Page requests through the Django stack
# --------------------------------------------------------------------------------------


def id_at(org: Any, position: int) -> str:
    """The id at 0-based ``position`` in the listing's order (-pk)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT id FROM accounts_auditevent WHERE organization_id = %s ORDER BY id DESC OFFSET %s LIMIT 1",
            [org.id, position],
        )
        return cur.fetchone()[0]


def page_path(cursor: str | None) -> str:
    return f"/api/audit?limit={PAGE_LIMIT}" + (f"&cursor={cursor}" if cursor else "")


def prepare_depth(client: Any, org: Any, depth: int, total: int, *, warmup: int) -> dict[str, Any]:
    """Cursor for a page starting at ``depth``; warm it up and check the page is the right one."""
    from fileconvert.api.pagination import encode_cursor

    cursor = encode_cursor([id_at(org, depth - 1)]) if depth else None
    expected_first = id_at(org, depth)
    path = page_path(cursor)
    for _ in range(max(1, warmup)):
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    page = response.json()["data"]
    assert len(page["items"]) == min(PAGE_LIMIT, total - depth), len(page["items"])
    assert page["items"][0]["id"] == expected_first, (page["items"][0]["id"], expected_first)
    assert page["has_more"] == (depth + PAGE_LIMIT < total)
    assert all(item["organization_id"] == org.id for item in page["items"])
    return {"depth": depth, "path": path, "bytes": len(response.content), "samples": []}


def measure_depths(client: Any, org: Any, depths: list[int], total: int, *, warmup: int, requests: int) -> list[dict[str, Any]]:
    """Time ``requests`` requests per depth, interleaved round-robin (rotating the order each
    round) so that background load on the machine hits every depth alike."""
    results = [prepare_depth(client, org, depth, total, warmup=warmup) for depth in depths]
    for round_no in range(requests):
        shift = round_no % len(results)
        for result in results[shift:] + results[:shift]:
            started = time.perf_counter()
            response = client.get(result["path"])
            result["samples"].append(ms(time.perf_counter() - started))
            assert response.status_code == 200
    for result in results:
        samples = result.pop("samples")
        result.update(median=statistics.median(samples), p95=p95(samples), min=min(samples))
    return results


def capture_page(client: Any, path: str, repeat: int = 10) -> tuple[list[str], float, float]:
    """(SQL of one page request, median ms in SQL, median ms per request) over ``repeat`` requests."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sql_ms, request_ms = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(path)
            request_ms.append(ms(time.perf_counter() - started))
        assert response.status_code == 200
        sql_ms.append(sum(ms(float(q["time"])) for q in ctx.captured_queries))
    return [q["sql"] for q in ctx.captured_queries], statistics.median(sql_ms), statistics.median(request_ms)


def explain_page(queries: list[str], org: Any, cursor_id: str) -> str:
    from django.db import connection

    from accounts.models import AuditEvent

    page_sql = next((q for q in queries if 'FROM "accounts_auditevent"' in q and "ORDER BY" in q), None)
    if page_sql is None:  # fall back to the same queryset keyset_page builds
        return (
            AuditEvent.objects.filter(organization=org, pk__lt=cursor_id)
            .order_by("-pk")[: PAGE_LIMIT + 1]
            .explain(analyze=True, buffers=True)
        )
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + page_sql)
        return "\n".join(row[0] for row in cur.fetchall())


# --------------------------------------------------------------------------------------
# Serialization cost per row
# --------------------------------------------------------------------------------------

VALUE_FIELDS = [
    "id",
    "created_at",
    "action",
    "actor_label",
    "actor_id",
    "organization_id",
    "target_type",
    "target_id",
    "request_id",
    "ip",
    "details",
]


def iso(value: Any) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def floor_payload(values: list[dict[str, Any]]) -> bytes:
    items = [
        {
            "id": v["id"],
            "created_at": iso(v["created_at"]),
            "action": v["action"],
            "actor": v["actor_label"],
            "actor_id": v["actor_id"],
            "organization_id": v["organization_id"],
            "target_type": v["target_type"],
            "target_id": v["target_id"],
            "request_id": v["request_id"],
            "ip": v["ip"],
            "details": v["details"],
        }
        for v in values
    ]
    body = {"items": items, "next_cursor": None, "has_more": False}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def serializer_payload(rows: list[Any]) -> bytes:
    from accounts.api.serializers import AuditEventSerializer
    from fileconvert.api.envelope import EnvelopeRenderer

    data = AuditEventSerializer(rows, many=True).data
    return EnvelopeRenderer().render({"items": data, "next_cursor": None, "has_more": False})


def field_breakdown(rows: list[Any]) -> list[tuple[str, str, float]]:
    """µs per row spent in each field's get_attribute + to_representation."""
    from accounts.api.serializers import AuditEventSerializer

    serializer = AuditEventSerializer(rows, many=True)
    out = []
    for name, field in serializer.child.fields.items():

        def run(field: Any = field) -> None:
            for row in rows:
                attribute = field.get_attribute(row)
                if attribute is not None:
                    field.to_representation(attribute)

        out.append((name, type(field).__name__, timed_best(run, 7) / len(rows) * 1e6))
    return out


def profile_top(rows: list[Any], limit: int = 14) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        serializer_payload(rows)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(limit)
    lines = [line.replace(str(ROOT) + "/", "") for line in stream.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start : start + limit + 1])


def variant_classes() -> dict[str, Any]:
    """Candidate rewrites of AuditEventSerializer (same JSON unless the name says otherwise)."""
    import datetime

    from rest_framework import serializers

    from accounts.api.serializers import AuditEventSerializer
    from accounts.models import AuditEvent

    class FastAuditEventSerializer(AuditEventSerializer):
        """Same declared fields (same OpenAPI schema); to_representation builds the dict directly."""

        def to_representation(self, obj: AuditEvent) -> dict[str, Any]:
            return {
                "id": obj.id,
                "created_at": iso(obj.created_at),
                "action": obj.action,
                "actor": obj.actor_label,
                "actor_id": obj.actor_id,
                "organization_id": obj.organization_id,
                "target_type": obj.target_type,
                "target_id": obj.target_id,
                "request_id": obj.request_id,
                "ip": obj.ip,
                "details": obj.details,
            }

    class UtcDateSerializer(AuditEventSerializer):
        created_at = serializers.DateTimeField(read_only=True, default_timezone=datetime.UTC)

    class UTCDateTimeField(serializers.DateTimeField):
        """Output-only fast path: the API always answers in UTC with a Z suffix."""

        def to_representation(self, value: Any) -> Any:
            if value is None or isinstance(value, str):
                return value
            return iso(value.astimezone(datetime.UTC))

    class LeanDateSerializer(AuditEventSerializer):
        created_at = UTCDateTimeField(read_only=True)

    class NoDateSerializer(AuditEventSerializer):
        created_at = serializers.CharField(read_only=True)  # cost indicator only: str(datetime), other JSON

    class PlainAuditEventSerializer(serializers.Serializer):
        """The same output fields declared by hand: no ModelSerializer introspection per instance."""

        id = serializers.CharField(read_only=True)
        created_at = serializers.DateTimeField(read_only=True)
        action = serializers.CharField(read_only=True)
        actor = serializers.CharField(source="actor_label", read_only=True)
        actor_id = serializers.CharField(read_only=True)
        organization_id = serializers.CharField(read_only=True)
        target_type = serializers.CharField(read_only=True)
        target_id = serializers.CharField(read_only=True)
        request_id = serializers.CharField(read_only=True)
        ip = serializers.IPAddressField(read_only=True)
        details = serializers.JSONField(read_only=True)

    return {
        "created_at DateTimeField(default_timezone=UTC)": UtcDateSerializer,
        "created_at custom UTCDateTimeField": LeanDateSerializer,
        "created_at as CharField (indicator, other JSON)": NoDateSerializer,
        "plain Serializer, same fields": PlainAuditEventSerializer,
        "to_representation override (dict literal)": FastAuditEventSerializer,
    }


def path_functions(rows: list[Any], values: list[dict[str, Any]]) -> dict[str, Callable[[], Any]]:
    """The current path, its parts, the floor and each candidate rewrite, as callables."""
    from accounts.api.serializers import AuditEventSerializer
    from fileconvert.api.envelope import EnvelopeRenderer

    renderer = EnvelopeRenderer()

    def rendered(serializer_class: Any) -> Callable[[], bytes]:
        return lambda: renderer.render({"items": serializer_class(rows, many=True).data, "next_cursor": None, "has_more": False})

    data = AuditEventSerializer(rows, many=True).data
    reference = json.loads(serializer_payload(rows))
    fns: dict[str, Callable[[], Any]] = {
        "current": lambda: serializer_payload(rows),
        "floor": lambda: floor_payload(values),
        "current: serializer .data only": lambda: AuditEventSerializer(rows, many=True).data,
        "current: JSON render only (EnvelopeRenderer)": lambda: renderer.render(
            {"items": data, "next_cursor": None, "has_more": False}
        ),
    }
    for name, cls in variant_classes().items():
        if "other JSON" not in name:
            assert json.loads(rendered(cls)()) == reference, name
        fns[name] = rendered(cls)
    fns["floor from model instances (getattr + dumps)"] = lambda: floor_payload(
        [{f: getattr(r, f) for f in VALUE_FIELDS} for r in rows]
    )
    return fns


def fixed_costs(rows: list[Any]) -> dict[str, float]:
    """µs paid once per response, whatever the page size."""
    from accounts.api.serializers import AuditEventSerializer

    plain = variant_classes()["plain Serializer, same fields"]
    return {
        "whole serializer + render path, 0 rows": timed_best(lambda: serializer_payload([]), 300) * 1e6,
        "whole serializer + render path, 1 row": timed_best(lambda: serializer_payload(rows[:1]), 300) * 1e6,
        "AuditEventSerializer().fields (ModelSerializer)": timed_best(lambda: AuditEventSerializer().fields, 300) * 1e6,
        "same fields on a plain Serializer": timed_best(lambda: plain().fields, 300) * 1e6,
    }


def measure_serialization(org: Any) -> dict[str, Any]:
    from accounts.models import AuditEvent

    results: dict[str, Any] = {"sizes": []}
    base = AuditEvent.objects.filter(organization=org).order_by("-pk")
    for size, repeat in ((50, 200), (1000, 20)):
        rows = list(base[:size])
        values = list(base.values(*VALUE_FIELDS)[:size])
        same = json.loads(serializer_payload(rows)) == json.loads(floor_payload(values))
        best = {name: seconds / size * 1e6 for name, seconds in interleaved_best(path_functions(rows, values), repeat).items()}
        fetch = interleaved_best(
            {"models": lambda size=size: list(base[:size]), "values": lambda size=size: list(base.values(*VALUE_FIELDS)[:size])},
            max(5, repeat // 4),
        )
        serializer_us, floor_us = best.pop("current"), best.pop("floor")
        results["sizes"].append(
            {
                "size": size,
                "same_json": same,
                "serializer_us": serializer_us,
                "floor_us": floor_us,
                "ratio": serializer_us / floor_us,
                "fetch_models_us": fetch["models"] / size * 1e6,
                "fetch_values_us": fetch["values"] / size * 1e6,
                "alternatives": best,
            }
        )
    rows = list(base[:1000])
    results["fields"] = field_breakdown(rows)
    results["fixed"] = fixed_costs(rows)
    results["profile"] = profile_top(rows)
    return results


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="audit events of the measured organization (default 1,000,000)"
    )
    parser.add_argument("--requests", type=int, default=30, help="timed requests per depth (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per depth first (default 5)")
    parser.add_argument(
        "--bench-db", default="fileconvert_bench", help="database created, used and dropped (default fileconvert_bench)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database (and print its URL) at the end")
    args = parser.parse_args(argv)
    if args.rows < 2 * PAGE_LIMIT + 10:
        parser.error(f"--rows must be at least {2 * PAGE_LIMIT + 10}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    url = bench_url(source_url, args.bench_db)
    data_dir = tempfile.mkdtemp(prefix="fileconvert-bench-")
    run_started = time.perf_counter()
    summary: dict[str, str] = {}

    section("setup")
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    recreate_database(source_url, args.bench_db)
    print(f"  bench database: {args.bench_db} (recreated; DATABASE_URL's database untouched)")
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
            "FILECONVERT_DATA_DIR": data_dir,
            "THROTTLE_IDENTITY": "1000000/min",  # the bench must not be throttled
            "LOG_LEVEL": "WARNING",
            "DEBUG": "0",
        }
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):  # self-contained: file cache under the temp data dir
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))

    try:
        import django

        django.setup()

        from django.test import Client

        from accounts import services
        from accounts.models import AuditEvent

        started = time.perf_counter()
        schema = build_schema()
        print(f"  schema from {schema} in {time.perf_counter() - started:.1f}s")
        org_a = services.organization_create(actor=None, name="Bench Org")
        org_b = services.organization_create(actor=None, name="Other Org")
        owner = services.user_create(actor=None, org=org_a, email="owner@bench.example", role="owner").user
        key, raw_key = services.api_key_issue_for(org=org_a, user=owner, name="bench key")
        print(f"  org {org_a.id}, owner {owner.id}, api key {key.id}")
        summary["schema"] = schema

        section(f"load {args.rows:,} audit events (+{args.rows // 5:,} for another org)")
        load = load_events(org_a=org_a, org_b=org_b, user=owner, key=key, rows=args.rows)
        check_ids(org_a)
        total = AuditEvent.objects.filter(organization=org_a).count()  # once, for the depths; never per request
        other = AuditEvent.objects.filter(organization=org_b).count()
        load_total = load["insert_s"] + load["index_s"] + load["vacuum_s"]
        print(f"  insert (INSERT … SELECT generate_series): {load['insert_s']:.1f}s")
        print(f"  rebuild {load['index_count']:.0f} secondary indexes: {load['index_s']:.1f}s")
        print(f"  VACUUM (ANALYZE): {load['vacuum_s']:.1f}s")
        print(f"  total load {load_total:.1f}s; table + indexes {load['table_mb']:.0f} MB")
        print(f"  rows: org A {total:,} (generated + setup events), org B {other:,}; ids checked: shape and ULID time")
        summary["load"] = f"{args.rows + args.rows // 5:,} rows in {load_total:.1f}s ({load['table_mb']:.0f} MB)"

        section(f"GET /api/audit?limit={PAGE_LIMIT} by depth ({args.requests} timed each, interleaved; {args.warmup} warm-up)")
        client = Client(HTTP_X_API_KEY=raw_key)
        deepest = total - PAGE_LIMIT
        depths = sorted({0, min(100_000, total // 10), deepest})
        results = measure_depths(client, org_a, depths, total, warmup=args.warmup, requests=args.requests)
        for result in results:
            print(
                f"  depth {result['depth']:>9,}: median {result['median']:6.2f} ms   p95 {result['p95']:6.2f} ms   "
                f"min {result['min']:6.2f} ms   ({result['bytes']:,} bytes)"
            )
        ratio = results[-1]["median"] / results[0]["median"]
        verdict = "MET" if ratio <= RATIO_TARGET else "NOT MET"
        print(f"  deepest/first median ratio: {ratio:.2f} (target <= {RATIO_TARGET}) -> {verdict}")
        for result in results:
            summary[f"page @ {result['depth']:,}"] = f"median {result['median']:.2f} ms, p95 {result['p95']:.2f} ms"
        summary["depth ratio"] = f"{ratio:.2f} (target <= {RATIO_TARGET}: {verdict})"

        section("SQL of one page request (deepest)")
        queries, sql_ms, request_ms = capture_page(client, results[-1]["path"])
        for i, query in enumerate(queries, 1):
            print(f"  {i}. {query[:150]}{'…' if len(query) > 150 else ''}")
        counting = [q for q in queries if re.search(r"\bCOUNT\s*\(", q, re.IGNORECASE) and "accounts_auditevent" in q]
        assert not counting, f"page request counts the audit table: {counting}"
        print(f"  {len(queries)} queries; none has COUNT( over accounts_auditevent")
        print(
            f"  time in SQL (client side, all queries): median {sql_ms:.2f} ms of {request_ms:.2f} ms per request "
            f"({sql_ms / request_ms:.0%}); the rest is Python (middleware, auth, throttle, DRF, serializer, render)"
        )
        summary["queries per page"] = f"{len(queries)} (no COUNT)"
        plan = explain_page(queries, org_a, id_at(org_a, deepest - 1))
        print("  EXPLAIN (ANALYZE, BUFFERS) of the page query:")
        print("\n".join("    " + line for line in plan.splitlines()))
        scan = "Index Scan" if "Index Scan" in plan or "Index Only Scan" in plan else "NO INDEX SCAN"
        scan_line = next((line.strip().lstrip("-> ") for line in plan.splitlines() if "Scan" in line), "")
        exec_ms = re.search(r"Execution Time: ([\d.]+) ms", plan)
        print(f"  -> {scan}: {scan_line}")
        summary["deepest page plan"] = f"{scan_line}; execution {exec_ms.group(1) if exec_ms else '?'} ms"

        section("serialization per row: AuditEventSerializer + EnvelopeRenderer vs dicts + json.dumps (best of N)")
        ser = measure_serialization(org_a)
        for row in ser["sizes"]:
            verdict = "MET" if row["ratio"] <= SERIALIZER_TARGET else "NOT MET"
            print(
                f"  {row['size']:>5} rows: serializer {row['serializer_us']:6.2f} µs/row   floor {row['floor_us']:5.2f} µs/row   "
                f"ratio {row['ratio']:5.2f}x (target <= {SERIALIZER_TARGET:.0f}x: {verdict})   same JSON: {row['same_json']}"
            )
            print(
                f"{'':13}context - DB fetch: model instances {row['fetch_models_us']:5.2f} µs/row, "
                f".values() {row['fetch_values_us']:5.2f} µs/row"
            )
            summary[f"serializer {row['size']} rows"] = (
                f"{row['serializer_us']:.2f} µs/row vs floor {row['floor_us']:.2f} -> {row['ratio']:.2f}x ({verdict})"
            )
        print("  per field, get_attribute + to_representation (1000 rows):")
        for name, kind, us in ser["fields"]:
            print(f"    {name:<16} {kind:<18} {us:5.2f} µs/row")
        fields_sum = sum(us for _, _, us in ser["fields"])
        print(f"    {'sum of fields':<35} {fields_sum:5.2f} µs/row")
        small, large = ser["sizes"]
        print(f"  per row, serializer + render (µs/row; ratio to that size's floor):{'50 rows':>15}{'1000 rows':>19}")
        for name in large["alternatives"]:
            cells = "".join(
                f"{size['alternatives'][name]:9.2f} ({size['alternatives'][name] / size['floor_us']:4.1f}x)"
                for size in (small, large)
            )
            print(f"    {name:<62} {cells}")
        print("  fixed cost per response (µs, paid once per page whatever its size):")
        for name, us in ser["fixed"].items():
            print(f"    {name:<62} {us:7.1f}")
        print("  profile of the serializer path (1000 rows x 5, by own time):")
        print("\n".join("    " + line for line in ser["profile"].splitlines()))
        fast = "to_representation override (dict literal)"
        summary["to_representation override"] = " / ".join(
            f"{size['alternatives'][fast]:.2f} µs/row ({size['alternatives'][fast] / size['floor_us']:.1f}x) at {size['size']}"
            for size in (small, large)
        )
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        shutil.rmtree(data_dir, ignore_errors=True)
        if args.keep:
            print(f"\n  kept bench database: {url}")
        else:
            drop_database(source_url, args.bench_db)
            print(f"\n  dropped bench database {args.bench_db}")

    section("summary")
    summary["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    summary["runtime"] = f"{time.perf_counter() - run_started:.0f}s"
    width = max(len(k) for k in summary)
    for name, value in summary.items():
        print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
