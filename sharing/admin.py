from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from sharing.models import ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Read-only: links are made and revoked through the API (services audit them)."""

    list_display = ["id", "file", "organization", "visibility", "expires_at", "revoked_at", "download_count", "created_at"]
    list_filter = ["visibility", "revoked_reason"]
    search_fields = ["id", "file__id", "prefix"]
    raw_id_fields = ["file", "organization", "created_by"]
    exclude = ["secret_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
