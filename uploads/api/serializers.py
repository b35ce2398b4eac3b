from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fileconvert.api.serializers import ReadFastMixin
from uploads.models import StoredFile, Task, Upload, Visibility
from uploads.selectors import counts_from_annotations, task_counts, upload_status


class FileSerializer(ReadFastMixin, serializers.ModelSerializer):
    organization_id = serializers.CharField(read_only=True)
    dataset_id = serializers.CharField(read_only=True, allow_null=True)
    upload_id = serializers.CharField(read_only=True, allow_null=True)
    parent_id = serializers.CharField(read_only=True, allow_null=True)
    uploaded_by = serializers.CharField(source="uploaded_by_id", read_only=True, allow_null=True)
    has_thumbnail = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = StoredFile
        fields = [
            "id",
            "organization_id",
            "name",
            "size",
            "sha256",
            "content_type",
            "claimed_content_type",
            "kind",
            "status",
            "review_state",
            "visibility",
            "dataset_id",
            "upload_id",
            "parent_id",
            "uploaded_by",
            "metadata",
            "has_thumbnail",
            "error",
            "created_at",
            "confirmed_at",
            "expires_at",
        ]
        read_only_fields = fields

    def get_has_thumbnail(self, obj: StoredFile) -> bool:
        return bool(obj.thumbnail_key)

    @extend_schema_field(
        {"type": "object", "nullable": True, "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
    )
    def get_error(self, obj: StoredFile) -> dict[str, str] | None:
        return {"code": obj.error_code, "message": obj.error_message} if obj.error_code else None


class FileCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file's bytes (multipart).")
    name = serializers.CharField(required=False, max_length=1000, help_text="Display name; defaults to the part's file name.")
    dataset_id = serializers.CharField(required=False, max_length=40)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class FileUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=1000)
    dataset_id = serializers.CharField(required=False, allow_null=True, max_length=40)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class UploadInitSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=10000, help_text="Original name (sanitised for display).")
    size = serializers.IntegerField(required=False, min_value=0, help_text="Announced size in bytes.")
    content_type = serializers.CharField(required=False, max_length=200, allow_blank=True)
    sha256 = serializers.CharField(required=False, max_length=64, allow_blank=True, help_text="Verified against the bytes.")
    dataset_id = serializers.CharField(required=False, max_length=40)
    dataset = serializers.CharField(required=False, max_length=200, help_text="Dataset name (created if new).")
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class UploadInitResponseSerializer(serializers.Serializer):
    method = serializers.CharField()
    upload_url = serializers.CharField()
    file_id = serializers.CharField()
    upload_id = serializers.CharField()
    max_bytes = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class TaskSerializer(ReadFastMixin, serializers.ModelSerializer):
    upload_id = serializers.CharField(read_only=True)
    file_id = serializers.CharField(read_only=True)
    filename = serializers.CharField(source="file.name", read_only=True)
    content_type = serializers.CharField(source="file.content_type", read_only=True)
    size = serializers.IntegerField(source="file.size", read_only=True, allow_null=True)
    parent_file_id = serializers.CharField(source="file.parent_id", read_only=True, allow_null=True)
    review_state = serializers.CharField(source="file.review_state", read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "upload_id",
            "file_id",
            "kind",
            "status",
            "filename",
            "content_type",
            "size",
            "parent_file_id",
            "review_state",
            "error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "object", "nullable": True, "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
    )
    def get_error(self, obj: Task) -> dict[str, str] | None:
        return {"code": obj.error_code, "message": obj.error_message} if obj.error_code else None


class UploadSerializer(ReadFastMixin, serializers.ModelSerializer):
    organization_id = serializers.CharField(read_only=True)
    dataset_id = serializers.CharField(read_only=True, allow_null=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True, allow_null=True, default=None)
    status = serializers.SerializerMethodField()
    task_counts = serializers.SerializerMethodField()
    tasks = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = [
            "id",
            "name",
            "source",
            "status",
            "organization_id",
            "dataset_id",
            "dataset_name",
            "task_counts",
            "tasks",
            "created_at",
        ]
        read_only_fields = fields

    def _counts(self, obj: Upload) -> dict[str, int]:
        if not hasattr(obj, "_counts_cache"):
            obj._counts_cache = counts_from_annotations(obj) if hasattr(obj, "n_processing") else task_counts(obj)  # type: ignore[attr-defined]
        return obj._counts_cache  # type: ignore[attr-defined,no-any-return]

    @extend_schema_field(serializers.ChoiceField(choices=["PROCESSING", "REVIEWING", "COMPLETED", "PARTIAL", "FAILED"]))
    def get_status(self, obj: Upload) -> str:
        return upload_status(self._counts(obj))

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_task_counts(self, obj: Upload) -> dict[str, int]:
        return {k: v for k, v in self._counts(obj).items() if v}

    @extend_schema_field(TaskSerializer(many=True))
    def get_tasks(self, obj: Upload) -> list[dict[str, Any]]:
        tasks = obj.tasks.select_related("file").order_by("id")
        return TaskSerializer(tasks, many=True).data  # type: ignore[return-value]


class UploadMoveSerializer(serializers.Serializer):
    dataset_id = serializers.CharField(required=False, allow_null=True, max_length=40)
    project_id = serializers.CharField(required=False, allow_null=True, max_length=40, help_text="Alias of dataset_id.")
    dataset = serializers.CharField(required=False, max_length=200, help_text="Dataset name in the target (created if new).")
    project = serializers.CharField(required=False, max_length=200, help_text="Alias of dataset.")
    organization_id = serializers.CharField(
        required=False, max_length=40, help_text="Target organization (you must be its admin)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not any(k in attrs for k in ("dataset_id", "project_id", "dataset", "project", "organization_id")):
            raise serializers.ValidationError("Say where to move the upload: dataset_id, dataset or organization_id.")
        return attrs
