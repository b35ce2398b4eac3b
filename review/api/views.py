"""Seed 001 "Admin Review": the review queue for platform admins, across tenants."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fileconvert import storage
from fileconvert.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page, parse_limit
from fileconvert.api.permissions import IsPlatformAdmin, identity_of
from fileconvert.api.schema import ERROR_SCHEMA
from fileconvert.signed import file_token_check
from review import selectors, services
from review.api import serializers as s
from uploads.models import StoredFile

TAGS = ["admin-review"]
CONFLICT_RESPONSE = OpenApiResponse(
    ERROR_SCHEMA, description="Already decided or not waiting for review (ALREADY_DECIDED, NOT_PENDING)."
)
PATH_PARAMS = [
    OpenApiParameter("tenant_id", str, OpenApiParameter.PATH, description="The tenant (organization) id."),
    OpenApiParameter("object_id", str, OpenApiParameter.PATH, description="The object (file) id."),
]


class ReviewAdminView(APIView):
    """Platform admins only (``is_platform_admin`` and the ``admin:*`` scope); others 403."""

    permission_classes = [IsPlatformAdmin]


class ReviewQueueView(ReviewAdminView):
    @extend_schema(
        tags=TAGS,
        operation_id="admin_review_list",
        summary="List the review queue (pending objects, oldest deadline first)",
        parameters=[
            OpenApiParameter("cursor", str, description="Opaque cursor from a previous response's `next_cursor`."),
            OpenApiParameter("limit", int, description=f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}."),
        ],
        responses=s.ReviewQueueSerializer,
    )
    def get(self, request: Request) -> Response:
        rows, cursor = keyset_page(
            selectors.pending_files(),
            ordering=selectors.QUEUE_ORDERING,
            limit=parse_limit(request),
            cursor=request.query_params.get("cursor") or None,
        )
        return Response(
            {
                "items": s.ReviewItemSerializer(rows, many=True).data,
                "total": selectors.pending_count(),
                "next_cursor": cursor,
                "has_more": cursor is not None,
            }
        )


class ReviewObjectView(ReviewAdminView):
    @extend_schema(
        tags=TAGS,
        operation_id="admin_review_object",
        summary="Get a staged object's detail",
        parameters=PATH_PARAMS,
        responses=s.ReviewObjectSerializer,
    )
    def get(self, request: Request, tenant_id: str, object_id: str) -> Response:
        stored = selectors.review_object(tenant_id=tenant_id, object_id=object_id)
        return Response(s.ReviewObjectSerializer(stored).data)


class ReviewApproveView(ReviewAdminView):
    @extend_schema(
        tags=TAGS,
        operation_id="admin_review_approve",
        summary="Approve a staged object (it becomes active and is indexed)",
        parameters=PATH_PARAMS,
        request=None,
        responses={200: s.ApproveResultSerializer, 409: CONFLICT_RESPONSE},
    )
    def post(self, request: Request, tenant_id: str, object_id: str) -> Response:
        stored = selectors.review_object(tenant_id=tenant_id, object_id=object_id)
        decided = services.file_approve(actor=identity_of(request), file=stored)
        return Response(
            s.ApproveResultSerializer(
                {
                    "object_id": decided.pk,
                    "status": decided.status,
                    "review_state": decided.review_state,
                    "reviewed_at": decided.reviewed_at,
                }
            ).data
        )


class ReviewRejectView(ReviewAdminView):
    @extend_schema(
        tags=TAGS,
        operation_id="admin_review_reject",
        summary="Reject a staged object with a reason the tenant sees",
        parameters=PATH_PARAMS,
        request=s.RejectSerializer,
        responses={200: inline_serializer("ReviewRejected", {}), 409: CONFLICT_RESPONSE},
    )
    def post(self, request: Request, tenant_id: str, object_id: str) -> Response:
        body = s.RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stored = selectors.review_object(tenant_id=tenant_id, object_id=object_id)
        services.file_reject(actor=identity_of(request), file=stored, reason=body.validated_data["reason"])
        return Response({})


class ReviewPreviewView(ReviewAdminView):
    @extend_schema(
        tags=TAGS,
        operation_id="admin_review_preview_link",
        summary="Get a signed, expiring preview URL for a staged object",
        parameters=PATH_PARAMS,
        responses=s.PreviewLinkSerializer,
    )
    def get(self, request: Request, tenant_id: str, object_id: str) -> Response:
        stored = selectors.review_object(tenant_id=tenant_id, object_id=object_id)
        token, expires_at = services.preview_link(actor=identity_of(request), file=stored)
        url = request.build_absolute_uri(reverse("review-preview-content", args=[token]))
        return Response(s.PreviewLinkSerializer({"preview_url": url, "expires_at": expires_at}).data)


# --- The preview itself: a signed link, no auth header --------------------------------------

# Served inline: formats a browser renders without running anything. Everything else is an
# attachment of type application/octet-stream. Always nosniff and a sandboxing CSP.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
INLINE_PREFIXES = ("audio/", "video/")
PREVIEW_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"


def preview_headers(response: HttpResponse, *, inline: bool, filename: str) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PREVIEW_CSP
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Content-Disposition"] = content_disposition_header(not inline, filename)
    return response


def preview_response(stored: StoredFile, *, thumbnail: bool) -> HttpResponse:
    if thumbnail:
        if not stored.thumbnail_key:
            from fileconvert.errors import NotFound

            raise NotFound("This object has no thumbnail.", code="NO_THUMBNAIL")
        response = StreamingHttpResponse(storage.iter_chunks(stored.thumbnail_key), content_type="image/png")
        return preview_headers(response, inline=True, filename=f"{stored.pk}-thumbnail.png")
    detected = (stored.content_type or "").split(";")[0].strip().lower()
    inline = detected in INLINE_TYPES or detected.startswith(INLINE_PREFIXES)
    content_type = detected if inline else "application/octet-stream"
    if detected == "text/plain":
        content_type = "text/plain; charset=utf-8"
    response = StreamingHttpResponse(storage.iter_chunks(stored.storage_key), content_type=content_type)
    if stored.size is not None:
        response["Content-Length"] = str(stored.size)
    return preview_headers(response, inline=inline, filename=stored.name or stored.pk)


class ReviewPreviewContentView(APIView):
    """The target of ``preview_url``: the token is the credential (``fileconvert.signed``,
    purpose "preview", bound to the file's SHA-256). Tampered, expired or stale → 404."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    envelope = False

    @extend_schema(
        tags=TAGS,
        operation_id="admin_review_preview_content",
        summary="Stream a staged object (or its thumbnail) through a signed preview link",
        parameters=[
            OpenApiParameter("token", str, OpenApiParameter.PATH, description="The signed token of `preview_url`."),
            OpenApiParameter("variant", str, enum=["original", "thumbnail"], description="Default: original."),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            404: OpenApiResponse(ERROR_SCHEMA, description="Tampered, expired or stale link (NOT_FOUND)."),
        },
        auth=[],
        extensions={"x-fileconvert-raw": True},
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        signed = file_token_check(token, purpose=services.PREVIEW_PURPOSE, current_sha256=selectors.preview_sha256)
        stored = StoredFile.objects.get(pk=signed.file_id)
        variant = request.query_params.get("variant", "original")
        return preview_response(stored, thumbnail=variant == "thumbnail")
