"""HTTP surface of the conversion engine: the conversion-jobs resource (auto-CRUD plus
retry/cancel), the one-shot ``POST /api/convert``, the capability graph, a file's
``conversions`` suffix action, the seed 000 status API and the public format catalogue."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scopes import CONVERT, UPLOAD_READ
from conversions import converters, formats, selectors, services
from conversions.api import serializers as s
from conversions.models import ConversionJob, JobStatus
from fileconvert.api.permissions import identity_of
from fileconvert.api.registry import ID_PARAM, ORG_PARAM, ResourceViewSet, contribute_action, register
from fileconvert.errors import BadRequest, NotFound, ValidationFailed
from uploads import selectors as file_selectors
from uploads import services as upload_services
from uploads.models import Upload

TAG = "conversion-jobs"


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    target_format = django_filters.CharFilter()
    source_file_id = django_filters.CharFilter(field_name="source_id")

    class Meta:
        model = ConversionJob
        fields = ["status", "target_format", "source_file_id"]


@register
class ConversionJobViewSet(ResourceViewSet):
    resource_name = "conversion-job"
    resource_path = "conversion-jobs"
    resource_title = "Conversion job"
    resource_description = "Conversions of a file into another format; create from an existing file, poll, retry, cancel."
    list_columns = ["source_format", "target_format", "status", "progress", "created_at", "finished_at"]
    read_scope = UPLOAD_READ
    write_scope = CONVERT
    create_scope = CONVERT
    extra_action_scopes = {"retry": CONVERT, "cancel": CONVERT}
    queryset = ConversionJob.objects.select_related("result")
    serializer_class = s.JobSerializer
    create_serializer_class = s.JobCreateSerializer
    update_serializer_class = s.JobUpdateSerializer
    filterset_class = JobFilter
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(tags=[TAG], summary="Start a conversion of an existing file", responses={202: s.JobSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        source = file_selectors.get_file_for(self.identity, data["file_id"])
        job = services.job_create(
            actor=self.identity,
            source=source,
            target_format=data["target_format"],
            options=data.get("options") or {},
            visibility=data.get("visibility"),
        )
        return self.output(job, status.HTTP_202_ACCEPTED)

    def perform_update_service(self, instance: ConversionJob, data: dict[str, Any]) -> ConversionJob:
        return services.job_update(actor=self.identity, job=instance, data=data)

    @extend_schema(
        tags=[TAG],
        summary="Delete a job's record (a queued or running job is stopped; its result file stays)",
        parameters=[ORG_PARAM, ID_PARAM],
        responses={204: None},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy_service(self, instance: ConversionJob) -> None:
        services.job_delete(actor=self.identity, job=instance)

    @extend_schema(
        tags=[TAG],
        summary="Cancel a queued or running job",
        parameters=[ORG_PARAM, ID_PARAM],
        request=None,
        responses=s.JobSerializer,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.output(services.job_cancel(actor=self.identity, job=self.get_object()))

    @extend_schema(
        tags=[TAG],
        summary="Retry a failed or canceled job (a new job linked to this one)",
        parameters=[ORG_PARAM, ID_PARAM],
        request=None,
        responses={202: s.JobSerializer},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        job = services.job_retry(actor=self.identity, job=self.get_object())
        return self.output(job, status.HTTP_202_ACCEPTED)


# --- a file's conversions (suffix action on the files resource) ------------------------------

OPTION_SCHEMA = inline_serializer(
    "ConversionOption",
    {
        "name": serializers.CharField(),
        "type": serializers.CharField(),
        "default": serializers.JSONField(allow_null=True),
        "help": serializers.CharField(),
        "min": serializers.FloatField(required=False),
        "max": serializers.FloatField(required=False),
        "choices": serializers.ListField(child=serializers.CharField(), required=False),
        "value": serializers.JSONField(required=False, help_text="Prefilled from the source (width/height)."),
    },
)
FILE_CONVERSIONS_SCHEMA = inline_serializer(
    "FileConversions",
    {
        "file_id": serializers.CharField(),
        "source_format": serializers.CharField(),
        "source": serializers.DictField(help_text="width/height of images and video"),
        "targets": serializers.ListField(
            child=inline_serializer(
                "ConversionTarget",
                {
                    "format": serializers.CharField(),
                    "via": serializers.CharField(allow_null=True),
                    "converter": serializers.CharField(),
                    "options": serializers.ListField(child=OPTION_SCHEMA),
                },
            )
        ),
    },
)


@contribute_action("file", scope=UPLOAD_READ)
@extend_schema(
    tags=["files"],
    summary="Targets this file converts to, with each target's option descriptors",
    parameters=[ORG_PARAM, ID_PARAM],
    responses=FILE_CONVERSIONS_SCHEMA,
)
@action(detail=True, methods=["get"], url_path="conversions")
def conversions(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
    return Response(selectors.conversions_for(self.get_object()))


# --- one-shot convert (seed 004) and seed 000's x-source-type: file --------------------------


def _convert_existing(request: Request, data: Any) -> ConversionJob:
    """Seed 000 step 3: the bytes were uploaded already (presigned); confirm, then convert."""
    identity = identity_of(request)
    upload_id = str(data.get("upload_id") or data.get("file_id") or request.META.get("HTTP_X_UPLOAD_ID", "")).strip()
    if not upload_id:
        raise ValidationFailed("upload_id is required with x-source-type: file.", fields={"upload_id": ["required"]})
    stored = file_selectors.get_file_for(identity, upload_id)
    if stored.confirmed_at is None:
        stored = upload_services.file_complete_presigned(actor=identity, file=stored)
    return services.job_create(
        actor=identity,
        source=stored,
        target_format=str(data.get("target_format") or ""),
        options=s.parse_options(data.get("options")),
        visibility=data.get("visibility") or None,
    )


def _part_format(part: Any) -> str:
    return selectors.format_of_key(part.key, part.name)


class ConvertView(APIView):
    required_scopes = {"POST": CONVERT}
    parser_classes = [MultiPartParser, JSONParser, FormParser]

    @extend_schema(
        tags=["convert"],
        summary="One-shot conversion: upload a file and start its conversion (202 with the job)",
        parameters=[
            OpenApiParameter(
                "x-source-type",
                str,
                OpenApiParameter.HEADER,
                enum=["file"],
                description="`file`: convert an uploaded file named by `upload_id` instead of inline bytes.",
            )
        ],
        request={"multipart/form-data": s.ConvertRequestSerializer, "application/json": s.ConvertRequestSerializer},
        responses={202: s.JobSerializer},
    )
    def post(self, request: Request) -> Response:
        if request.META.get("HTTP_X_SOURCE_TYPE", "").strip().lower() == "file":
            job = _convert_existing(request, request.data)
            return Response(s.JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
        from uploads.api.views import parse_streamed_multipart

        identity = identity_of(request)
        data, parts, handler = parse_streamed_multipart(request, max_files=1)
        try:
            if len(parts) != 1 or parts[0].field_name != "file":
                raise BadRequest("Send exactly one file in the `file` field.", code="VALIDATION_ERROR")
            if parts[0].size == 0:
                raise ValidationFailed("The file is empty.", fields={"file": ["empty"]})
            target = str(data.get("target_format") or "")
            options = s.parse_options(data.get("options")) if _valid_json(data.get("options")) else None
            if options is None:
                raise ValidationFailed("options: must be a JSON object.", fields={"options": ["must be a JSON object"]})
            # Refuse an impossible request before anything is recorded.
            services.plan(source_format=_part_format(parts[0]), target_format=target, options=options)
            with transaction.atomic():
                _upload, created = upload_services.files_from_streamed_parts(
                    actor=identity,
                    parts=parts,
                    source=Upload.SOURCE_API,
                    visibility=data.get("visibility") or None,
                    publish=False,
                )
                job = services.job_create(
                    actor=identity,
                    source=created[0],
                    target_format=target,
                    options=options,
                    visibility=data.get("visibility") or None,
                )
                # After the job's own on-commit publish: the job is ahead of the source's
                # processing in the queue (the job does not need it).
                source_id = created[0].pk
                transaction.on_commit(lambda: upload_services.publish_processing(source_id))
        except BaseException:
            handler.cleanup()
            raise
        return Response(s.JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


def _valid_json(value: Any) -> bool:
    try:
        s.parse_options(value)
    except serializers.ValidationError:
        return False
    return True


class FormatsGraphView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["convert"],
        summary="The capability graph: what converts to what on this deployment",
        auth=[],
        responses=inline_serializer(
            "CapabilityGraph",
            {
                "graph": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
                "pairs": serializers.ListField(child=serializers.DictField()),
                "converters": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        graph = converters.graph()
        return Response(
            {
                "graph": {source: list(targets) for source, targets in graph.items()},
                "pairs": [
                    {"source": source, "target": target, "via": route.via, "converter": route.last.converter.name}
                    for source, targets in graph.items()
                    for target, route in targets.items()
                ],
                "converters": [
                    {
                        "name": c.name,
                        "available": c.available(),
                        "sources": list(c.sources),
                        "targets": list(c.targets),
                        "requires": c.requirements(),
                    }
                    for c in converters.ALL_CONVERTERS
                ],
            }
        )


# --- seed 000 status API -------------------------------------------------------------------


class StatusApiView(APIView):
    required_scopes = {"GET": UPLOAD_READ}

    @extend_schema(
        tags=["seed-000"],
        summary="Status, progress and result (with a download URL) of an async job",
        parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH)],
        responses=inline_serializer(
            "JobStatus",
            {
                "job_id": serializers.CharField(),
                "status": serializers.ChoiceField(choices=JobStatus.choices),
                "progress": serializers.IntegerField(),
                "source_file_id": serializers.CharField(),
                "target_format": serializers.CharField(),
                "attempts": serializers.IntegerField(),
                "result": serializers.DictField(allow_null=True),
                "error": serializers.CharField(
                    allow_null=True, help_text="A failed or canceled job's error code (seed 000's `error`), else null."
                ),
                "details": inline_serializer(
                    "JobStatusErrorDetails",
                    {"message": serializers.CharField()},
                    allow_null=True,
                    help_text="With `error`: `{message}`, human readable (seed 000's `details.message`), else null.",
                ),
                "created_at": serializers.DateTimeField(),
                "started_at": serializers.DateTimeField(allow_null=True),
                "finished_at": serializers.DateTimeField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.get_job_for(identity_of(request), job_id)
        return Response(
            {
                "job_id": job.pk,
                "status": job.status,
                "progress": job.progress,
                "source_file_id": job.source_id,
                "target_format": job.target_format,
                "attempts": job.attempts,
                "result": s.download_link(job, request),
                # A failure in seed 000's terms: the code in `error`, the message in `details`.
                "error": job.error_code or None,
                "details": {"message": job.error_message} if job.error_code else None,
                "created_at": job.created_at,
                "started_at": job.started_at,
                "finished_at": job.finished_at,
            }
        )


# --- format catalogue (public) ----------------------------------------------------------------


class _Public(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


FORMAT_FIELDS = {
    "id": serializers.CharField(),
    "name": serializers.CharField(),
    "category": serializers.CharField(),
    "extensions": serializers.ListField(child=serializers.CharField()),
    "mime_types": serializers.ListField(child=serializers.CharField()),
    "description": serializers.CharField(),
    "read": serializers.BooleanField(),
    "write": serializers.BooleanField(),
    "metadata": serializers.ListField(child=serializers.CharField()),
    "template": serializers.BooleanField(),
    "conversions": serializers.DictField(required=False),
}
FORMAT_SCHEMA = inline_serializer("Format", FORMAT_FIELDS)


def _format_or_404(fmt: str) -> formats.Format:
    found = formats.find(fmt)
    if found is None:
        raise NotFound(f"Unknown format {fmt[:40]!r}.")
    return found


class FormatListView(_Public):
    @extend_schema(
        tags=["reference"],
        summary="The format catalogue",
        auth=[],
        responses=inline_serializer("Format", FORMAT_FIELDS, many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(formats.catalogue())


class FormatDetailView(_Public):
    @extend_schema(tags=["reference"], summary="One format, with its conversions in and out", auth=[], responses=FORMAT_SCHEMA)
    def get(self, request: Request, fmt: str) -> Response:
        return Response(formats.describe(_format_or_404(fmt), detail=True))


class FormatTemplateView(_Public):
    @extend_schema(
        tags=["reference"],
        summary="A small example file of this format, generated by our code",
        auth=[],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    def get(self, request: Request, fmt: str) -> HttpResponse:
        made = formats.template(_format_or_404(fmt))
        if made is None:
            raise NotFound("There is no template for this format.", code="NO_TEMPLATE")
        body, name, mime = made
        response = HttpResponse(body, content_type=mime)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response


class MetadataHelpView(_Public):
    @extend_schema(
        tags=["reference"],
        summary="The metadata guide, as data",
        auth=[],
        responses=inline_serializer(
            "MetadataHelp",
            {
                "title": serializers.CharField(),
                "summary": serializers.CharField(),
                "containers": serializers.ListField(child=serializers.DictField()),
                "conversions": serializers.ListField(child=serializers.CharField()),
                "privacy": serializers.ListField(child=serializers.CharField()),
                "endpoints": serializers.DictField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(formats.METADATA_HELP)
