"""Review queue at scale: the Django admin's queue page and the seed 001 list API with
50,000 pending objects, against the same pages on an empty queue, on PostgreSQL.

Creates three databases (``--bench-db`` prefix: ``_empty``, ``_page`` with one page of
pending objects, ``_full``) next to the one in ``DATABASE_URL`` and never touches the latter.
Each page is requested on the three in turn (round-robin), so other load hits them alike.
Prints, per page: query count (must be the same in all three), median / p95 / min time
through the whole Django stack (in-process ``django.test.Client``), the full/empty and
full/one-page ratios; then EXPLAIN of the queue page and of the pending count. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
PAGE_ROWS = 50  # review.admin.ReviewQueueAdmin.list_per_page
CONTENT_TYPES = [
    ("application/pdf", "pdf", ".pdf"),
    ("image/png", "png", ".png"),
    ("image/jpeg", "jpeg", ".jpg"),
    ("text/plain", "text", ".txt"),
    ("audio/mpeg", "mp3", ".mp3"),
    ("video/mp4", "mp4", ".mp4"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", ".docx"),
]


def bench_url(source_url: str, db_name: str) -> str:
    parts = urlsplit(source_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"DATABASE_URL must point at PostgreSQL, got scheme {parts.scheme!r}")
    if parts.path.lstrip("/") == db_name:
        sys.exit(f"--bench-db {db_name!r} is the database of DATABASE_URL; refusing to drop it")
    return urlunsplit(parts._replace(path=f"/{db_name}"))


def maintenance(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql", path="/postgres"))


def recreate_database(url: str, name: str, *, create: bool = True) -> None:
    with psycopg.connect(maintenance(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


# --------------------------------------------------------------------------------------


def build_world(tenants: int) -> dict[str, Any]:
    from accounts import services
    from accounts.models import User
    from uploads.models import Dataset, Upload

    platform = services.organization_create(actor=None, name="Platform")
    admin = services.user_create(actor=None, org=platform, email="admin@bench.example", role="owner").user
    User.objects.filter(pk=admin.pk).update(is_platform_admin=True)
    admin.refresh_from_db()
    _key, raw = services.api_key_issue_for(org=platform, user=admin, name="bench admin key")
    orgs, datasets, uploads = [], [], []
    for i in range(tenants):
        org = services.organization_create(actor=None, name=f"Tenant {i:03d}")
        orgs.append(org)
        for j in range(3):
            datasets.append(Dataset.objects.create(organization=org, name=f"Dataset {i}-{j}"))
        uploads.append(Upload.objects.create(organization=org, source=Upload.SOURCE_BATCH, name=f"batch {i}"))
    return {"admin": admin, "key": raw, "orgs": orgs, "datasets": datasets, "uploads": uploads}


def bulk_files(world: dict[str, Any], *, pending: int, other: int, batch: int = 5000) -> dict[str, float]:
    """``pending`` staged files awaiting review (10 % overdue, a third of those escalated)
    plus ``other`` decided or review-free files, with bulk_create in batches."""
    from django.db import connection
    from django.utils import timezone

    from fileconvert.ids import new_id
    from review.models import ReviewEscalation
    from uploads.models import FileStatus, ReviewState, StoredFile

    rng = random.Random(42)
    now = timezone.now()
    by_org: dict[str, list[Any]] = {}
    for dataset in world["datasets"]:
        by_org.setdefault(dataset.organization_id, []).append(dataset)
    uploads = {u.organization_id: u for u in world["uploads"]}
    orgs = world["orgs"]
    started = time.perf_counter()
    escalations: list[Any] = []

    def make(n: int, *, pending_rows: bool) -> None:
        rows: list[Any] = []
        for i in range(n):
            org = orgs[rng.randrange(len(orgs))]
            content_type, kind, ext = CONTENT_TYPES[rng.randrange(len(CONTENT_TYPES))]
            fid = new_id("fil")
            confirmed = now - timedelta(seconds=rng.randrange(0, 7 * 86400))
            deadline = confirmed + timedelta(days=7)
            if pending_rows and i % 10 == 0:
                deadline = now - timedelta(seconds=rng.randrange(60, 5 * 86400))  # overdue
            rows.append(
                StoredFile(
                    id=fid,
                    organization_id=org.pk,
                    upload_id=uploads[org.pk].pk,
                    dataset=by_org[org.pk][rng.randrange(3)],
                    name=f"document-{i:06d}{ext}",
                    storage_key=f"{org.pk}/{fid}/document{ext}",
                    size=rng.randrange(1_000, 50_000_000),
                    sha256=secrets.token_hex(32),
                    content_type=content_type,
                    kind=kind,
                    status=FileStatus.STAGED if pending_rows else FileStatus.ACTIVE,
                    review_state=ReviewState.PENDING
                    if pending_rows
                    else rng.choice([ReviewState.APPROVED, ReviewState.NOT_REQUIRED]),
                    thumbnail_key=f"{org.pk}/{fid}/.thumbnail.png" if kind in ("pdf", "png", "jpeg") else "",
                    confirmed_at=confirmed,
                    created_at=confirmed,
                    review_expires_at=deadline if pending_rows else None,
                    metadata={"pages": rng.randrange(1, 40)} if kind == "pdf" else {},
                )
            )
            if pending_rows and i % 30 == 0:
                escalations.append(ReviewEscalation(file_id=fid, escalated_at=now, deadline=deadline))
            if len(rows) >= batch:
                StoredFile.objects.bulk_create(rows)
                rows = []
        if rows:
            StoredFile.objects.bulk_create(rows)

    make(pending, pending_rows=True)
    make(other, pending_rows=False)
    ReviewEscalation.objects.bulk_create(escalations, batch_size=batch)
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) uploads_storedfile")
        cursor.execute("VACUUM (ANALYZE) review_reviewescalation")
    return {"insert_s": inserted, "vacuum_s": time.perf_counter() - started}


# --------------------------------------------------------------------------------------


def pages(world: dict[str, Any], deep: int = 20) -> dict[str, tuple[Any, str]]:
    from django.test import Client

    console = Client()
    console.force_login(world["admin"])
    api = Client(HTTP_X_API_KEY=world["key"])
    return {
        "admin queue (default: pending)": (console, "/admin/review/reviewqueueitem/"),
        "admin queue ?overdue=yes": (console, "/admin/review/reviewqueueitem/?overdue=yes"),
        "admin queue ?type=pdf": (console, "/admin/review/reviewqueueitem/?type=pdf"),
        "admin queue ?q=document-0420": (console, "/admin/review/reviewqueueitem/?q=document-0420"),
        f"admin queue page {deep}": (console, f"/admin/review/reviewqueueitem/?p={deep}"),
        "API list limit=20": (api, "/v1/admin/review/objects"),
        "API list limit=100": (api, "/v1/admin/review/objects?limit=100"),
    }


def count_queries(client: Any, path: str) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return len(ctx), len(response.content)


def use_db(name: str) -> None:
    """Point Django's default connection at another bench database (connected, outside any timer)."""
    from django.db import connections

    conn = connections["default"]
    conn.close()
    conn.settings_dict["NAME"] = name
    conn.ensure_connection()


def measure(
    dbs: dict[str, str], targets: dict[str, dict[str, tuple[Any, str]]], *, requests: int, warmup: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Per page, the phases' requests interleaved round-robin (one request on each database
    in turn), so load from other processes falls on every phase alike."""
    out: dict[str, dict[str, dict[str, float]]] = {phase: {} for phase in dbs}
    names = list(next(iter(targets.values())))
    for name in names:
        samples: dict[str, list[float]] = {phase: [] for phase in dbs}
        for phase, db in dbs.items():
            use_db(db)
            client, path = targets[phase][name]
            for _ in range(max(warmup, 1)):  # the first request of a credential may do one-off writes
                client.get(path)
            queries, size = count_queries(client, path)
            out[phase][name] = {"queries": queries, "bytes": size}
        for _ in range(requests):
            for phase, db in dbs.items():
                use_db(db)
                client, path = targets[phase][name]
                started = time.perf_counter()
                response = client.get(path)
                samples[phase].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
        for phase, values in samples.items():
            values.sort()
            out[phase][name].update(
                median=statistics.median(values), p95=values[max(0, int(len(values) * 0.95) - 1)], min=values[0]
            )
    return out


def api_depths(client: Any, positions: list[int], rounds: int) -> dict[int, tuple[float, int]]:
    """``GET /v1/admin/review/objects`` starting ``position`` rows into the queue (the cursor of
    the row before), depths interleaved round-robin: {position: (median ms, queries)}."""
    from fileconvert.api.pagination import encode_cursor
    from review import selectors

    ordered = selectors.pending_files().order_by("review_expires_at", "pk").values("review_expires_at", "pk")
    paths = {}
    for position in positions:
        if position == 0:
            paths[position] = "/v1/admin/review/objects"
            continue
        row = ordered[position - 1]
        paths[position] = f"/v1/admin/review/objects?cursor={encode_cursor([row['review_expires_at'].isoformat(), row['pk']])}"
    samples: dict[int, list[float]] = {p: [] for p in positions}
    queries = {p: count_queries(client, path)[0] for p, path in paths.items()}
    for _ in range(rounds):
        for position, path in paths.items():
            started = time.perf_counter()
            response = client.get(path)
            samples[position].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return {p: (statistics.median(v), queries[p]) for p, v in samples.items()}


def explain(statement: str, params: list[Any]) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        return "\n".join("    " + row[0] for row in cursor.fetchall())


def timed(fn: Callable[[], Any], repeat: int = 20) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=50_000, help="pending objects (default 50,000)")
    parser.add_argument("--other", type=int, default=50_000, help="decided / review-free files besides (default 50,000)")
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--bench-db", default="fileconvert_bench_review")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    source_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    run_started = time.perf_counter()
    section("setup")
    print(f"  load average at start: {load()} ({os.cpu_count()} CPUs)")
    one_page = min(PAGE_ROWS, args.pending)
    dbs = {
        "empty": f"{args.bench_db}_empty",
        "one page": f"{args.bench_db}_page",
        "full": f"{args.bench_db}_full",
    }
    for db in dbs.values():
        bench_url(source_url, db)  # refuses the database of DATABASE_URL
        recreate_database(source_url, db)
    os.environ.update(
        {
            "DATABASE_URL": bench_url(source_url, dbs["empty"]),
            "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
            "FILECONVERT_DATA_DIR": tempfile.mkdtemp(prefix="fileconvert-bench-review-"),
            "THROTTLE_IDENTITY": "1000000/min",
            "LOG_LEVEL": "WARNING",
            "DEBUG": "0",
        }
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        if "testserver" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        deep = max(1, min(20, args.pending // PAGE_ROWS))  # a page that exists once the queue is full
        targets: dict[str, dict[str, tuple[Any, str]]] = {}
        worlds: dict[str, dict[str, Any]] = {}
        for phase, pending in (("empty", 0), ("one page", one_page), ("full", args.pending)):
            use_db(dbs[phase])
            call_command("migrate", verbosity=0, interactive=False)
            worlds[phase] = build_world(args.tenants)
            other = args.other if phase == "full" else 0
            loaded = bulk_files(worlds[phase], pending=pending, other=other)
            print(
                f"  {dbs[phase]}: {args.tenants} tenants, {pending:,} pending + {other:,} other files"
                f" (bulk_create {loaded['insert_s']:.1f}s, VACUUM ANALYZE {loaded['vacuum_s']:.1f}s)"
            )
            targets[phase] = pages(worlds[phase], deep)
        print(f"  load average after loading: {load()}")

        section(f"measuring: {args.requests} requests per page and phase, phases interleaved")
        results = measure(dbs, targets, requests=args.requests, warmup=args.warmup)
        empty, small, full = results["empty"], results["one page"], results["full"]
        use_db(dbs["full"])
        world = worlds["full"]

        section("side by side (median ms through the whole Django stack; queries per request)")
        print(
            f"  {'page':31} {'queries e/1/f':>13} {'empty':>7} {'1 page':>7} {'full':>7} {'full p95':>8}"
            f" {'full/empty':>10} {'full/1 page':>11}   min ms e/1/f (least disturbed by load)"
        )
        constant = True
        for name in full:
            e, o, f = empty[name], small[name], full[name]
            same = e["queries"] == o["queries"] == f["queries"]
            constant &= same
            print(
                f"  {name:31} {int(e['queries']):>5}/{int(o['queries'])}/{int(f['queries']):<5}"
                f" {e['median']:>7.1f} {o['median']:>7.1f} {f['median']:>7.1f} {f['p95']:>8.1f}"
                f" {f['median'] / e['median']:>9.2f}x {f['median'] / o['median']:>10.2f}x"
                f"   {e['min']:.1f}/{o['min']:.1f}/{f['min']:.1f}" + ("" if same else "  <-- query count differs")
            )
        print(f"  query counts constant (empty vs full): {'yes' if constant else 'NO'}")

        api = pages(world)["API list limit=20"][0]
        depths = api_depths(api, [0, args.pending // 2, max(1, args.pending - 20)], rounds=args.requests)
        first = depths[0][0]
        for position, (median, queries) in depths.items():
            print(
                f"  API list at depth {position:>6,}: {median:6.1f} ms median, {queries} queries,"
                f" {median / first:.2f}x the first page (keyset: target ~1x)"
            )

        section("SQL")
        from review import selectors

        print(f"  pending_count() (the API's total): {timed(selectors.pending_count):.2f} ms best of 20")
        page_sql, page_params = selectors.pending_files().order_by("review_expires_at", "pk")[:21].query.sql_with_params()
        print("  API queue page:")
        print(explain(page_sql, list(page_params)))
        count_sql, count_params = selectors.pending_files().order_by().values("pk").query.sql_with_params()
        print("  pending count:")
        print(explain(f"SELECT COUNT(*) FROM ({count_sql}) q", list(count_params)))

        section("summary")
        for label, key in (("admin queue page", "admin queue (default: pending)"), ("list API page", "API list limit=20")):
            e, o, f = empty[key], small[key], full[key]
            print(
                f"  {label:17} {f['median']:.1f} ms full vs {e['median']:.1f} ms empty ({f['median'] / e['median']:.2f}x)"
                f" and {o['median']:.1f} ms at one page ({f['median'] / o['median']:.2f}x);"
                f" min {e['min']:.1f}/{o['min']:.1f}/{f['min']:.1f} ms;"
                f" queries {int(e['queries'])}/{int(o['queries'])}/{int(f['queries'])}"
            )
        print(f"  load average at end: {load()}; runtime {time.perf_counter() - run_started:.0f}s")
        return 0 if constant else 1
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            for db in dbs.values():
                recreate_database(source_url, db, create=False)
            print(f"  dropped bench databases {', '.join(dbs.values())}")


if __name__ == "__main__":
    sys.exit(main())
