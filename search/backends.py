"""One interface over two full-text engines (docs/decisions/0005-search-backends.md).

- ``PostgresBackend`` (distributed mode): ``search_searchdocument.vector`` (a tsvector
  with the title at weight A and the body at weight B, GIN-indexed), matched with
  ``websearch_to_tsquery``, ranked with ``ts_rank_cd``, snippets from ``ts_headline``.
- ``SqliteBackend`` (embedded mode): the ``search_fts`` FTS5 table that triggers keep
  in step with ``search_searchdocument``; matched with an FTS5 expression built from
  the same query grammar, ranked with ``bm25()`` (title weighted 10:1), ``snippet()``.

Both rank at most ``SEARCH_RANK_WINDOW`` matches (those of the newest files: a
bounded cost for a word found in most documents; every match of a rarer query is ranked),
on the database, return ``(file_id, score)`` pairs in (score desc, file id
asc) order after an optional keyset position. The selector re-checks on every query that
each hit's file is active and approved (a stale index row never leaks a staged or
rejected file).
Snippets come back with private-use markers around matches; ``render_snippet`` escapes
the text and turns only the markers into ``<mark>``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.contrib.postgres.search import SearchHeadline, SearchQuery
from django.db import connection
from django.db.models import QuerySet
from django.db.models.functions import Collate, Left

from search.extract import MARK_END, MARK_START
from search.models import SearchDocument
from uploads.models import ReviewState

TEXT_CONFIG = "english"
SEARCHABLE_REVIEW_STATES = (ReviewState.APPROVED, ReviewState.NOT_REQUIRED)
SNIPPET_SOURCE_CHARS = 100_000  # ts_headline reparses its input: bound the work per hit
BULK_BATCH = 1000
# Window by sorting every match when matches**2 <= ratio * window * files (PostgresBackend._sort_window):
# a row walked costs ~0.7x a match sorted (bench/search.py), so this is where the two meet.
SORT_WALK_RATIO = 0.7
UPDATED_FIELDS = ["organization", "title", "body", "fields", "content_sha256", "truncated", "error_code", "indexed_at"]


@dataclass(frozen=True)
class Term:
    text: str
    negated: bool = False
    phrase: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """The raw text (PostgreSQL parses it itself) and the same grammar as OR-groups of terms."""

    raw: str
    groups: list[list[Term]] = field(default_factory=list)

    @property
    def positive_terms(self) -> list[str]:
        return [t.text for group in self.groups for t in group if not t.negated]


_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w", re.UNICODE)


def parse_query(raw: str) -> ParsedQuery:
    """``websearch_to_tsquery``'s grammar: words, "quoted phrases", ``-negation``, ``or``."""
    groups: list[list[Term]] = [[]]
    for match in _TOKEN.finditer(raw):
        if match.group(3) is not None:
            word = match.group(3)
            if word.lower() == "or":
                if groups[-1]:
                    groups.append([])
                continue
            negated = word.startswith("-") and len(word) > 1
            text = word[1:] if negated else word
            if _WORD.search(text):
                groups[-1].append(Term(text=text, negated=negated))
        else:
            text = match.group(2)
            if _WORD.search(text):
                groups[-1].append(Term(text=text, negated=bool(match.group(1)), phrase=True))
    return ParsedQuery(raw=raw, groups=[g for g in groups if any(not t.negated for t in g)])


@dataclass(frozen=True)
class Filters:
    dataset_id: str | None = None
    type: str | None = None  # a content type ("application/pdf") or a kind ("pdf")
    created_after: datetime | None = None
    created_before: datetime | None = None

    @property
    def active(self) -> bool:
        return any((self.dataset_id, self.type, self.created_after, self.created_before))


@dataclass(frozen=True)
class IndexRow:
    file_id: str
    organization_id: str
    title: str
    body: str
    fields: dict[str, Any]
    content_sha256: str = ""
    truncated: bool = False
    error_code: str = ""


def indexed_documents(organization_id: str, filters: Filters, *, org_as_range: bool = False) -> QuerySet[SearchDocument]:
    """The organization's documents, with the filters applied (joined to the file only when a
    filter needs it). Whether each hit's file may be found right now is checked by the caller
    on the page's rows (``search.selectors``): one indexed lookup per hit instead of a join
    over every match."""
    if org_as_range:
        # Same rows as ``organization_id = X``; but an equality makes PostgreSQL treat the
        # organization as a constant and accept *any* index on file_id for "newest first"
        # (it then walks other tenants' newer rows); a range leaves only (organization, file).
        qs = SearchDocument.objects.filter(organization_id__gte=organization_id, organization_id__lte=organization_id)
    else:
        qs = SearchDocument.objects.filter(organization_id=organization_id)
    if not filters.active:
        return qs
    qs = qs.filter(file__organization_id=organization_id)
    if filters.dataset_id:
        qs = qs.filter(file__dataset_id=filters.dataset_id)
    if filters.type:
        qs = qs.filter(file__content_type=filters.type) if "/" in filters.type else qs.filter(file__kind=filters.type)
    if filters.created_after:
        qs = qs.filter(file__created_at__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(file__created_at__lt=filters.created_before)
    return qs


def rank_window() -> int:
    """How many matches a query ranks: those of the newest files (file ids are time-ordered ULIDs),
    read backwards from the (organization, file) index (decision 0005)."""
    return int(settings.FILECONVERT["SEARCH_RANK_WINDOW"])


def render_snippet(raw: str) -> str:
    """Escape the document text; only the match markers become markup."""
    return html.escape(raw, quote=True).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


class SearchBackend(Protocol):
    vendor: str

    def write(self, rows: Iterable[IndexRow]) -> int:
        """Insert or replace the documents of these files (re-indexing replaces)."""
        ...

    def ranked(
        self, *, organization_id: str, query: ParsedQuery, filters: Filters, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[str, float]]: ...

    def snippets(self, *, query: ParsedQuery, file_ids: list[str]) -> dict[str, str]: ...


def _upsert(rows: Iterable[IndexRow]) -> list[str]:
    """Replace the rows in batches; returns the file ids written."""
    written: list[str] = []
    batch: list[SearchDocument] = []

    def flush() -> None:
        if batch:
            SearchDocument.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["file"],
                update_fields=[
                    "organization",
                    "title",
                    "body",
                    "fields",
                    "content_sha256",
                    "truncated",
                    "error_code",
                    "indexed_at",
                ],
            )
            written.extend(doc.file_id for doc in batch)
            batch.clear()

    from django.utils import timezone

    now = timezone.now()
    for row in rows:
        batch.append(
            SearchDocument(
                file_id=row.file_id,
                organization_id=row.organization_id,
                title=row.title,
                body=row.body,
                fields=row.fields,
                content_sha256=row.content_sha256,
                truncated=row.truncated,
                error_code=row.error_code,
                indexed_at=now,
            )
        )
        if len(batch) >= BULK_BATCH:
            flush()
    flush()
    return written


class PostgresBackend:
    vendor = "postgresql"

    def write(self, rows: Iterable[IndexRow]) -> int:
        return len(_upsert(rows))  # the vector is computed by a trigger (migration 0003)

    def _tsquery(self, query: ParsedQuery) -> SearchQuery:
        return SearchQuery(query.raw, search_type="websearch", config=TEXT_CONFIG)

    def _sort_window(self, matches: QuerySet[SearchDocument], organization_id: str) -> bool:
        """Whether to find the window by sorting every match (True) or by walking the organization's
        files newest first until the window is full (False), from the planner's own row estimates.

        Walking tests about ``window * files / matches`` rows (a heap row and its vector each);
        sorting fetches every match's row from the GIN bitmap and keeps the newest ``window``. The
        planner costs the two close together and walks for a word in a few percent of documents,
        which really takes ~3x longer (decision 0005), so the choice is made here: sort when
        ``matches**2 <= SORT_WALK_RATIO * window * files``. One EXPLAIN (planning only, ~1 ms).
        """
        org_sql, org_params = (
            indexed_documents(organization_id, Filters(), org_as_range=True).values("id").query.sql_with_params()
        )
        match_sql, match_params = matches.values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) ({match_sql}) UNION ALL ({org_sql})", [*match_params, *org_params])
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimated_matches, files = (child["Plan Rows"] for child in plan[0]["Plan"]["Plans"])
        return estimated_matches**2 <= SORT_WALK_RATIO * rank_window() * files

    def ranked(
        self, *, organization_id: str, query: ParsedQuery, filters: Filters, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[str, float]]:
        tsquery = self._tsquery(query)
        matches = indexed_documents(organization_id, filters, org_as_range=True).filter(vector=tsquery)
        # The window is the newest files' matches (file_id descending, at most SEARCH_RANK_WINDOW);
        # only its rows are scored, in the outer query, whichever way the window is found.
        if self._sort_window(matches, organization_id):
            # Every match from the GIN bitmap, sorted on the file id alone (one organization);
            # COLLATE "C" keeps any index on file_id out of it (ULIDs sort alike under every collation).
            newest_first = [Collate("file_id", "C").desc()]
        else:
            # Walk (organization, file) backwards (the organization is a one-value range: see
            # indexed_documents), testing rows until the window is full: few rows for a common word.
            # (The planner may still prefer the bitmap and a sort, for a rare word.)
            newest_first = ["-organization_id", "-file_id"]
        window = matches.order_by(*newest_first).values("file_id", "vector")[: rank_window()]
        window_sql, window_params = window.query.sql_with_params()
        keyset, keyset_params = "", []
        if after is not None:
            keyset = "WHERE score < %s OR (score = %s AND file_id > %s)"
            keyset_params = [after[0], after[0], after[1]]
        # float8: ts_rank_cd's float4 would come back as rounded text and break the keyset.
        sql = f"""
            SELECT file_id, score FROM (
                SELECT file_id, ts_rank_cd(vector, websearch_to_tsquery(%s::regconfig, %s), 1)::float8 AS score
                FROM ({window_sql}) AS window_
            ) AS scored {keyset}
            ORDER BY score DESC, file_id ASC LIMIT %s
        """  # noqa: S608 - every value is a parameter; the fragments are ours
        with connection.cursor() as cursor:
            cursor.execute(sql, [TEXT_CONFIG, query.raw, *window_params, *keyset_params, limit])
            return [(file_id, float(score)) for file_id, score in cursor.fetchall()]

    def snippets(self, *, query: ParsedQuery, file_ids: list[str]) -> dict[str, str]:
        tsquery = self._tsquery(query)
        options = {"start_sel": MARK_START, "stop_sel": MARK_END, "config": TEXT_CONFIG}
        rows = (
            SearchDocument.objects.filter(file_id__in=file_ids)
            .annotate(
                body_snippet=SearchHeadline(
                    Left("body", SNIPPET_SOURCE_CHARS),
                    tsquery,
                    max_words=30,
                    min_words=12,
                    max_fragments=2,
                    fragment_delimiter=" … ",
                    **options,
                ),
                title_snippet=SearchHeadline("title", tsquery, highlight_all=True, **options),
            )
            .values_list("file_id", "body_snippet", "title_snippet")
        )
        return {fid: body if MARK_START in (body or "") or not title else title for fid, body, title in rows}


def fts5_expression(query: ParsedQuery) -> str:
    """The parsed query as an FTS5 expression; every term is a quoted string, so no user
    input is ever read as FTS5 syntax."""

    def quoted(term: Term) -> str:
        return '"' + term.text.replace('"', '""') + '"'

    groups = []
    for group in query.groups:
        positive = " AND ".join(quoted(t) for t in group if not t.negated)
        negative = " OR ".join(quoted(t) for t in group if t.negated)
        groups.append(f"({positive}) NOT ({negative})" if negative else f"({positive})")
    return " OR ".join(groups)


class SqliteBackend:
    vendor = "sqlite"
    # bm25 column weights: title, body
    RANK = "bm25(search_fts, 10.0, 1.0)"

    def write(self, rows: Iterable[IndexRow]) -> int:
        return len(_upsert(rows))  # the FTS5 table follows through the triggers

    def ranked(
        self, *, organization_id: str, query: ParsedQuery, filters: Filters, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[str, float]]:
        expression = fts5_expression(query)
        if not expression:
            return []
        allowed, allowed_params = "", []
        if filters.active:
            filtered_sql, allowed_params = indexed_documents(organization_id, filters).values("id").query.sql_with_params()
            allowed = f"AND d.id IN ({filtered_sql})"
        keyset, keyset_params = "", []
        if after is not None:
            keyset = "WHERE score < %s OR (score = %s AND file_id > %s)"
            keyset_params = [after[0], after[0], after[1]]
        sql = f"""
            SELECT file_id, score FROM (
                SELECT d.file_id AS file_id, -{self.RANK} AS score
                FROM search_fts JOIN search_searchdocument d ON d.id = search_fts.rowid
                WHERE search_fts MATCH %s AND d.organization_id = %s {allowed}
                ORDER BY d.file_id DESC LIMIT %s
            ) {keyset}
            ORDER BY score DESC, file_id ASC LIMIT %s
        """  # noqa: S608 - every value is a parameter; the fragments are ours
        with connection.cursor() as cursor:
            cursor.execute(sql, [expression, organization_id, *allowed_params, rank_window(), *keyset_params, limit])
            return [(file_id, float(score)) for file_id, score in cursor.fetchall()]

    def snippets(self, *, query: ParsedQuery, file_ids: list[str]) -> dict[str, str]:
        expression = fts5_expression(query)
        if not expression or not file_ids:
            return {}
        marks = ", ".join(["%s"] * len(file_ids))
        sql = f"""
            SELECT d.file_id, snippet(search_fts, -1, %s, %s, '…', 24)
            FROM search_fts JOIN search_searchdocument d ON d.id = search_fts.rowid
            WHERE search_fts MATCH %s AND d.file_id IN ({marks})
        """  # noqa: S608 - placeholders only
        with connection.cursor() as cursor:
            cursor.execute(sql, [MARK_START, MARK_END, expression, *file_ids])
            return dict(cursor.fetchall())


def get_backend() -> SearchBackend:
    """The backend of the database in use: one choice, made from the connection."""
    if connection.vendor == "postgresql":
        return PostgresBackend()
    if connection.vendor == "sqlite":
        return SqliteBackend()
    raise RuntimeError(f"no search backend for {connection.vendor}")
