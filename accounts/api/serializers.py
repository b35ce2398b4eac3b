from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, AuditEvent, FeatureFlag, Membership, OrgSetting
from accounts.org_settings import SETTINGS
from accounts.scopes import ALL_SCOPES, ROLE_CHOICES, SCOPE_HELP
from fileconvert.api.serializers import ReadFastMixin


class SettingSerializer(ReadFastMixin, serializers.ModelSerializer):
    help_text = serializers.SerializerMethodField(help_text="What the setting does.")

    class Meta:
        model = OrgSetting
        fields = ["id", "key", "value", "help_text", "updated_at"]
        read_only_fields = fields

    def get_help_text(self, obj: OrgSetting) -> str:
        spec = SETTINGS.get(obj.key)
        return spec.help if spec else ""


class SettingCreateSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=[(k, s.help) for k, s in SETTINGS.items()], help_text="Setting name.")
    value = serializers.JSONField(help_text="New value; its type depends on the key.")


class SettingUpdateSerializer(serializers.Serializer):
    value = serializers.JSONField(help_text="New value; its type depends on the key.")


class FeatureFlagSerializer(ReadFastMixin, serializers.ModelSerializer):
    class Meta:
        model = FeatureFlag
        fields = ["id", "name", "enabled", "description", "updated_at"]
        read_only_fields = ["id", "updated_at"]


class FeatureFlagUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeatureFlag
        fields = ["enabled", "description"]
        extra_kwargs = {"enabled": {"required": False}, "description": {"required": False}}


class MemberSerializer(ReadFastMixin, serializers.ModelSerializer):
    id = serializers.CharField(source="user.id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    is_active = serializers.BooleanField(source="user.is_active", read_only=True)
    is_platform_admin = serializers.BooleanField(source="user.is_platform_admin", read_only=True)
    last_login = serializers.DateTimeField(source="user.last_login", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "is_active", "is_platform_admin", "joined_at", "last_login"]
        read_only_fields = fields


class MemberCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=ROLE_CHOICES, default="member")
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=128,
        style={"input_type": "password"},
        help_text="Optional; lets the user sign in for a bearer token.",
    )


class MemberUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=ROLE_CHOICES, required=False)
    is_active = serializers.BooleanField(required=False)


class ApiKeySerializer(ReadFastMixin, serializers.ModelSerializer):
    key_id = serializers.CharField(source="id", read_only=True)
    user_id = serializers.CharField(read_only=True)
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "key_id",
            "name",
            "prefix",
            "scopes",
            "user_id",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked",
        ]
        read_only_fields = fields

    def get_revoked(self, obj: ApiKey) -> bool:
        return obj.revoked_at is not None


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.SerializerMethodField(help_text="The secret. Shown only in this response; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = ["key", *ApiKeySerializer.Meta.fields]

    def get_key(self, obj: ApiKey) -> str:
        return self.context["raw_key"]


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=[(s, SCOPE_HELP[s]) for s in ALL_SCOPES]),
        required=False,
        allow_empty=False,
        max_length=len(ALL_SCOPES),
        help_text="Defaults to every scope you hold except admin:*.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})
    org_id = serializers.CharField(required=False, max_length=40, help_text="Which of your organizations; default: the first.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_at = serializers.DateTimeField()
    org_id = serializers.CharField()
    user_id = serializers.CharField()


class AuditEventSerializer(ReadFastMixin, serializers.ModelSerializer):
    actor_id = serializers.CharField(read_only=True)
    actor = serializers.CharField(source="actor_label", read_only=True)
    organization_id = serializers.CharField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "action",
            "actor",
            "actor_id",
            "organization_id",
            "target_type",
            "target_id",
            "request_id",
            "ip",
            "details",
        ]
        read_only_fields = fields


class IdentitySerializer(serializers.Serializer):
    auth_mode = serializers.CharField()
    role = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    credential_id = serializers.CharField(allow_null=True)
    user = serializers.DictField(allow_null=True)
    organization = serializers.DictField()


class UsageSerializer(serializers.Serializer):
    storage_bytes = serializers.IntegerField()
    quota_bytes = serializers.IntegerField()
    remaining_bytes = serializers.IntegerField()
    file_count = serializers.IntegerField()
    file_quota = serializers.IntegerField()
