"""The storage usage counter against summing the files, side by side, as an organization grows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/storage_usage.py [--sizes 1000,10000,100000]

Every upload confirmation and every conversion output checks the quota under the
organization's lock. Reading the counter row (``fileconvert.usage.storage_usage``) is one
row; summing the files (``storage_usage_recount``, what the check did before) is
O(files). For each size the organization is grown to that many confirmed files (one
INSERT ... SELECT, so the triggers run too) and both reads are timed, best of 5 rounds of
50 calls. Then what the triggers cost every write: a one-row UPDATE of a file and a
one-row INSERT, with the triggers enabled and disabled, interleaved. The bench's own
throw-away database; PostgreSQL only (the statement-level triggers are what it measures).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._conversions_env import BenchEnv


def best(fn, rounds: int = 5, calls: int = 50) -> float:
    """Best per-call wall time over ``rounds`` rounds of ``calls`` calls, in ms."""
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - started) / calls * 1000)
    return min(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    env = BenchEnv(name="usage", redis_db=11)
    env.prepare()
    env.apply()
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Organization
    from fileconvert import fastsql
    from fileconvert.usage import storage_usage, storage_usage_recount
    from uploads.models import StoredFile

    if connection.vendor != "postgresql":
        print("this bench needs PostgreSQL (DATABASE_URL)")
        return 2
    org = Organization.objects.get(pk=env.org)
    seed = StoredFile(organization=org, name="seed.bin", size=10, confirmed_at=timezone.now())
    seed.storage_key = f"{org.pk}/{seed.pk}/seed.bin"
    fastsql.insert(seed)
    columns = [f.column for f in StoredFile._meta.concrete_fields if f.column not in ("id", "storage_key")]
    have = 1
    try:
        print(f"{'files':>9} {'counter ms':>11} {'sum ms':>9} {'sum/counter':>12}")
        for size in [int(s) for s in args.sizes.split(",")]:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO uploads_storedfile (id, storage_key, {', '.join(columns)}) "
                    f"SELECT 'fil_bench' || g, 'bench/' || g, {', '.join(columns)} FROM uploads_storedfile, "
                    "generate_series(%s, %s) g WHERE uploads_storedfile.id = %s",
                    [have, size - 1, seed.pk],
                )
                cursor.execute("ANALYZE uploads_storedfile")
            have = size
            counted, summed = storage_usage(org), storage_usage_recount(org)
            assert counted == summed == (10 * size, size), (counted, summed)
            counter = best(lambda: storage_usage(org))
            total = best(lambda: storage_usage_recount(org), rounds=3, calls=5 if size >= 100_000 else 20)
            print(f"{size:>9} {counter:>11.3f} {total:>9.3f} {total / counter:>11.0f}x", flush=True)

        def update() -> None:
            with transaction.atomic():
                fastsql.update_where(StoredFile, {"status": "active"}, pk=seed.pk)

        def insert() -> None:
            with transaction.atomic():
                fresh = StoredFile(organization=org, name="one.bin", size=1, confirmed_at=timezone.now())
                fresh.storage_key = f"{org.pk}/{fresh.pk}/one.bin"
                fastsql.insert(fresh)

        results: dict[str, list[float]] = {}
        for _round in range(3):  # interleaved: the machine's drift weighs on both alike
            for state in ("ENABLE", "DISABLE"):
                with connection.cursor() as cursor:
                    cursor.execute(f"ALTER TABLE uploads_storedfile {state} TRIGGER USER")
                results.setdefault(f"update {state}", []).append(best(update, rounds=3, calls=200))
                results.setdefault(f"insert {state}", []).append(best(insert, rounds=3, calls=200))
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE uploads_storedfile ENABLE TRIGGER USER")
        for what in ("update", "insert"):
            on, off = min(results[f"{what} ENABLE"]), min(results[f"{what} DISABLE"])
            print(f"one-row {what} of a file, committed: triggers {on:.3f} ms, without {off:.3f} ms ({on / off:.2f}x)")
    finally:
        env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
