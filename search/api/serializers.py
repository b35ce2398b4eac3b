from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers


class SearchParamsSerializer(serializers.Serializer):
    q = serializers.CharField(trim_whitespace=True, help_text='Words, "quoted phrases", -excluded words, `or`.')
    dataset = serializers.CharField(required=False, help_text="A dataset id of the caller's organization.")
    type = serializers.CharField(
        required=False, max_length=200, help_text="A content type (`application/pdf`) or a kind (`pdf`)."
    )
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; files created at or after.")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; files created before.")

    def validate_q(self, value: str) -> str:
        maximum = settings.FILECONVERT["SEARCH_MAX_QUERY_CHARS"]
        if len(value) > maximum:
            raise serializers.ValidationError(f"must be at most {maximum} characters.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError({"created_before": ["must be later than created_after."]})
        return attrs


class SearchHitSerializer(serializers.Serializer):
    id = serializers.CharField(source="file.id")
    organization_id = serializers.CharField(source="file.organization_id")
    name = serializers.CharField(source="file.name")
    content_type = serializers.CharField(source="file.content_type")
    kind = serializers.CharField(source="file.kind")
    size = serializers.IntegerField(source="file.size", allow_null=True)
    dataset_id = serializers.CharField(source="file.dataset_id", allow_null=True)
    dataset_name = serializers.CharField(source="file.dataset.name", allow_null=True, default=None)
    created_at = serializers.DateTimeField(source="file.created_at")
    score = serializers.FloatField(help_text="Relevance; higher is better. Comparable within one search only.")
    snippet = serializers.CharField(
        help_text="HTML-escaped excerpt; the only markup is `<mark>…</mark>` around the matched words."
    )


class SearchPageSerializer(serializers.Serializer):
    items = SearchHitSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page.")
    has_more = serializers.BooleanField()
