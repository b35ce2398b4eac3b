"""The Django admin as the review console: "Review queue" (a proxy of StoredFile).

Opens on pending files, oldest deadline first (the partial index ``file_review_queue_idx``),
overdue ones highlighted. Every decision, one by one or in bulk, goes through
``review.services``. The admin site is platform admins only (``User.is_staff`` is
``is_platform_admin``), so this console is too.
"""

from __future__ import annotations

import json
import re
from contextlib import closing
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from fileconvert import storage
from fileconvert.errors import AppError
from review import services
from review.models import ReviewQueueItem
from uploads.models import ReviewState

TEXT_EXCERPT_BYTES = 4096
COUNT_CAP = 10_000  # the changelist counts at most this many rows (see QueueCountPaginator)
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-ndjson")


class QueueCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows (``SELECT COUNT(*) FROM (… LIMIT n)``), so a huge
    queue never costs a full count; the queue is worked from the top anyway."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self.object_list.order_by()[:COUNT_CAP].count()  # type: ignore[union-attr]


class ReviewStateFilter(admin.SimpleListFilter):
    """Defaults to pending: the queue opens on what needs deciding."""

    title = "review state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "Pending"), ("approved", "Approved"), ("rejected", "Rejected"), ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        current = self.value() or "pending"
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value() or "pending"
        if value == "all":
            return queryset
        return queryset.filter(review_state=value)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue"), ("no", "Within deadline")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(review_expires_at__lt=now)
        if self.value() == "no":
            return queryset.filter(review_expires_at__gte=now)
        return queryset


TYPE_FAMILIES: dict[str, tuple[str, Q]] = {
    "image": ("Image", Q(content_type__startswith="image/")),
    "pdf": ("PDF", Q(content_type="application/pdf")),
    "text": (
        "Text and data",
        Q(content_type__startswith="text/") | Q(content_type__in=["application/json", "application/xml"]),
    ),
    "audio": ("Audio", Q(content_type__startswith="audio/")),
    "video": ("Video", Q(content_type__startswith="video/")),
    "office": (
        "Office documents",
        Q(content_type__startswith="application/vnd.openxmlformats")
        | Q(content_type__startswith="application/vnd.ms-")
        | Q(content_type="application/msword"),
    ),
}


class TypeFilter(admin.SimpleListFilter):
    """Families of the detected type: fixed choices, so no DISTINCT over the whole table."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _q) in TYPE_FAMILIES.items()] + [("other", "Other")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in TYPE_FAMILIES:
            return queryset.filter(TYPE_FAMILIES[value][1])
        if value == "other":
            known = Q()
            for _label, q in TYPE_FAMILIES.values():
                known |= q
            return queryset.exclude(known)
        return queryset


def _is_overdue(obj: ReviewQueueItem) -> bool:
    return bool(obj.review_state == ReviewState.PENDING and obj.review_expires_at and obj.review_expires_at < timezone.now())


def _escalated(obj: ReviewQueueItem) -> bool:
    try:
        return obj.review_escalation is not None  # type: ignore[attr-defined]
    except ReviewQueueItem.review_escalation.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
        return False


SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# The object page's summary: every field read-only (decisions go through review.services).
SUMMARY_FIELDS = [
    "id",
    "tenant",
    "dataset_name",
    "name",
    "content_type",
    "kind",
    "size_display",
    "sha256",
    "uploaded",
    "deadline",
    "review_state",
    "status",
    "reviewed_at",
    "reviewed_by",
    "review_reason",
]


@admin.register(ReviewQueueItem)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ["thumb", "tenant", "dataset_name", "filename", "type", "size_display", "uploaded", "deadline"]
    list_display_links = ["filename"]
    list_filter = [ReviewStateFilter, OverdueFilter, TypeFilter, "organization"]
    search_fields = ["name"]
    search_help_text = "File name (contains) or exact SHA-256 checksum."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        # A checksum is matched exactly on the stored lower-case hex (file_sha256_idx), not
        # through the admin's case-insensitive "=" lookup, which no index can serve.
        term = search_term.strip().lower()
        if SHA256_HEX.fullmatch(term):
            return queryset.filter(sha256=term), False
        return super().get_search_results(request, queryset, search_term)

    list_select_related = ["organization", "dataset", "review_escalation"]
    ordering = ["review_expires_at", "id"]
    sortable_by: list[str] = []
    list_per_page = 50
    list_max_show_all = 200
    show_full_result_count = False
    paginator = QueueCountPaginator
    actions = ["approve_selected", "reject_selected"]
    change_form_template = "admin/review/reviewqueueitem/change_form.html"
    fieldsets = [
        ("Preview", {"fields": ["preview"]}),
        ("Summary", {"fields": SUMMARY_FIELDS}),
        ("Metadata", {"fields": ["metadata_summary"]}),
    ]
    readonly_fields = ["preview", *SUMMARY_FIELDS, "metadata_summary"]

    # --- permissions: a console to read and decide, never to edit or delete rows --------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).exclude(review_state=ReviewState.NOT_REQUIRED)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._review_actor = services.admin_site_actor(request.user)
        return obj

    # --- columns ------------------------------------------------------------------------

    def _thumb_url(self, obj: ReviewQueueItem) -> str:
        # One reverse() per page, not per row: the URL differs only by the id.
        template = reverse("admin:uploads_storedfile_thumbnail", args=["__id__"])
        return template.replace("__id__", obj.pk)

    def action_checkbox(self, obj: ReviewQueueItem) -> str:
        # The markup of ModelAdmin.action_checkbox without a widget template render per row
        # (a third of the page's time at 50 rows); the header is the admin's own.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="Select {}">',
            admin.helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            obj.name,
        )

    @admin.display(description="")
    def thumb(self, obj: ReviewQueueItem) -> str:
        if not obj.thumbnail_key:
            return "—"
        return format_html('<img src="{}" alt="" style="max-width:48px;max-height:48px" loading="lazy">', self._thumb_url(obj))

    @admin.display(description="tenant", ordering="organization__name")
    def tenant(self, obj: ReviewQueueItem) -> str:
        return format_html("{}<br><small>{}</small>", obj.organization.name, obj.organization_id)

    @admin.display(description="dataset")
    def dataset_name(self, obj: ReviewQueueItem) -> str:
        return obj.dataset.name if obj.dataset_id else "—"

    @admin.display(description="filename")
    def filename(self, obj: ReviewQueueItem) -> str:
        return obj.name

    @admin.display(description="type")
    def type(self, obj: ReviewQueueItem) -> str:
        return obj.content_type or obj.kind or "—"

    @admin.display(description="size")
    def size_display(self, obj: ReviewQueueItem) -> str:
        return filesizeformat(obj.size) if obj.size is not None else "—"

    @admin.display(description="uploaded")
    def uploaded(self, obj: ReviewQueueItem) -> str:
        return timezone.localtime(obj.confirmed_at or obj.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="deadline")
    def deadline(self, obj: ReviewQueueItem) -> str:
        if obj.review_expires_at is None:
            return "—"
        when = timezone.localtime(obj.review_expires_at).strftime("%Y-%m-%d %H:%M")
        if _is_overdue(obj):
            label = "overdue — escalated" if _escalated(obj) else "overdue"
            return format_html(
                '<strong class="review-overdue" style="color:#ba2121">{} ({})</strong>',
                when,
                label,
            )
        return when

    @admin.display(description="metadata")
    def metadata_summary(self, obj: ReviewQueueItem) -> str:
        if not obj.metadata:
            return "—"
        return format_html(
            '<pre style="white-space:pre-wrap;max-height:24em;overflow:auto">{}</pre>',
            json.dumps(obj.metadata, indent=2, sort_keys=True, default=str)[:20000],
        )

    @admin.display(description="preview")
    def preview(self, obj: ReviewQueueItem) -> str:
        actor = getattr(obj, "_review_actor", None)
        if actor is None or not obj.has_bytes:
            return "—"
        token, _expires = services.preview_link(actor=actor, file=obj)
        url = reverse("review-preview-content", args=[token])
        detected = (obj.content_type or "").lower()
        thumb = (
            format_html('<img src="{}" alt="first page / thumbnail" style="max-width:480px">', self._thumb_url(obj))
            if obj.thumbnail_key
            else ""
        )
        if detected.startswith("audio/"):
            body = format_html('<audio controls preload="metadata" src="{}"></audio>', url)
        elif detected.startswith("video/"):
            body = format_html('<video controls preload="metadata" style="max-width:640px" src="{}"></video>', url)
        elif detected in ("image/png", "image/jpeg", "image/gif", "image/webp"):
            body = format_html('<img src="{}" alt="" style="max-width:640px;max-height:480px">', url)
        elif detected.startswith(TEXT_TYPES):
            body = format_html(
                '<pre class="review-excerpt" style="white-space:pre-wrap;max-height:24em;overflow:auto">{}</pre>',
                self._excerpt(obj),
            )
        else:  # PDF first page, office documents, anything else: the thumbnail, if any
            body = thumb or format_html("<em>{}</em>", "No inline preview for this type.")
        link = format_html(
            '<p><a href="{}" rel="noreferrer" target="_blank">Open the original (signed link, 1 hour)</a></p>', url
        )
        return format_html("{}{}", body, link)

    def _excerpt(self, obj: ReviewQueueItem) -> str:
        try:
            with closing(storage.open_reader(obj.storage_key)) as fh:
                head = fh.read(TEXT_EXCERPT_BYTES)
        except OSError:
            return "(the bytes could not be read)"
        text = head.decode("utf-8", errors="replace")
        return text + ("\n…" if obj.size and obj.size > TEXT_EXCERPT_BYTES else "")

    # --- decisions: buttons on the object page --------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<str:object_id>/approve/", wrap(self.approve_view), name="review_reviewqueueitem_approve"),
            path("<str:object_id>/reject/", wrap(self.reject_view), name="review_reviewqueueitem_reject"),
            *super().get_urls(),
        ]

    def _decide_one(self, request: HttpRequest, object_id: str, *, approve: bool) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        actor = services.admin_site_actor(request.user)
        try:
            if approve:
                services.file_approve(actor=actor, file=obj)
                messages.success(request, f"Approved {obj.name}.")
            else:
                services.file_reject(actor=actor, file=obj, reason=request.POST.get("reason", ""))
                messages.success(request, f"Rejected {obj.name}.")
        except AppError as exc:
            messages.error(request, f"{obj.name}: {exc.message}")
            return HttpResponseRedirect(reverse("admin:review_reviewqueueitem_change", args=[obj.pk]))
        return HttpResponseRedirect(reverse("admin:review_reviewqueueitem_changelist"))

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_one(request, object_id, approve=True)

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_one(request, object_id, approve=False)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra = {
            **(extra_context or {}),
            "approve_url": reverse("admin:review_reviewqueueitem_approve", args=[object_id]),
            "reject_url": reverse("admin:review_reviewqueueitem_reject", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra)

    # --- bulk actions ------------------------------------------------------------------------

    def _report(self, request: HttpRequest, verb: str, outcome: services.BulkOutcome) -> None:
        if outcome.decided:
            messages.success(request, f"{verb} {len(outcome.decided)} file(s).")
        if outcome.skipped:
            details = ", ".join(f"{fid} ({code})" for fid, code in sorted(outcome.skipped.items()))
            messages.warning(request, f"Skipped {len(outcome.skipped)} already decided or gone: {details}.")

    @admin.action(description="Approve selected files")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = services.admin_site_actor(request.user)
        ids = list(queryset.order_by("review_expires_at", "pk").values_list("pk", flat=True))
        self._report(request, "Approved", services.files_approve(actor=actor, files=ids))

    @admin.action(description="Reject selected files (one reason for all)…")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        ids = list(queryset.order_by("review_expires_at", "pk").values_list("pk", flat=True))
        reason = (request.POST.get("reason") or "").strip()
        if "apply" in request.POST:
            if reason:
                actor = services.admin_site_actor(request.user)
                self._report(request, "Rejected", services.files_reject(actor=actor, files=ids, reason=reason))
                return None
            messages.error(request, "A reason is required to reject.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject files",
            "opts": self.model._meta,
            "ids": ids,
            "files": list(queryset.select_related("organization").order_by("review_expires_at", "pk")[:200]),
            "count": len(ids),
            "reason": reason,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/review/reject_selected.html", context)
