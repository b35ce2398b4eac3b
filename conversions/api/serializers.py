from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversions.models import ConversionJob, JobStatus
from fileconvert.signed import file_token_make
from uploads.models import Visibility

ERROR_FIELD = {"type": "object", "nullable": True, "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
RESULT_FIELD = {
    "type": "object",
    "nullable": True,
    "properties": {
        "file_id": {"type": "string"},
        "name": {"type": "string"},
        "size": {"type": "integer"},
        "content_type": {"type": "string"},
        "download_url": {"type": "string"},
        "expires_at": {"type": "integer", "description": "Epoch seconds when download_url stops working."},
    },
}


def download_link(job: ConversionJob, request: Any = None) -> dict[str, Any] | None:
    """The result file with a signed ``?dl=`` link (served by the download endpoint)."""
    result = job.result
    if job.status != JobStatus.SUCCEEDED or result is None:
        return None
    token, expires_at = file_token_make(
        purpose="download", file_id=result.pk, sha256=result.sha256, ttl=int(settings.FILECONVERT["CONVERT_DOWNLOAD_TTL_SECONDS"])
    )
    path = f"/api/files/{result.organization_id}/{result.pk}/download?dl={token}"
    return {
        "file_id": result.pk,
        "name": result.name,
        "size": result.size,
        "content_type": result.content_type or "",
        "download_url": request.build_absolute_uri(path) if request is not None else path,
        "expires_at": expires_at,
    }


class JobSerializer(serializers.ModelSerializer):
    organization_id = serializers.CharField(read_only=True)
    source_file_id = serializers.CharField(source="source_id", read_only=True)
    result_file_id = serializers.CharField(source="result_id", read_only=True, allow_null=True)
    retry_of_id = serializers.CharField(read_only=True, allow_null=True)
    created_by = serializers.CharField(source="created_by_id", read_only=True, allow_null=True)
    via_format = serializers.CharField(read_only=True, allow_blank=True)
    error = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()

    class Meta:
        model = ConversionJob
        fields = [
            "id",
            "organization_id",
            "source_file_id",
            "source_format",
            "target_format",
            "via_format",
            "options",
            "visibility",
            "status",
            "progress",
            "error",
            "result_file_id",
            "result",
            "facts",
            "attempts",
            "retry_of_id",
            "created_by",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ERROR_FIELD)
    def get_error(self, obj: ConversionJob) -> dict[str, str] | None:
        return {"code": obj.error_code, "message": obj.error_message} if obj.error_code else None

    @extend_schema_field(RESULT_FIELD)
    def get_result(self, obj: ConversionJob) -> dict[str, Any] | None:
        return download_link(obj, self.context.get("request"))


class JobCreateSerializer(serializers.Serializer):
    file_id = serializers.CharField(max_length=40, help_text="An existing file of your organization.")
    target_format = serializers.CharField(max_length=32)
    options = serializers.JSONField(
        required=False, help_text="Options of the target (see GET /api/files/{org}/{id}/conversions)."
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False, help_text="Default: the source's.")

    def validate_options(self, value: Any) -> Any:
        return _options_object(value)


class JobUpdateSerializer(serializers.Serializer):
    visibility = serializers.ChoiceField(
        choices=Visibility.choices, help_text="Of the output; while the job is queued or running."
    )


class ConvertRequestSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="The file to convert (multipart).")
    upload_id = serializers.CharField(
        required=False, help_text="With `x-source-type: file`: an upload (file) id instead of inline bytes."
    )
    target_format = serializers.CharField(max_length=32)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    options = serializers.CharField(required=False, help_text="JSON object of options.")


def _options_object(value: Any) -> dict[str, Any]:
    import json

    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("must be a JSON object") from None
    if not isinstance(value, dict):
        raise serializers.ValidationError("must be a JSON object")
    return value


parse_options = _options_object
