"""Download and share: suffix actions on the ``files`` resource, share links, ``/api/s/{token}``.

Bytes responses are raw (never the envelope); every error is the house JSON shape.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.identity import Identity
from accounts.scopes import UPLOAD_EDIT, UPLOAD_READ
from fileconvert.api.permissions import IsAuthenticatedIdentity
from fileconvert.api.registry import ID_PARAM, ORG_PARAM, ResourceViewSet, contribute_action, register
from fileconvert.errors import Conflict
from sharing import selectors, services
from sharing.api import serializers as s
from sharing.delivery import serve_file
from sharing.models import ShareLink, ShareVisibility

_ERROR = {"$ref": "#/components/schemas/Error"}
BYTES_RESPONSES: dict[Any, Any] = {
    (200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The whole file, in its detected Content-Type."
    ),
    (206, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="One range (Content-Range), or several as multipart/byteranges."
    ),
    304: OpenApiResponse(description="Not modified (If-None-Match / If-Modified-Since)."),
    401: OpenApiResponse(_ERROR, description="A credential was presented and is invalid (UNAUTHORIZED)."),
    403: OpenApiResponse(_ERROR, description="The credential lacks upload.read (INSUFFICIENT_SCOPE)."),
    404: OpenApiResponse(_ERROR, description="Missing, another organization's, or an invalid/expired/stale link."),
    409: OpenApiResponse(_ERROR, description="The file has no downloadable content (NOT_DOWNLOADABLE)."),
    416: OpenApiResponse(_ERROR, description="No range satisfiable; Content-Range: bytes */size."),
    429: OpenApiResponse(_ERROR, description="Rate limited (RATE_LIMITED); see Retry-After."),
}
RANGE_HEADERS = [
    OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="bytes=…; up to DOWNLOAD_MAX_RANGES ranges."),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
    OpenApiParameter("If-Range", str, OpenApiParameter.HEADER, description="A strong ETag or an HTTP date."),
    OpenApiParameter(
        "disposition",
        str,
        enum=["attachment", "inline"],
        description="inline is honoured for passive types only (raster images, audio, video, plain text).",
    ),
]


class AnyContentNegotiation(DefaultContentNegotiation):
    """Byte endpoints answer whatever the client accepts (a player asking for video/*):
    errors then fall back to JSON instead of a 406."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class DownloadPermission(IsAuthenticatedIdentity):
    """A ``?dl=`` token stands in for credentials (checked by the view); otherwise the
    usual identity and scope check."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if "dl" in request.query_params:
            return True
        return super().has_permission(request, view)


def _inline(request: Request) -> bool:
    return request.query_params.get("disposition", "attachment") == "inline"


def _identity(request: Request) -> Identity | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, Identity) else None


# --- /api/files/{org_id}/{id}/download ---------------------------------------------------


@contribute_action("file", scope=UPLOAD_READ)
@extend_schema(
    tags=["files"],
    summary="Download a file's bytes (HTTP Range, conditional requests; ?dl= signed link)",
    description=(
        "Streams the bytes (not the envelope). Authenticate as usual (upload.read), or pass only "
        "`dl`, a token from `download-link`: bound to this file and its current content. Active "
        "content (HTML, SVG, XML, JavaScript, PDF) is always an attachment; every response carries "
        "`X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`."
    ),
    auth=[{"GatewayKey": []}, {"ApiKey": []}, {"Bearer": []}, {}],
    parameters=[
        ORG_PARAM,
        ID_PARAM,
        OpenApiParameter("dl", str, description="A signed download token: no auth header needed."),
        *RANGE_HEADERS,
    ],
    responses=BYTES_RESPONSES,
    extensions={"x-fileconvert-raw": True},
)
@action(
    detail=True,
    methods=["get"],
    url_path="download",
    permission_classes=[DownloadPermission],
    content_negotiation_class=AnyContentNegotiation,
)
def download(self: ResourceViewSet, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
    token = request.query_params.get("dl")
    if token is not None:
        file, signed = selectors.signed_download(token, org_id=self.kwargs["org_id"], file_id=self.kwargs["pk"])
        response = serve_file(request, file, inline=_inline(request))
        if getattr(response, "counts_as_download", False):
            services.signed_download_record(file=file, expires_at=signed.expires_at)
        return response
    file = self.get_object()
    if not selectors.downloadable(file):
        raise Conflict("This file has no downloadable content.", code="NOT_DOWNLOADABLE")
    return serve_file(request, file, inline=_inline(request))


@contribute_action("file", scope=UPLOAD_READ)
@extend_schema(
    tags=["files"],
    summary="Mint a signed, expiring download link (?dl=) for this file's current content",
    description="The link stops working when it expires or the file's content changes.",
    parameters=[ORG_PARAM, ID_PARAM],
    request=s.DownloadLinkRequestSerializer,
    responses={
        201: s.DownloadLinkSerializer,
        409: OpenApiResponse(_ERROR, description="The file has no downloadable content (NOT_DOWNLOADABLE)."),
    },
)
@action(detail=True, methods=["post"], url_path="download-link")
def download_link(self: ResourceViewSet, request: Request, *args: Any, **kwargs: Any) -> Response:
    file = self.get_object()
    given = s.DownloadLinkRequestSerializer(data=request.data)
    given.is_valid(raise_exception=True)
    link = services.download_link_create(actor=self.identity, file=file, ttl=given.validated_data.get("expires_in"))
    url = request.build_absolute_uri(link.url)
    return Response(s.DownloadLinkSerializer({"url": url, "expires_at": link.expires_at}).data, status=status.HTTP_201_CREATED)


# --- /api/files/{org_id}/{id}/share ------------------------------------------------------


@contribute_action("file", scope=UPLOAD_EDIT)
@extend_schema(
    tags=["files"],
    summary="Set the file's visibility and get a share link (private revokes every link)",
    description=(
        "public: anyone with the link (active files only); org: members of this organization; "
        "restricted: signed-in users named in `users` (ids) or `emails`. Links wider than the new "
        "visibility are revoked; `private` revokes all and returns no link. The token is shown once."
    ),
    parameters=[ORG_PARAM, ID_PARAM],
    request=s.ShareRequestSerializer,
    responses={
        201: s.ShareResultSerializer,
        200: OpenApiResponse(s.ShareResultSerializer, description="Made private: no link; `revoked_links` ended."),
        409: OpenApiResponse(_ERROR, description="Not shareable: public needs an active file; never rejected ones."),
    },
)
@action(detail=True, methods=["post"], url_path="share")
def share(self: ResourceViewSet, request: Request, *args: Any, **kwargs: Any) -> Response:
    file = self.get_object()
    given = s.ShareRequestSerializer(data=request.data)
    given.is_valid(raise_exception=True)
    data = given.validated_data
    result = services.share_create(
        actor=self.identity,
        file=file,
        visibility=data["visibility"],
        expires_in=data.get("expires_in"),
        expires_at=data.get("expires_at"),
        users=data.get("users"),
        emails=data.get("emails"),
    )
    link = result.link
    body = {
        "file_id": file.pk,
        "visibility": data["visibility"],
        "url": request.build_absolute_uri(f"/api/s/{result.token}") if link else None,
        "token": result.token or None,
        "link": s.ShareLinkSerializer(link).data if link else None,
        "revoked_links": result.revoked,
    }
    return Response(body, status=status.HTTP_201_CREATED if link else status.HTTP_200_OK)


# --- /api/share-links: list and revoke ---------------------------------------------------


class ShareLinkFilter(django_filters.FilterSet):
    # Plain strings: another organization's file id filters to nothing, exactly like a missing one.
    file_id = django_filters.CharFilter()
    visibility = django_filters.ChoiceFilter(choices=ShareVisibility.choices)
    active = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull")

    class Meta:
        model = ShareLink
        fields = ["file_id", "visibility"]


@register
class ShareLinkViewSet(ResourceViewSet):
    resource_name = "share-link"
    resource_path = "share-links"
    resource_title = "Share link"
    resource_description = "Links made by POST /api/files/{org_id}/{id}/share. DELETE revokes one at once."
    list_columns = ["file_id", "visibility", "expires_at", "revoked_at", "download_count", "created_at"]
    read_scope = UPLOAD_READ
    write_scope = UPLOAD_EDIT
    queryset = ShareLink.objects.all()
    serializer_class = s.ShareLinkSerializer
    filterset_class = ShareLinkFilter
    http_method_names = ["get", "delete", "head", "options"]

    def perform_destroy_service(self, instance: ShareLink) -> None:
        services.share_revoke(actor=self.identity, link=instance)


# --- /api/s/{token} ----------------------------------------------------------------------


class ShareAccessView(APIView):
    """Follow a share link. Public links need no credentials; org and restricted links need
    the caller's usual credentials (a member; a named user). Anything else is a 404."""

    permission_classes = [AllowAny]
    content_negotiation_class = AnyContentNegotiation

    @extend_schema(
        tags=["files"],
        summary="Fetch a shared file (public: no auth; org: members; restricted: the named users)",
        description="The same byte responses as the download action; anything not allowed is a 404.",
        parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH), *RANGE_HEADERS],
        responses=BYTES_RESPONSES,
        extensions={"x-fileconvert-raw": True},
    )
    def get(self, request: Request, token: str) -> HttpResponseBase:
        identity = _identity(request)
        link = selectors.share_link_resolve(token, identity)
        response = serve_file(request, link.file, inline=_inline(request))
        if getattr(response, "counts_as_download", False):
            services.share_download_record(link=link, actor=identity, ranged=response.status_code == 206)
        return response
