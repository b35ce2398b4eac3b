"""Reads for the review queue. Platform admins act across tenants, so nothing here is
scoped to the caller's organization; the tenant is named in the path instead."""

from __future__ import annotations

from django.db.models import QuerySet

from fileconvert.errors import NotFound
from uploads.models import ReviewState, StoredFile

QUEUE_ORDERING = "review_expires_at"  # then pk: the partial index file_review_queue_idx


def pending_files() -> QuerySet[StoredFile]:
    """The queue, shaped once for the list (dataset name without a query per row)."""
    return StoredFile.objects.filter(review_state=ReviewState.PENDING).select_related("dataset")


def pending_count() -> int:
    """How many files wait for review: an index-only count over the partial queue index."""
    return StoredFile.objects.filter(review_state=ReviewState.PENDING).count()


def review_object(*, tenant_id: str, object_id: str) -> StoredFile:
    """A file that is or was under review, in the named tenant; anything else is 404
    (another tenant's id, a missing file, a file that never needed review)."""
    found = (
        StoredFile.objects.filter(pk=object_id, organization_id=tenant_id)
        .exclude(review_state=ReviewState.NOT_REQUIRED)
        .select_related("dataset", "organization")
        .first()
    )
    if found is None:
        raise NotFound()
    return found


def preview_sha256(file_id: str) -> str | None:
    """For ``file_token_check``: the file's current SHA-256, or None if it cannot be previewed."""
    row = (
        StoredFile.objects.filter(pk=file_id, confirmed_at__isnull=False)
        .exclude(review_state=ReviewState.NOT_REQUIRED)
        .values_list("sha256", flat=True)
        .first()
    )
    return row or None
