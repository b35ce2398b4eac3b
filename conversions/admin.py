from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.identity import system_identity
from conversions import services
from conversions.models import ConversionJob, JobStatus
from fileconvert.errors import AppError


@admin.register(ConversionJob)
class ConversionJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "source_format",
        "target_format",
        "status",
        "progress",
        "attempts",
        "created_at",
        "duration",
    ]
    list_filter = ["status", "target_format", "source_format", "organization"]
    search_fields = ["id", "source__id", "source__name", "error_code"]
    list_select_related = ["organization"]
    raw_id_fields = ["source", "result", "retry_of", "created_by"]
    readonly_fields = [
        "id",
        "organization",
        "source",
        "source_format",
        "target_format",
        "via_format",
        "options",
        "visibility",
        "status",
        "progress",
        "error_code",
        "error_message",
        "result",
        "facts",
        "attempts",
        "claimed_by",
        "retry_of",
        "created_by",
        "created_at",
        "queued_at",
        "enqueued_at",
        "started_at",
        "finished_at",
        "duration",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["id", "organization", "source", "source_format", "target_format", "via_format", "options", "visibility"]},
        ),
        ("State", {"fields": ["status", "progress", "attempts", "claimed_by", "result", "facts", "retry_of", "created_by"]}),
        ("Error", {"fields": ["error_code", "error_message"]}),
        ("Timings", {"fields": ["created_at", "queued_at", "enqueued_at", "started_at", "finished_at", "duration"]}),
    ]
    actions = ["retry_jobs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Duration (s)")
    def duration(self, obj: ConversionJob) -> str:
        seconds = obj.duration_seconds
        return f"{seconds:.2f}" if seconds is not None else "-"

    @admin.action(description="Retry the selected failed or canceled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[ConversionJob]) -> None:
        retried = skipped = 0
        for job in queryset.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELED]).select_related("organization"):
            try:
                services.job_retry(actor=system_identity(job.organization), job=job)
                retried += 1
            except AppError:
                skipped += 1
        skipped += queryset.exclude(status__in=[JobStatus.FAILED, JobStatus.CANCELED]).count()
        self.message_user(
            request, f"{retried} job(s) retried, {skipped} skipped.", messages.SUCCESS if retried else messages.WARNING
        )
