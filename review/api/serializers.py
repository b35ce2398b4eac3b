from __future__ import annotations

from rest_framework import serializers

from uploads.models import StoredFile


class ReviewItemSerializer(serializers.ModelSerializer):
    """Seed 001 ReviewItem."""

    object_id = serializers.CharField(source="pk", read_only=True)
    tenant_id = serializers.CharField(source="organization_id", read_only=True)
    dataset_id = serializers.CharField(read_only=True, allow_null=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True, allow_null=True, default=None)
    filename = serializers.CharField(source="name", read_only=True)
    size_bytes = serializers.IntegerField(source="size", read_only=True, allow_null=True)
    uploaded_at = serializers.DateTimeField(source="confirmed_at", read_only=True, allow_null=True)
    review_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = StoredFile
        fields = [
            "object_id",
            "tenant_id",
            "dataset_id",
            "dataset_name",
            "filename",
            "content_type",
            "size_bytes",
            "uploaded_at",
            "review_expires_at",
        ]
        read_only_fields = fields


class ReviewObjectSerializer(ReviewItemSerializer):
    """Seed 001 staged object detail (plus the rejection reason once there is one)."""

    checksum_sha256 = serializers.CharField(source="sha256", read_only=True)
    reviewed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    review_reason = serializers.CharField(read_only=True, help_text="Why the object was rejected (empty otherwise).")

    class Meta(ReviewItemSerializer.Meta):
        fields = [
            "object_id",
            "tenant_id",
            "dataset_id",
            "dataset_name",
            "filename",
            "content_type",
            "size_bytes",
            "checksum_sha256",
            "status",
            "review_state",
            "uploaded_at",
            "review_expires_at",
            "reviewed_at",
            "review_reason",
        ]
        read_only_fields = fields


class ReviewQueueSerializer(serializers.Serializer):
    items = ReviewItemSerializer(many=True)
    total = serializers.IntegerField(help_text="Objects pending review (all of them, not this page).")
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page.")
    has_more = serializers.BooleanField()


class ApproveResultSerializer(serializers.Serializer):
    object_id = serializers.CharField()
    status = serializers.CharField()
    review_state = serializers.CharField()
    reviewed_at = serializers.DateTimeField()


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="Why the object was rejected; visible to the tenant.")


class PreviewLinkSerializer(serializers.Serializer):
    preview_url = serializers.URLField()
    expires_at = serializers.DateTimeField()
