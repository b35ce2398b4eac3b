"""Writes to the search index. Called by the Celery tasks (``search/tasks.py``).

The index is derived data: the events that change it (activation, approval, rejection,
deletion) are audited by the services that cause them, so these writes are not audited
again. Both functions are idempotent: indexing replaces the file's document, removal
of an absent document is a no-op.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from fileconvert import broker, sandbox
from search.backends import SEARCHABLE_REVIEW_STATES, IndexRow, get_backend
from search.extract import Extracted, ExtractionFailed, Limits, clean_text, extract_file, filename_words
from search.models import SearchDocument
from uploads.models import FileStatus, StoredFile
from uploads.processing import ProcessingFailed, local_copy

logger = logging.getLogger(__name__)
EXTRACT_MEMORY_BYTES = 1024**3


def is_searchable(stored: StoredFile) -> bool:
    return stored.status == FileStatus.ACTIVE and stored.review_state in SEARCHABLE_REVIEW_STATES


def extraction_limits() -> Limits:
    conf = settings.FILECONVERT
    return Limits(
        max_chars=conf["SEARCH_MAX_TEXT_CHARS"],
        max_pdf_pages=conf["SEARCH_PDF_MAX_PAGES"],
        max_unzipped_bytes=conf["SEARCH_MAX_UNZIPPED_BYTES"],
        max_image_pixels=conf["MAX_IMAGE_PIXELS"],
    )


def _preload_parsers() -> None:
    """Import the parsers before forking, so a child never takes the import lock (which
    another thread of a threaded worker could hold at fork time) and starts faster."""
    import charset_normalizer  # noqa: F401
    import defusedxml.ElementTree  # noqa: F401
    import mutagen  # noqa: F401
    import pypdf  # noqa: F401
    from PIL import Image  # noqa: F401


def extract_stored(stored: StoredFile) -> tuple[Extracted, str]:
    """The file's text and fields, parsed in a forked child under a wall clock and a memory
    cap (fileconvert.sandbox); on failure an empty extraction and the error code (the
    caller still indexes the filename)."""
    limits = extraction_limits()
    kind = stored.kind or "binary"
    _preload_parsers()
    try:
        with local_copy(stored, with_digest=False) as (path, _size, _digest):

            def child(_send: Any) -> dict[str, Any]:
                try:
                    return {"extracted": extract_file(str(path), kind, limits).as_dict()}
                except ExtractionFailed as exc:
                    return {"error": {"code": exc.code, "message": exc.message[:300]}}

            # Frozen objects are skipped by the child's garbage collector, which would otherwise
            # touch (and copy-on-write) the whole parent heap; unfrozen once the child is gone.
            gc.freeze()
            try:
                result = sandbox.run_forked(
                    child, timeout=settings.FILECONVERT["SEARCH_EXTRACT_TIMEOUT_SECONDS"], memory_bytes=EXTRACT_MEMORY_BYTES
                )
            finally:
                gc.unfreeze()
    except ProcessingFailed as exc:
        return Extracted(), exc.code
    if result.timed_out:
        return Extracted(), "EXTRACTION_TIMEOUT"
    if result.error is not None or not isinstance(result.value, dict):
        error = result.error or {}
        code = "TOO_LARGE" if error.get("type") == "MemoryError" else "EXTRACTION_FAILED"
        logger.warning("search extraction failed", extra={"file_id": stored.pk, "error": error.get("type")})
        return Extracted(), code
    if "error" in result.value:
        logger.info("search extraction refused the file", extra={"file_id": stored.pk, "code": result.value["error"]["code"]})
        return Extracted(), str(result.value["error"]["code"])[:64]
    found = result.value["extracted"]
    return Extracted(
        title=found.get("title", ""),
        body=found.get("body", ""),
        fields=found.get("fields", {}),
        truncated=found.get("truncated", False),
    ), ""


def index_row_for(stored: StoredFile, extracted: Extracted, error_code: str = "") -> IndexRow:
    max_chars = settings.FILECONVERT["SEARCH_MAX_TEXT_CHARS"]
    title = clean_text(f"{filename_words(stored.name)}\n{extracted.title}")[:2000]
    return IndexRow(
        file_id=stored.pk,
        organization_id=stored.organization_id,
        title=title,
        body=clean_text(extracted.body)[:max_chars],
        fields=extracted.fields,
        content_sha256=stored.sha256,
        truncated=extracted.truncated,
        error_code=error_code,
    )


def document_index(*, file_id: str) -> str:
    """(Re)build the file's document; returns the outcome (for logs and tests)."""
    stored = StoredFile.objects.filter(pk=file_id).first()
    if stored is None:
        return "missing"
    if not is_searchable(stored):
        document_remove(file_id=file_id)
        return "not_searchable"
    extracted, error_code = extract_stored(stored)
    row = index_row_for(stored, extracted, error_code)
    with transaction.atomic():
        # Re-checked under the row lock: a rejection or deletion that committed while the
        # text was being extracted wins, and its own removal task finds nothing to undo.
        locked = StoredFile.objects.select_for_update().filter(pk=file_id).first()
        if locked is None or not is_searchable(locked):
            SearchDocument.objects.filter(file_id=file_id).delete()
            return "not_searchable"
        get_backend().write([row])
    return "indexed" if not error_code else f"indexed_name_only:{error_code}"


def document_remove(*, file_id: str) -> str:
    deleted, _ = SearchDocument.objects.filter(file_id=file_id).delete()
    return "removed" if deleted else "absent"


def documents_reconcile(*, limit: int = 500) -> dict[str, int]:
    """The sweeper behind a lost signal or a broker outage: enqueue indexing for searchable
    files with no document, drop documents whose file is no longer searchable."""
    from search import tasks

    missing = list(
        StoredFile.objects.filter(
            status=FileStatus.ACTIVE, review_state__in=SEARCHABLE_REVIEW_STATES, search_document__isnull=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for file_id in missing:
        broker.publish(tasks.index_file, file_id)
    stale = SearchDocument.objects.exclude(file__status=FileStatus.ACTIVE, file__review_state__in=SEARCHABLE_REVIEW_STATES)
    stale_ids = list(stale.values_list("pk", flat=True)[:limit])
    removed, _ = SearchDocument.objects.filter(pk__in=stale_ids).delete()
    return {"enqueued": len(missing), "removed": removed}
