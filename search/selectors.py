"""Reads of the search index: one ranked, tenant-scoped page of hits.

Pagination is a keyset on (score, file id): ranked order is score descending, then
file id ascending, and the cursor carries the last hit's exact score and id, so the
next page starts strictly after it without OFFSET. Scores are recomputed per request:
PostgreSQL's ``ts_rank_cd`` depends only on the document and the query, so pages are
stable; SQLite's ``bm25`` depends on corpus statistics, so a page fetched after other
documents were indexed may shift slightly (see decision 0005).
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.identity import Identity
from fileconvert.api.pagination import decode_cursor, encode_cursor
from fileconvert.errors import NotFound, ValidationFailed
from search.backends import SEARCHABLE_REVIEW_STATES, Filters, get_backend, parse_query, render_snippet
from uploads.models import Dataset, FileStatus, StoredFile


@dataclass(frozen=True)
class Hit:
    file: StoredFile
    score: float
    snippet: str


@dataclass(frozen=True)
class HitPage:
    items: list[Hit]
    next_cursor: str | None


def _position(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    score, file_id = decode_cursor(cursor, 2)
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not isinstance(file_id, str):
        raise ValidationFailed("cursor is invalid.", fields={"cursor": ["is not a cursor from this search"]})
    return float(score), file_id


def search_files(*, actor: Identity, q: str, filters: Filters, limit: int, cursor: str | None = None) -> HitPage:
    query = parse_query(q)
    if not query.groups:
        raise ValidationFailed("q has no word to search for.", fields={"q": ["has no word to search for"]})
    if filters.dataset_id and not Dataset.objects.filter(organization=actor.org, pk=filters.dataset_id).exists():
        raise NotFound("Dataset not found.")  # another organization's dataset is a missing one
    backend = get_backend()
    ranked = backend.ranked(organization_id=actor.org.pk, query=query, filters=filters, after=_position(cursor), limit=limit + 1)
    page, more = ranked[:limit], len(ranked) > limit
    ids = [file_id for file_id, _ in page]
    # Defence in depth: a hit counts only if its file is searchable right now (an index row
    # can outlive a rejection until its removal task runs); such a page is one hit short.
    searchable = StoredFile.objects.filter(
        organization=actor.org, pk__in=ids, status=FileStatus.ACTIVE, review_state__in=SEARCHABLE_REVIEW_STATES
    )
    files = {f.pk: f for f in searchable.select_related("dataset")}
    snippets = backend.snippets(query=query, file_ids=[file_id for file_id in ids if file_id in files])
    items = [
        Hit(file=files[file_id], score=score, snippet=render_snippet(snippets.get(file_id, "")))
        for file_id, score in page
        if file_id in files
    ]
    next_cursor = encode_cursor([page[-1][1], page[-1][0]]) if more and page else None
    return HitPage(items=items, next_cursor=next_cursor)
