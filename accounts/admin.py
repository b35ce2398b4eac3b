from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from accounts.models import AccessToken, ApiKey, AuditEvent, FeatureFlag, Membership, Organization, OrgSetting, StorageUsage, User

admin.site.site_header = "fileconvert platform admin"
admin.site.site_title = "fileconvert admin"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "is_anonymous",
        "storage_used",
        "storage_quota_bytes",
        "files_stored",
        "created_at",
        "expires_at",
    ]
    list_filter = ["is_anonymous"]
    search_fields = ["id", "name", "gateway_ref"]
    readonly_fields = ["id", "created_at", "storage_used", "files_stored"]
    inlines = [MembershipInline]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return super().get_queryset(request).select_related("storage_usage")  # the counter row, no sum of files

    @staticmethod
    def _usage(org: Organization) -> StorageUsage | None:
        try:
            return org.storage_usage
        except StorageUsage.DoesNotExist:
            return None

    @admin.display(description="storage used (bytes)", ordering=Coalesce("storage_usage__bytes", Value(0)))
    def storage_used(self, org: Organization) -> int:
        usage = self._usage(org)
        return usage.bytes if usage else 0

    @admin.display(description="files", ordering=Coalesce("storage_usage__files", Value(0)))
    def files_stored(self, org: Organization) -> int:
        usage = self._usage(org)
        return usage.files if usage else 0


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["id", "email", "name", "is_active", "is_platform_admin", "date_joined", "last_login"]
    list_filter = ["is_active", "is_platform_admin", "is_anonymous_session"]
    search_fields = ["id", "email", "name"]
    readonly_fields = ["id", "date_joined", "last_login", "password"]
    fields = ["id", "email", "name", "is_active", "is_platform_admin", "gateway_ref", "date_joined", "last_login", "password"]
    show_full_result_count = False


class SecretlessAdmin(admin.ModelAdmin):
    """Credentials are shown by prefix only; they are issued through the API or commands."""

    exclude = ["secret_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(SecretlessAdmin):
    list_display = ["id", "name", "prefix", "organization", "user", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["id", "prefix", "name", "organization__id", "user__email"]
    readonly_fields = ["id", "prefix", "organization", "user", "scopes", "created_at", "last_used_at"]
    list_select_related = ["organization", "user"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected keys now")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(AccessToken)
class AccessTokenAdmin(SecretlessAdmin):
    list_display = ["id", "kind", "prefix", "organization", "user", "created_at", "expires_at", "revoked_at"]
    list_filter = ["kind"]
    readonly_fields = ["id", "kind", "prefix", "organization", "user", "created_at", "last_used_at"]
    list_select_related = ["organization", "user"]


@admin.register(OrgSetting)
class OrgSettingAdmin(admin.ModelAdmin):
    list_display = ["organization", "key", "value", "updated_at"]
    list_filter = ["key"]
    search_fields = ["organization__id", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ["organization", "name", "enabled", "description", "updated_at"]
    list_filter = ["enabled", "name"]
    search_fields = ["name", "organization__id", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "target_type", "target_id", "request_id", "ip"]
    list_filter = ["action"]
    search_fields = ["action", "target_id", "request_id", "actor_label", "organization__id"]
    list_select_related = ["organization"]
    show_full_result_count = False
    ordering = ["-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
