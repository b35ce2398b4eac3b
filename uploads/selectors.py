from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from accounts.identity import Identity
from accounts.models import Organization
from fileconvert.errors import NotFound
from uploads.models import StoredFile, Task, TaskStatus, Upload


def files_of(org: Organization) -> QuerySet[StoredFile]:
    return StoredFile.objects.filter(organization=org)


def get_file_for(identity: Identity, file_id: str, *, org_id: str | None = None) -> StoredFile:
    """The caller's file, or 404 exactly as if it did not exist (other tenants included)."""
    if org_id is not None and org_id != identity.org.pk:
        raise NotFound()
    found = files_of(identity.org).filter(pk=file_id).select_related("dataset", "upload").first()
    if found is None:
        raise NotFound()
    return found


def get_upload_for(identity: Identity, upload_id: str) -> Upload:
    found = Upload.objects.filter(organization=identity.org, pk=upload_id).select_related("dataset").first()
    if found is None:
        raise NotFound()
    return found


def get_task_for(identity: Identity, task_id: str) -> Task:
    found = Task.objects.filter(organization=identity.org, pk=task_id).select_related("file", "upload").first()
    if found is None:
        raise NotFound()
    return found


def upload_status(counts: dict[str, int]) -> str:
    """Seed 002's aggregate: PROCESSING while any task is; then REVIEWING while any
    waits for review; then COMPLETED (nothing failed), FAILED (nothing succeeded) or PARTIAL."""
    if counts.get(TaskStatus.PROCESSING, 0):
        return "PROCESSING"
    if counts.get(TaskStatus.REVIEWING, 0):
        return "REVIEWING"
    completed = counts.get(TaskStatus.COMPLETED, 0)
    failed = counts.get(TaskStatus.FAILED, 0)
    if failed and completed:
        return "PARTIAL"
    if failed:
        return "FAILED"
    return "COMPLETED"


def task_counts(upload: Upload) -> dict[str, int]:
    rows = Task.objects.filter(upload=upload).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def with_task_counts(uploads: QuerySet[Upload]) -> QuerySet[Upload]:
    return uploads.annotate(
        **{f"n_{status.lower()}": Count("tasks", filter=Q(tasks__status=status)) for status in TaskStatus.values}
    )


def counts_from_annotations(upload: Upload) -> dict[str, int]:
    return {status: getattr(upload, f"n_{status.lower()}", 0) for status in TaskStatus.values}
