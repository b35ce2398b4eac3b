from __future__ import annotations

from typing import IO, Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Membership, Organization
from accounts.scopes import ROLE_ADMIN, ROLE_OWNER, UPLOAD_CREATE, UPLOAD_EDIT, UPLOAD_READ
from fileconvert.api.permissions import identity_of
from fileconvert.api.registry import ResourceViewSet, register
from fileconvert.errors import BadRequest, NotFound
from fileconvert.wsgi_input import content_length_body
from uploads import selectors, services
from uploads.api import serializers as s
from uploads.models import FileStatus, StoredFile, Upload, Visibility
from uploads.multipart import StorageUploadHandler


class FileFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=FileStatus.choices)
    kind = django_filters.CharFilter()
    content_type = django_filters.CharFilter()
    dataset_id = django_filters.CharFilter()
    upload_id = django_filters.CharFilter()
    parent_id = django_filters.CharFilter()
    review_state = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = StoredFile
        fields = ["status", "kind", "content_type", "dataset_id", "upload_id", "parent_id", "review_state"]


def parse_streamed_multipart(request: Request, *, max_files: int) -> tuple[dict[str, Any], list[Any], StorageUploadHandler]:
    """Parse a multipart body, streaming its files into storage as they arrive."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadRequest("Send the files as multipart/form-data.", code="UNSUPPORTED_MEDIA_TYPE")
    identity = identity_of(request)
    handler = StorageUploadHandler(org_id=identity.org.pk, limit=services.upload_limit(identity.org), max_files=max_files)
    request._request.upload_handlers = [handler]
    try:
        data = request.data
        files = [f.part for key in request.FILES for f in request.FILES.getlist(key)]
    except BaseException:
        handler.cleanup()
        raise
    return data, files, handler


@register
class FileViewSet(ResourceViewSet):
    resource_name = "file"
    resource_path = "files"
    resource_title = "File"
    resource_description = "Stored files. POST a multipart `file` to upload one; outputs of conversions appear here too."
    list_columns = ["name", "kind", "size", "status", "review_state", "visibility", "created_at"]
    read_scope = UPLOAD_READ
    write_scope = UPLOAD_EDIT
    create_scope = UPLOAD_CREATE
    queryset = StoredFile.objects.all()
    serializer_class = s.FileSerializer
    create_serializer_class = s.FileCreateSerializer
    update_serializer_class = s.FileUpdateSerializer
    filterset_class = FileFilter
    parser_classes = [MultiPartParser]

    def get_parsers(self) -> list[Any]:
        from rest_framework.parsers import FormParser, JSONParser

        # Uploads are multipart; suffix actions from other apps (share, conversions …) take JSON.
        # (``self.action`` is set only after the parsers are chosen: read the action map.)
        method = getattr(getattr(self, "request", None), "method", "") or ""
        if getattr(self, "action_map", {}).get(method.lower()) == "create":
            return [MultiPartParser()]
        return [JSONParser(), FormParser(), MultiPartParser()]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data, parts, handler = parse_streamed_multipart(request, max_files=1)
        try:
            fields = s.FileCreateSerializer(data={k: v for k, v in data.items() if k != "file"}, partial=True)
            fields.is_valid(raise_exception=True)
            if len(parts) != 1 or parts[0].field_name != "file":
                raise BadRequest("Send exactly one file in the `file` field.", code="VALIDATION_ERROR")
            if fields.validated_data.get("name"):
                parts[0].name = services.sanitize_filename(fields.validated_data["name"])
            dataset = services.dataset_resolve(actor=self.identity, dataset_id=fields.validated_data.get("dataset_id"))
            _upload, created = services.files_from_streamed_parts(
                actor=self.identity,
                parts=parts,
                source=Upload.SOURCE_API,
                dataset=dataset,
                visibility=fields.validated_data.get("visibility"),
            )
        except BaseException:
            handler.cleanup()
            raise
        return self.output(created[0], status.HTTP_201_CREATED)

    def perform_update_service(self, instance: StoredFile, data: dict[str, Any]) -> StoredFile:
        return services.file_update(actor=self.identity, file=instance, data=data)

    def perform_destroy_service(self, instance: StoredFile) -> None:
        services.file_delete(actor=self.identity, file=instance)


# --- Streamed uploads (seed 004) ------------------------------------------------------------


class UploadInitView(APIView):
    required_scopes = {"POST": UPLOAD_CREATE}

    @extend_schema(
        tags=["uploads"],
        summary="Start a streamed upload",
        request=s.UploadInitSerializer,
        responses={201: s.UploadInitResponseSerializer},
    )
    def post(self, request: Request) -> Response:
        identity = identity_of(request)
        body = s.UploadInitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        dataset = services.dataset_resolve(actor=identity, dataset_id=data.get("dataset_id"), name=data.get("dataset"))
        stored = services.file_init(
            actor=identity,
            name=data["filename"],
            source=Upload.SOURCE_STREAM,
            claimed_type=data.get("content_type", ""),
            expected_size=data.get("size"),
            sha256=data.get("sha256", ""),
            dataset=dataset,
            visibility=data.get("visibility"),
        )
        return Response(
            {
                "method": "PUT",
                "upload_url": request.build_absolute_uri(f"/api/uploads/{stored.pk}/data"),
                "file_id": stored.pk,
                "upload_id": stored.upload_id,
                "max_bytes": services.upload_limit(identity.org),
                "expires_at": stored.expires_at,
            },
            status=status.HTTP_201_CREATED,
        )


def _body_stream(request: Request) -> tuple[IO[bytes], int | None]:
    """The raw body as a stream; chunked bodies (no Content-Length) read from the server's input."""
    django_request = request._request
    raw_length = django_request.META.get("CONTENT_LENGTH")
    if raw_length not in (None, ""):
        try:
            length = int(raw_length)
        except ValueError:
            raise BadRequest("Content-Length is invalid.", code="MALFORMED_REQUEST") from None
        # Under gunicorn, read the socket directly (one copy, no LimitedStream wrapper).
        direct = content_length_body(django_request.META, length)
        return (direct or django_request), length  # type: ignore[return-value]
    if "chunked" in django_request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return django_request.META["wsgi.input"], None
    raise BadRequest("Send the bytes with Content-Length or chunked transfer encoding.", code="LENGTH_REQUIRED")


class UploadDataView(APIView):
    required_scopes = {"PUT": UPLOAD_CREATE}
    parser_classes: list[Any] = []

    @extend_schema(
        tags=["uploads"],
        summary="Stream the raw bytes of an upload",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("X-Content-SHA256", str, OpenApiParameter.HEADER, description="Optional; verified.")],
        responses={200: s.FileSerializer},
    )
    def put(self, request: Request, file_id: str) -> Response:
        identity = identity_of(request)
        stored = selectors.get_file_for(identity, file_id)
        stream, length = _body_stream(request)
        stored = services.file_receive_stream(
            actor=identity,
            file=stored,
            stream=stream,
            content_length=length,
            sha256=request.META.get("HTTP_X_CONTENT_SHA256", "") or request.query_params.get("sha256", ""),
        )
        return Response(s.FileSerializer(stored).data)


class UploadAbortView(APIView):
    required_scopes = {"POST": UPLOAD_CREATE}

    @extend_schema(
        tags=["uploads"],
        summary="Abort an upload in progress",
        request=None,
        responses=inline_serializer("UploadAborted", {"file_id": serializers.CharField(), "aborted": serializers.BooleanField()}),
    )
    def post(self, request: Request, file_id: str) -> Response:
        identity = identity_of(request)
        services.file_abort(actor=identity, file=selectors.get_file_for(identity, file_id))
        return Response({"file_id": file_id, "aborted": True})


class UploadCompleteView(APIView):
    required_scopes = {"POST": UPLOAD_CREATE}

    @extend_schema(
        tags=["uploads"],
        summary="Confirm an upload whose bytes were sent to the presigned URL",
        request=None,
        responses=s.FileSerializer,
    )
    def post(self, request: Request, file_id: str) -> Response:
        identity = identity_of(request)
        stored = services.file_complete_presigned(actor=identity, file=selectors.get_file_for(identity, file_id))
        return Response(s.FileSerializer(stored).data)


# --- Batches and tasks (seed 002) ------------------------------------------------------------


class BatchUploadView(APIView):
    required_scopes = {"POST": UPLOAD_CREATE}
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=["batches"],
        summary="Submit files for processing (one task per file; e-mails expand)",
        request={
            "multipart/form-data": inline_serializer(
                "BatchUploadRequest",
                {
                    "files": serializers.ListField(child=serializers.FileField()),
                    "name": serializers.CharField(required=False),
                    "project": serializers.CharField(required=False, help_text="Dataset name (created if new)."),
                    "dataset_id": serializers.CharField(required=False),
                },
            )
        },
        responses={201: s.UploadSerializer},
    )
    def post(self, request: Request) -> Response:
        identity = identity_of(request)
        from django.conf import settings

        data, parts, handler = parse_streamed_multipart(request, max_files=settings.DATA_UPLOAD_MAX_NUMBER_FILES)
        try:
            dataset = services.dataset_resolve(
                actor=identity,
                dataset_id=data.get("dataset_id") or data.get("project_id"),
                name=data.get("project") or data.get("dataset"),
            )
            upload, _files = services.files_from_streamed_parts(
                actor=identity,
                parts=parts,
                source=Upload.SOURCE_BATCH,
                upload_name=data.get("name", ""),
                dataset=dataset,
                visibility=data.get("visibility") or None,
            )
        except BaseException:
            handler.cleanup()
            raise
        return Response(s.UploadSerializer(upload).data, status=status.HTTP_201_CREATED)


class UploadDetailView(APIView):
    required_scopes = {"GET": UPLOAD_READ}

    @extend_schema(tags=["batches"], summary="An upload with its derived status and its tasks", responses=s.UploadSerializer)
    def get(self, request: Request, upload_id: str) -> Response:
        upload = selectors.get_upload_for(identity_of(request), upload_id)
        return Response(s.UploadSerializer(upload).data)


class UploadMoveView(APIView):
    required_scopes = {"PUT": UPLOAD_EDIT}

    @extend_schema(
        tags=["batches"],
        summary="Move an upload to another dataset or organization",
        request=s.UploadMoveSerializer,
        responses=s.UploadSerializer,
    )
    def put(self, request: Request, upload_id: str) -> Response:
        identity = identity_of(request)
        upload = selectors.get_upload_for(identity, upload_id)
        body = s.UploadMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        target_org = identity.org
        if data.get("organization_id") and data["organization_id"] != identity.org.pk:
            target_org = _admin_org_of(identity, data["organization_id"])
        target_identity = identity if target_org.pk == identity.org.pk else _as_member(identity, target_org)
        dataset_id = data.get("dataset_id") or data.get("project_id")
        dataset_name = data.get("dataset") or data.get("project")
        keep = not any(k in data for k in ("dataset_id", "project_id", "dataset", "project"))
        dataset = (
            upload.dataset
            if keep and target_org.pk == identity.org.pk
            else services.dataset_resolve(actor=target_identity, dataset_id=dataset_id, name=dataset_name)
        )
        moved = services.upload_move(actor=identity, upload=upload, dataset=dataset, organization=target_org)
        return Response(s.UploadSerializer(moved).data)


def _admin_org_of(identity: Any, org_id: str) -> Organization:
    """Another organization where the caller is admin or owner; 404 otherwise (no disclosure)."""
    if identity.user is None:
        raise NotFound("Organization not found.")
    membership = (
        Membership.objects.filter(user=identity.user, organization_id=org_id, role__in=[ROLE_ADMIN, ROLE_OWNER])
        .select_related("organization")
        .first()
    )
    if membership is None:
        raise NotFound("Organization not found.")
    return membership.organization


def _as_member(identity: Any, org: Organization) -> Any:
    from dataclasses import replace

    return replace(identity, org=org)


class TaskDetailView(APIView):
    required_scopes = {"GET": UPLOAD_READ}

    @extend_schema(tags=["batches"], summary="One task", responses=s.TaskSerializer)
    def get(self, request: Request, task_id: str) -> Response:
        return Response(s.TaskSerializer(selectors.get_task_for(identity_of(request), task_id)).data)


class TaskCompleteView(APIView):
    required_scopes = {"POST": UPLOAD_EDIT}

    @extend_schema(tags=["batches"], summary="Mark a task complete", request=None, responses=s.TaskSerializer)
    def post(self, request: Request, task_id: str) -> Response:
        identity = identity_of(request)
        task = services.task_complete(actor=identity, task=selectors.get_task_for(identity, task_id))
        return Response(s.TaskSerializer(task).data)


class TaskDiscardView(APIView):
    required_scopes = {"POST": UPLOAD_EDIT}

    @extend_schema(tags=["batches"], summary="Discard a task", request=None, responses=s.TaskSerializer)
    def post(self, request: Request, task_id: str) -> Response:
        identity = identity_of(request)
        task = services.task_discard(actor=identity, task=selectors.get_task_for(identity, task_id))
        return Response(s.TaskSerializer(task).data)


def uploads_for_listing(org: Organization) -> QuerySet[Upload]:
    return selectors.with_task_counts(Upload.objects.filter(organization=org).select_related("dataset"))


# --- Presigned uploads, listing and deletion (seeds 000 and 003) --------------------------


class PresignedUploadSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=10000)
    content_type = serializers.CharField(required=False, allow_blank=True, max_length=200)
    size = serializers.IntegerField(required=False, min_value=0)
    sha256 = serializers.CharField(required=False, allow_blank=True, max_length=64)
    dataset_id = serializers.CharField(required=False, max_length=40)
    dataset = serializers.CharField(required=False, max_length=200)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class UploadApiView(APIView):
    """Seed 000 "Upload API": a presigned POST (S3) or its embedded equivalent."""

    required_scopes = {"POST": UPLOAD_CREATE}

    @extend_schema(
        tags=["seed-000"],
        summary="Generate a presigned upload (URL, form fields, upload_id)",
        request=PresignedUploadSerializer,
        responses={
            201: inline_serializer(
                "PresignedUpload",
                {
                    "upload_id": serializers.CharField(),
                    "url": serializers.CharField(),
                    "fields": serializers.DictField(),
                    "method": serializers.CharField(),
                    "max_bytes": serializers.IntegerField(),
                    "expires_at": serializers.DateTimeField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        identity = identity_of(request)
        raw = dict(request.data.items()) if hasattr(request.data, "items") else {}
        raw.setdefault("filename", request.META.get("HTTP_X_FILE_NAME", ""))
        body = PresignedUploadSerializer(data=raw)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        dataset = services.dataset_resolve(actor=identity, dataset_id=data.get("dataset_id"), name=data.get("dataset"))
        stored, post = services.presigned_upload_create(
            actor=identity,
            name=data["filename"],
            claimed_type=data.get("content_type", ""),
            expected_size=data.get("size"),
            sha256=data.get("sha256", ""),
            dataset=dataset,
            visibility=data.get("visibility"),
            form_url_prefix=request.build_absolute_uri("/api/uploads/"),
        )
        return Response({"upload_id": stored.pk, "method": "POST", **post}, status=status.HTTP_201_CREATED)


class PresignedFormView(APIView):
    """The embedded mode's stand-in for the S3 bucket: a form POST checked against its signed policy."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=["uploads"],
        summary="Embedded-mode presigned POST target (S3 form semantics)",
        auth=[],
        parameters=[OpenApiParameter("policy", str, required=True)],
        request={
            "multipart/form-data": inline_serializer(
                "PresignedForm",
                {"key": serializers.CharField(), "policy": serializers.CharField(), "file": serializers.FileField()},
            )
        },
        responses={204: None},
    )
    def post(self, request: Request, file_id: str) -> Response:
        from fileconvert import storage

        if storage.is_s3():
            raise NotFound()
        stored, max_bytes = services.presigned_policy_check(file_id=file_id, policy=request.query_params.get("policy", ""))
        handler = StorageUploadHandler(
            org_id=stored.organization_id, limit=max_bytes, max_files=1, fixed=(stored.pk, stored.storage_key)
        )
        request._request.upload_handlers = [handler]
        try:
            data = request.data
            parts = [f.part for key in request.FILES for f in request.FILES.getlist(key)]
            services.presigned_form_check(stored=stored, fields=data, parts=parts)
            handler.commit()
        except BaseException:
            handler.cleanup()
            raise
        return Response(status=status.HTTP_204_NO_CONTENT)


SEED_STATUS = {
    FileStatus.PENDING: "pending",
    FileStatus.UPLOADING: "pending",
    FileStatus.PROCESSING: "processing",
    FileStatus.STAGED: "reviewing",
    FileStatus.ACTIVE: "completed",
    FileStatus.FAILED: "failed",
}
SEED_STATUS_FILTER: dict[str, list[str]] = {}
for _ours, _theirs in SEED_STATUS.items():
    SEED_STATUS_FILTER.setdefault(_theirs, []).append(_ours)


def _epoch(value: Any) -> int | None:
    return int(value.timestamp()) if value else None


class ListUploadsApiView(APIView):
    """Seed 003: ``{"uploads": [...]}`` with exactly its fields; 401 ``{"error": "Unauthorized"}``."""

    envelope = False
    required_scopes = {"GET": UPLOAD_READ}

    def handle_exception(self, exc: Exception) -> Response:
        from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

        from fileconvert.errors import Unauthorized

        if isinstance(exc, (NotAuthenticated, AuthenticationFailed, Unauthorized)):
            return Response({"error": "Unauthorized"}, status=401)
        if isinstance(exc, (BadRequest,)) or getattr(exc, "status_code", 500) < 500:
            return super().handle_exception(exc)
        import logging

        logging.getLogger(__name__).exception("list uploads failed")
        return Response({"error": "Failed to retrieve uploads"}, status=500)

    @extend_schema(
        tags=["seed-003"],
        summary="List the caller's uploads, newest first",
        parameters=[
            OpenApiParameter(
                "x-upload-status",
                str,
                OpenApiParameter.HEADER,
                enum=sorted(SEED_STATUS_FILTER),
                description="Only uploads in this status.",
            ),
            OpenApiParameter("limit", int, description="Page size (default 100, max 1000)."),
            OpenApiParameter("cursor", str, description="From `next_cursor`, present when more uploads exist."),
        ],
        responses={
            200: inline_serializer(
                "ListUploads",
                {
                    "uploads": serializers.ListField(
                        child=inline_serializer(
                            "ListedUpload",
                            {
                                "upload_id": serializers.CharField(),
                                "user_id": serializers.CharField(allow_null=True),
                                "status": serializers.CharField(),
                                "filename": serializers.CharField(),
                                "s3_key": serializers.CharField(),
                                "file_size": serializers.IntegerField(),
                                "created_at": serializers.IntegerField(),
                                "expires_at": serializers.IntegerField(allow_null=True),
                            },
                        )
                    )
                },
            ),
            401: inline_serializer("Unauthorized", {"error": serializers.CharField()}),
        },
        extensions={"x-fileconvert-raw": True},
    )
    def get(self, request: Request) -> Response:
        from django.db.models import Q
        from django.utils import timezone

        from fileconvert.api.pagination import keyset_page, parse_limit

        identity = identity_of(request)
        files = (
            selectors.files_of(identity.org)
            .filter(parent__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        )
        wanted = request.META.get("HTTP_X_UPLOAD_STATUS", "").strip().lower()
        if wanted:
            if wanted not in SEED_STATUS_FILTER:
                raise BadRequest(
                    f"x-upload-status must be one of: {', '.join(sorted(SEED_STATUS_FILTER))}.", code="INVALID_STATUS"
                )
            files = files.filter(status__in=SEED_STATUS_FILTER[wanted])
        rows, cursor = keyset_page(
            files,
            ordering="-pk",
            limit=parse_limit(request, default=100, maximum=1000),
            cursor=request.query_params.get("cursor") or None,
        )
        body: dict[str, Any] = {
            "uploads": [
                {
                    "upload_id": f.pk,
                    "user_id": f.uploaded_by_id,
                    "status": SEED_STATUS[f.status],
                    "filename": f.name,
                    "s3_key": f.storage_key,
                    "file_size": f.size if f.size is not None else (f.expected_size or 0),
                    "created_at": _epoch(f.created_at),
                    "expires_at": _epoch(f.expires_at),
                }
                for f in rows
            ]
        }
        if cursor:
            body["next_cursor"] = cursor
        return Response(body)


class DeleteUploadApiView(APIView):
    """Seed 000 "Delete Upload API": the id in a JSON body or an ``x-upload-id`` header."""

    required_scopes = {"DELETE": UPLOAD_EDIT}

    @extend_schema(
        tags=["seed-000"],
        summary="Delete an upload: bytes, records and derived files",
        parameters=[OpenApiParameter("x-upload-id", str, OpenApiParameter.HEADER)],
        request=inline_serializer("DeleteUpload", {"upload_id": serializers.CharField(required=False)}),
        responses=inline_serializer(
            "UploadDeleted",
            {
                "upload_id": serializers.CharField(),
                "deleted": serializers.BooleanField(),
                "deleted_files": serializers.IntegerField(),
            },
        ),
    )
    def delete(self, request: Request) -> Response:
        identity = identity_of(request)
        upload_id = ""
        if hasattr(request.data, "get"):
            upload_id = str(request.data.get("upload_id") or "")
        upload_id = upload_id or request.META.get("HTTP_X_UPLOAD_ID", "")
        if not upload_id:
            from fileconvert.errors import ValidationFailed

            raise ValidationFailed("upload_id is required (JSON body or x-upload-id header).", fields={"upload_id": ["required"]})
        stored = selectors.get_file_for(identity, upload_id.strip())
        count = services.upload_delete(actor=identity, file=stored)
        return Response({"upload_id": stored.pk, "deleted": True, "deleted_files": count})
