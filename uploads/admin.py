from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from fileconvert import storage
from uploads.models import Dataset, StoredFile, Task, Upload


class TaskInline(admin.TabularInline):
    model = Task
    extra = 0
    fields = ["id", "file", "kind", "status", "error_code", "updated_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "organization", "dataset", "source", "created_by", "created_at"]
    list_filter = ["source"]
    search_fields = ["id", "name", "organization__id", "organization__name"]
    list_select_related = ["organization", "dataset", "created_by"]
    readonly_fields = ["id", "organization", "dataset", "source", "created_by", "created_at"]
    inlines = [TaskInline]
    show_full_result_count = False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "organization", "created_at"]
    search_fields = ["id", "name", "organization__id"]
    list_select_related = ["organization"]


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    list_display = ["thumb", "name", "organization", "kind", "size", "status", "review_state", "visibility", "created_at"]
    list_display_links = ["name"]
    list_filter = ["status", "review_state", "kind", "visibility"]
    search_fields = ["=id", "name", "=sha256", "organization__id", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = [
        "thumb_large",
        "id",
        "organization",
        "upload",
        "dataset",
        "parent",
        "uploaded_by",
        "storage_key",
        "size",
        "sha256",
        "content_type",
        "claimed_content_type",
        "kind",
        "metadata",
        "thumbnail_key",
        "error_code",
        "error_message",
        "process_attempts",
        "created_at",
        "confirmed_at",
        "expires_at",
    ]
    fields = ["thumb_large", "name", "visibility", "status", "review_state", *readonly_fields[1:]]
    # Review decisions go through review.services (audit, task, signals), never this form.
    readonly_fields = [*readonly_fields, "status", "review_state"]
    show_full_result_count = False

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.thumbnail_view)
        return [path("<str:file_id>/thumbnail.png", view, name="uploads_storedfile_thumbnail"), *super().get_urls()]

    def thumbnail_view(self, request: HttpRequest, file_id: str) -> HttpResponse:
        stored = get_object_or_404(StoredFile, pk=file_id)
        if not stored.thumbnail_key:
            return HttpResponse(status=404)
        response = StreamingHttpResponse(storage.iter_chunks(stored.thumbnail_key), content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def _img(self, obj: StoredFile, size: int) -> str:
        if not obj.thumbnail_key:
            return "—"
        url = reverse("admin:uploads_storedfile_thumbnail", args=[obj.pk])
        return format_html('<img src="{}" alt="" style="max-width:{}px;max-height:{}px" loading="lazy">', url, size, size)

    @admin.display(description="")
    def thumb(self, obj: StoredFile) -> str:
        return self._img(obj, 48)

    @admin.display(description="Preview")
    def thumb_large(self, obj: StoredFile) -> str:
        return self._img(obj, 256)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "upload", "file", "organization", "kind", "status", "error_code", "updated_at"]
    list_filter = ["status", "kind"]
    search_fields = ["=id", "=upload__id", "file__name", "organization__id"]
    list_select_related = ["upload", "file", "organization"]
    readonly_fields = [
        "id",
        "organization",
        "upload",
        "file",
        "kind",
        "status",
        "error_code",
        "error_message",
        "created_at",
        "updated_at",
    ]
    show_full_result_count = False
