"""Search benchmark: index N generated documents on PostgreSQL, then time ``GET /api/search``.

Standalone (not pytest). Creates its own PostgreSQL database (``--bench-db``, default
``fileconvert_bench_search``) next to the one in ``DATABASE_URL`` and never touches the
latter (the database plumbing is ``bench/list_depth.py``'s):

    .venv/bin/python bench/search.py                 # 100,000 documents
    .venv/bin/python bench/search.py --docs 20000    # quicker

1. setup: drop + create the bench database, migrate, an organization with an owner and an
   API key (``accounts.services``), a second organization (its documents share every word);
2. load: ``--docs`` active files (``StoredFile`` rows) and their documents through the
   search backend's bulk path (``PostgresBackend.write``: upsert + tsvector update), with
   text drawn from a Zipf-distributed synthetic vocabulary; documents/s;
3. extraction: a sample of real files (text, PDF, DOCX) through the real indexing service
   (``document_index``: storage read, sandboxed extraction, write) against the same
   extraction in-process; documents/s of both;
4. queries through the whole Django stack (in-process ``django.test.Client``, ``X-API-Key``)
   for terms at several document frequencies (common to rare) and a two-word query:
   p50/p95/min ms each (targets p50 <= 50 ms, p95 <= 150 ms), matches per term, and
   ``EXPLAIN ANALYZE`` of the ranked query for the most common term.

Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from list_depth import bench_url, build_schema, drop_database, ms, p95, recreate_database, section

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
VOCABULARY = 30_000
ZIPF_S = 1.05
WORDS_PER_DOC = 120
TARGET_P50_MS, TARGET_P95_MS = 50.0, 150.0


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 4)
        words.add(
            "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(string.ascii_lowercase)
        )
    return sorted(words, key=lambda w: (len(w), w))


def document_texts(rng: random.Random, vocabulary: list[str], count: int) -> list[tuple[str, str]]:
    weights = [1.0 / (rank + 1) ** ZIPF_S for rank in range(len(vocabulary))]
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    docs = []
    for i in range(count):
        words = rng.choices(vocabulary, cum_weights=cumulative, k=WORDS_PER_DOC)
        docs.append((f"doc-{i:06d}-{words[0]}.txt", " ".join(words)))
    return docs


def load(org: Any, owner: Any, docs: list[tuple[str, str]]) -> dict[str, float]:
    from django.db import connection

    from search.backends import IndexRow, get_backend
    from uploads.models import FileStatus, ReviewState, StoredFile

    backend = get_backend()
    assert backend.vendor == "postgresql", backend.vendor
    figures: dict[str, float] = {}
    started = time.perf_counter()
    files = []
    for name, _text in docs:
        stored = StoredFile(
            organization=org,
            uploaded_by=owner,
            name=name,
            size=1000,
            content_type="text/plain",
            kind="text",
            status=FileStatus.ACTIVE,
            review_state=ReviewState.NOT_REQUIRED,
        )
        stored.storage_key = f"{org.pk}/{stored.pk}/{name}"
        files.append(stored)
    StoredFile.objects.bulk_create(files, batch_size=2000)
    figures["files_s"] = time.perf_counter() - started

    started = time.perf_counter()
    written = backend.write(
        IndexRow(file_id=f.pk, organization_id=org.pk, title=name, body=text, fields={})
        for f, (name, text) in zip(files, docs, strict=True)
    )
    figures["index_s"] = time.perf_counter() - started
    figures["written"] = written
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) search_searchdocument")
        cur.execute("VACUUM (ANALYZE) uploads_storedfile")
        cur.execute("SELECT pg_total_relation_size('search_searchdocument'), pg_relation_size('searchdoc_vector_gin')")
        total, gin = cur.fetchone()
    figures["vacuum_s"] = time.perf_counter() - started
    figures["table_mb"], figures["gin_mb"] = total / 1024 / 1024, gin / 1024 / 1024
    return figures


def sample_files() -> list[tuple[str, bytes]]:
    import docx
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    def pdf(text: str) -> bytes:
        writer = PdfWriter()
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        for line in range(5):
            page = writer.add_blank_page(width=612, height=792)
            page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
            stream = DecodedStreamObject()
            stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text} {line}) Tj ET".encode())
            page.replace_contents(stream)
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    def word_doc(text: str) -> bytes:
        document = docx.Document()
        for _ in range(20):
            document.add_paragraph(text)
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()

    text = "The quick brown fox jumps over the lazy dog near the riverbank at dawn"
    return [("sample.txt", (text + "\n").encode() * 200), ("sample.pdf", pdf(text)), ("sample.docx", word_doc(text))]


def measure_extraction(org: Any, owner: Any, rounds: int) -> dict[str, tuple[float, float]]:
    """Per family: (documents/s through document_index, documents/s of extract_file in-process)."""
    from django.utils import timezone

    from fileconvert import storage
    from search.extract import extract_file
    from search.services import document_index, extraction_limits
    from uploads.models import FileStatus, ReviewState, StoredFile
    from uploads.sniff import sniff

    results: dict[str, tuple[float, float]] = {}
    limits = extraction_limits()
    for name, body in sample_files():
        kind = sniff(io.BytesIO(body), name).kind
        stored_ids = []
        for i in range(rounds):
            stored = StoredFile(
                organization=org, uploaded_by=owner, name=f"real-{i}-{name}", size=len(body), content_type="", kind=kind,
                status=FileStatus.ACTIVE, review_state=ReviewState.NOT_REQUIRED, confirmed_at=timezone.now(),
            )  # fmt: skip
            stored.storage_key = f"{org.pk}/{stored.pk}/{name}"
            storage.save_bytes(stored.storage_key, body)
            stored.save()
            stored_ids.append(stored.pk)
        started = time.perf_counter()
        for file_id in stored_ids:
            outcome = document_index(file_id=file_id)
            assert outcome == "indexed", outcome
        through_service = rounds / (time.perf_counter() - started)
        with tempfile.NamedTemporaryFile(suffix=name) as tmp:
            tmp.write(body)
            tmp.flush()
            started = time.perf_counter()
            for _ in range(rounds):
                extract_file(tmp.name, kind, limits)
            in_process = rounds / (time.perf_counter() - started)
        results[f"{name} ({kind}, {len(body) // 1024} KiB)"] = (through_service, in_process)
    return results


def pick_terms(docs: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Terms at about 90%, 30%, 5%, 0.5%, 0.05% of documents and the rarest seen (document counts)."""
    frequency: dict[str, int] = {}
    for _name, text in docs:
        for word in set(text.split()):
            frequency[word] = frequency.get(word, 0) + 1
    ordered = sorted(frequency.items(), key=lambda kv: -kv[1])
    total = len(docs)
    picks: list[tuple[str, int]] = []
    for share in (0.9, 0.3, 0.05, 0.005, 0.0005):
        want = share * total
        word, count = min(ordered, key=lambda kv: abs(kv[1] - want))
        picks.append((word, count))
    picks.append(ordered[-1])
    return picks


def time_queries(
    client: Any, cases: list[tuple[str, int, str]], *, requests: int, warmup: int
) -> dict[tuple[str, int, str], dict]:
    """p50/p95/min ms of each (query, rank window, how the window is found), requests interleaved
    round-robin. ``planner``: the planner's own choice of walk or sort (before decision 0005
    made it explicit), for a before/after under the same load; ``auto``: the backend's choice."""
    from django.conf import settings

    from search.backends import PostgresBackend

    chosen = PostgresBackend._sort_window

    def run(q: str, window: int, how: str) -> Any:
        settings.FILECONVERT["SEARCH_RANK_WINDOW"] = window
        PostgresBackend._sort_window = chosen if how == "auto" else (lambda self, matches, organization_id: False)
        try:
            response = client.get("/api/search", {"q": q})
        finally:
            PostgresBackend._sort_window = chosen
        assert response.status_code == 200, response.content[:300]
        return response

    for case in cases:
        for _ in range(warmup):
            run(*case)
    samples: dict[tuple[str, int, str], list[float]] = {case: [] for case in cases}
    hits: dict[tuple[str, int, str], int] = {}
    for round_no in range(requests):
        shift = round_no % len(cases)
        for case in cases[shift:] + cases[:shift]:
            started = time.perf_counter()
            response = run(*case)
            samples[case].append(ms(time.perf_counter() - started))
            hits[case] = len(response.json()["data"]["items"])
    return {case: {"p50": statistics.median(s), "p95": p95(s), "min": min(s), "hits": hits[case]} for case, s in samples.items()}


def explain(org: Any, term: str) -> str:
    """EXPLAIN ANALYZE of the ranked query the backend really runs (captured, not rebuilt)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from search.backends import Filters, get_backend, parse_query

    with CaptureQueriesContext(connection) as captured:
        get_backend().ranked(organization_id=org.pk, query=parse_query(term), filters=Filters(), after=None, limit=21)
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join("    " + row[0] for row in cur.fetchall())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="documents of the measured organization (default 100,000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per query (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per query first (default 3)")
    parser.add_argument("--extract-rounds", type=int, default=10, help="real files per family through extraction (default 10)")
    parser.add_argument("--bench-db", default="fileconvert_bench_search", help="database created, used and dropped")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--seed", type=int, default=4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    url = bench_url(source_url, args.bench_db)
    data_dir = tempfile.mkdtemp(prefix="fileconvert-bench-search-")
    run_started = time.perf_counter()

    section("setup")
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    recreate_database(source_url, args.bench_db)
    print(f"  bench database: {args.bench_db} (recreated; DATABASE_URL's database untouched)")
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
            "FILECONVERT_DATA_DIR": data_dir,
            "THROTTLE_IDENTITY": "1000000/min",
            "LOG_LEVEL": "WARNING",
            "DEBUG": "0",
        }
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "S3_BUCKET"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    summary: list[str] = []
    try:
        import django

        django.setup()
        from django.test import Client

        from accounts import services

        schema = build_schema()
        org = services.organization_create(actor=None, name="Bench Org")
        other = services.organization_create(actor=None, name="Other Org")
        owner = services.user_create(actor=None, org=org, email="owner@bench.example", role="owner").user
        other_owner = services.user_create(actor=None, org=other, email="other@bench.example", role="owner").user
        _key, raw_key = services.api_key_issue_for(org=org, user=owner, name="bench key")
        print(f"  schema from {schema}; org {org.pk}")

        section(f"real extraction, {args.extract_rounds} files per family: document_index vs in-process (worker-sized heap)")
        for label, (service_rate, local_rate) in measure_extraction(org, owner, args.extract_rounds).items():
            ratio = local_rate / service_rate
            print(f"  {label:<32} document_index {service_rate:6.1f}/s   in-process {local_rate:7.1f}/s   ratio {ratio:5.1f}x")
            summary.append(f"real indexing {label}: {service_rate:.1f} documents/s (in-process extraction {local_rate:.0f}/s)")

        section(f"load {args.docs:,} documents (+{args.docs // 10:,} for another org) through the backend's bulk path")
        rng = random.Random(args.seed)
        started = time.perf_counter()
        vocabulary = make_vocabulary(rng, VOCABULARY)
        docs = document_texts(rng, vocabulary, args.docs)
        other_docs = document_texts(rng, vocabulary, args.docs // 10)
        shape = f"{WORDS_PER_DOC} words/doc, Zipf s={ZIPF_S}, {VOCABULARY:,} words"
        print(f"  generated text: {time.perf_counter() - started:.1f}s ({shape})")
        figures = load(org, owner, docs)
        load(other, other_owner, other_docs)
        rate = args.docs / figures["index_s"]
        print(f"  StoredFile rows: {figures['files_s']:.1f}s")
        print(f"  index (upsert, tsvector by trigger, batches of 1000): {figures['index_s']:.1f}s -> {rate:,.0f} documents/s")
        sizes = f"documents table {figures['table_mb']:.0f} MB, GIN {figures['gin_mb']:.0f} MB"
        print(f"  VACUUM (ANALYZE): {figures['vacuum_s']:.1f}s; {sizes}")
        summary.append(f"bulk indexing: {rate:,.0f} documents/s ({args.docs:,} in {figures['index_s']:.1f}s)")

        section(f"GET /api/search ({args.requests} timed each, interleaved; {args.warmup} warm-up)")
        from django.conf import settings

        window = settings.FILECONVERT["SEARCH_RANK_WINDOW"]
        unbounded = 10**9
        terms = pick_terms(docs)
        common, rare = terms[0][0], terms[-1][0]
        words = docs[7][1].split()
        queries = [t for t, _ in terms] + [f"{terms[1][0]} {terms[2][0]}", f'"{words[3]} {words[4]}"']
        counts = dict(terms)
        client = Client(HTTP_X_API_KEY=raw_key)
        cases = [(q, window, "auto") for q in queries] + [(q, window, "planner") for q, _ in terms[:4]]
        cases += [(q, unbounded, "auto") for q, _ in terms[:3]]
        results = time_queries(client, cases, requests=args.requests, warmup=args.warmup)
        settings.FILECONVERT["SEARCH_RANK_WINDOW"] = window
        print(f"  {'query':<28} {'window':>8} {'found by':>8} {'matching docs':>15} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8}")
        for (q, w, how), r in results.items():
            matches = counts.get(q)
            label = f"{matches:,} ({100 * matches / args.docs:.2f}%)" if matches is not None else "-"
            shown = "all" if w == unbounded else f"{w:,}"
            print(f"  {q[:28]:<28} {shown:>8} {how:>8} {label:>15} {r['p50']:8.1f} {r['p95']:8.1f} {r['min']:8.1f}")
        for q, _ in terms[:3]:
            ratio = results[(q, unbounded, "auto")]["p50"] / results[(q, window, "auto")]["p50"]
            print(f"  {q!r}: ranking every match / ranking the window (p50): {ratio:.1f}x")
        for name, q in (("common", common), ("mid (~5%)", terms[2][0]), ("rare", rare)):
            r = results[(q, window, "auto")]
            ok = "meets" if r["p50"] <= TARGET_P50_MS and r["p95"] <= TARGET_P95_MS else "MISSES"
            summary.append(f"{name} term {q!r} ({counts[q]:,} docs): p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms -> {ok} target")
        r = results[(terms[2][0], window, "planner")]
        summary.append(f"mid term, window found by the planner alone (before): p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms")
        r = results[(common, unbounded, "auto")]
        summary.append(f"common term ranking every match (baseline): p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms")
        for label, term in (("most common term", common), ("term in ~5% of documents", terms[2][0])):
            print(f"\n  EXPLAIN ANALYZE of the ranked query, {label} {term!r}:")
            print(explain(org, term))

        section("summary")
        for line in summary:
            print(f"  {line}")
        runtime = time.perf_counter() - run_started
        print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; runtime {runtime:.0f}s")
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"  kept {url}")
        else:
            drop_database(source_url, args.bench_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
