"""``GET|POST /api/files/{org_id}/{id}/metadata``: suffix actions contributed to the files resource."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.scopes import UPLOAD_EDIT, UPLOAD_READ
from fileconvert.api.registry import ID_PARAM, ORG_PARAM, ResourceViewSet, contribute_action
from metadata import selectors, services
from metadata.api import serializers as s


@contribute_action("file", scope=UPLOAD_READ)
@extend_schema(
    tags=["files"],
    summary="Probe every embedded metadata container (EXIF, XMP, IPTC, ICC, PNG text, tags, PDF, Office, ffprobe)",
    description=(
        "Reads headers only. `containers` lists each container found with `status` ok or error "
        "(`error: {code, message}`: a broken or hostile container never fails the request); `common` "
        "normalises the usual fields; `editable` says which sections POST can set or remove."
    ),
    parameters=[ORG_PARAM, ID_PARAM],
    responses={200: s.MetadataSerializer},
)
@action(detail=True, methods=["get"], url_path="metadata")
def file_metadata(self: ResourceViewSet, request: Request, *args: Any, **kwargs: Any) -> Response:
    return Response(selectors.file_metadata(file=self.get_object()))


@contribute_action("file", scope=UPLOAD_EDIT)
@extend_schema(
    tags=["files"],
    summary="Write metadata back (set, remove, strip_all, anonymize) as a new version or a copy",
    description=(
        "Rewrites the file without re-encoding its content and stores it as a new version (200; the old "
        "bytes are deleted and links bound to them stop working) or, with `as_copy`, as a new file whose "
        "parent is this one (201). `changed` and `skipped` report key by key. Sections this kind of file "
        "cannot take → 422 UNSUPPORTED_EDIT; unreadable or hostile content → 422 with its code; quota → 413."
    ),
    parameters=[ORG_PARAM, ID_PARAM],
    request={"application/json": s.MetadataEditSerializer},
    responses={200: s.MetadataEditResultSerializer, 201: s.MetadataEditResultSerializer},
)
@file_metadata.mapping.post
def file_metadata_edit(self: ResourceViewSet, request: Request, *args: Any, **kwargs: Any) -> Response:
    file = self.get_object()
    given = s.MetadataEditSerializer(data=request.data)
    given.is_valid(raise_exception=True)
    outcome = services.metadata_edit(actor=self.identity, file=file, **given.validated_data)
    body = {
        "file": outcome.file,
        "as_copy": given.validated_data["as_copy"] and outcome.edit is not None,
        "version": outcome.edit.version if outcome.edit else None,
        "edit_id": outcome.edit.pk if outcome.edit else None,
        "changed": outcome.changed,
        "skipped": outcome.skipped,
    }
    created = outcome.edit is not None and outcome.edit.as_copy
    return Response(
        s.MetadataEditResultSerializer(body, context=self.get_serializer_context()).data,
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )
