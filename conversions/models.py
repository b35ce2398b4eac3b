"""Conversion jobs: one source file, one target format, one result file.

State machine (every transition is a conditional UPDATE in ``services``/``engine``)::

    queued ──claim──► running ──► succeeded
      │                 │    └──► failed   (bad input, timeout, poison after N attempts)
      └──── cancel ─────┴──────► canceled
    failed / canceled ──retry──► a new queued job (retry_of = the old one)
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from fileconvert.ids import ID_MAX_LENGTH, IdFactory
from uploads.models import StoredFile, Visibility


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class ConversionJob(models.Model):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("job"), editable=False)
    # Foreign keys are indexed in Meta.indexes (decision 0014); the organization by job_org_idx.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conversion_jobs", db_index=False)
    source = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="conversion_jobs", db_index=False)
    source_format = models.CharField(max_length=32, help_text="Detected from the bytes when the job was created.")
    target_format = models.CharField(max_length=32)
    via_format = models.CharField(max_length=32, blank=True, help_text="Intermediate format of a two-step chain.")
    options = models.JSONField(default=dict, blank=True, help_text="Validated options, defaults filled in.")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    result = models.ForeignKey(StoredFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    facts = models.JSONField(default=dict, blank=True, help_text="What the converter reported (pages, size, rows…).")
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker process running it.")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries", db_index=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    queued_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="Last time a message was published for it.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-id"], name="job_org_idx"),
            models.Index(fields=["organization", "status", "-id"], name="job_org_status_idx"),
            models.Index(fields=["status", "enqueued_at"], name="job_active_idx", condition=Q(status__in=["queued", "running"])),
            models.Index(fields=["source"], name="job_source_idx"),
            models.Index(fields=["result"], name="job_result_idx"),
            models.Index(fields=["retry_of"], name="job_retry_of_idx"),
            models.Index(fields=["created_by"], name="job_created_by_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.source_format}->{self.target_format} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
