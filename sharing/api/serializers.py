from __future__ import annotations

from typing import Any

from rest_framework import serializers

from sharing.models import ShareLink
from uploads.models import Visibility


class DownloadLinkRequestSerializer(serializers.Serializer):
    expires_in = serializers.IntegerField(required=False, min_value=1, help_text="Seconds; default and cap in settings.")


class DownloadLinkSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Relative: /api/files/{org_id}/{file_id}/download?dl=<token>.")
    expires_at = serializers.DateTimeField()


class ShareRequestSerializer(serializers.Serializer):
    visibility = serializers.ChoiceField(choices=Visibility.choices)
    expires_in = serializers.IntegerField(required=False, min_value=1, help_text="Seconds from now.")
    expires_at = serializers.DateTimeField(required=False)
    users = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=500)
    emails = serializers.ListField(child=serializers.EmailField(), required=False, max_length=500)


class ShareLinkSerializer(serializers.ModelSerializer):
    file_id = serializers.CharField(read_only=True)
    users = serializers.ListField(source="allowed_user_ids", child=serializers.CharField(), read_only=True)
    emails = serializers.ListField(source="allowed_emails", child=serializers.CharField(), read_only=True)
    created_by = serializers.CharField(source="created_by_id", read_only=True, allow_null=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ShareLink
        fields = [
            "id",
            "file_id",
            "visibility",
            "users",
            "emails",
            "expires_at",
            "revoked_at",
            "revoked_reason",
            "download_count",
            "last_downloaded_at",
            "created_by",
            "created_at",
            "active",
        ]
        read_only_fields = fields

    def get_active(self, link: ShareLink) -> bool:
        return link.is_live()


class ShareResultSerializer(serializers.Serializer):
    file_id = serializers.CharField()
    visibility = serializers.CharField(help_text="The file's visibility now.")
    url = serializers.CharField(allow_null=True, help_text="The share link (shown once); null when made private.")
    token = serializers.CharField(allow_null=True, help_text="The link's secret (shown once).")
    link = ShareLinkSerializer(allow_null=True)
    revoked_links = serializers.IntegerField(help_text="Links ended by this change.")

    def to_representation(self, instance: Any) -> Any:
        return instance
