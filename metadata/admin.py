from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from metadata.models import MetadataEdit


@admin.register(MetadataEdit)
class MetadataEditAdmin(admin.ModelAdmin):
    """Read-only history: edits are made through the API (the service audits them)."""

    list_display = ["id", "file", "version", "as_copy", "organization", "actor", "size", "created_at"]
    list_filter = ["as_copy"]
    search_fields = ["id", "file__id", "source__id", "sha256", "previous_sha256"]
    raw_id_fields = ["file", "source", "organization", "actor"]
    list_select_related = ["file", "organization", "actor"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
