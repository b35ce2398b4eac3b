from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.identity import Identity
from accounts.models import ApiKey, FeatureFlag, Membership, OrgSetting
from accounts.scopes import ORG_MANAGE, ORG_READ
from fileconvert.api.pagination import keyset_page, parse_limit
from fileconvert.api.permissions import identity_of
from fileconvert.api.registry import ResourceViewSet, register
from fileconvert.api.throttling import CredentialIssueThrottle
from fileconvert.errors import NotFound, Unauthorized
from fileconvert.usage import storage_usage


def paged(request: Request, queryset: QuerySet[Any], serializer: Any, ordering: str = "-pk") -> Response:
    rows, cursor = keyset_page(
        queryset, ordering=ordering, limit=parse_limit(request), cursor=request.query_params.get("cursor") or None
    )
    return Response({"items": serializer(rows, many=True).data, "next_cursor": cursor, "has_more": cursor is not None})


# --- Registered resources -------------------------------------------------------------


@register
class SettingViewSet(ResourceViewSet):
    resource_name = "setting"
    resource_path = "settings"
    resource_title = "Setting"
    resource_description = "Per-organization settings. Unset keys take their documented default; DELETE resets a key."
    list_columns = ["key", "value", "updated_at"]
    read_scope = ORG_READ
    write_scope = ORG_MANAGE
    queryset = OrgSetting.objects.all()
    serializer_class = s.SettingSerializer
    create_serializer_class = s.SettingCreateSerializer
    update_serializer_class = s.SettingUpdateSerializer
    filterset_fields = ["key"]

    def perform_create_service(self, data: dict[str, Any]) -> OrgSetting:
        return services.setting_create(actor=self.identity, key=data["key"], value=data["value"])

    def perform_update_service(self, instance: OrgSetting, data: dict[str, Any]) -> OrgSetting:
        if "value" not in data:
            return instance
        return services.setting_set(actor=self.identity, key=instance.key, value=data["value"])

    def perform_destroy_service(self, instance: OrgSetting) -> None:
        services.setting_reset(actor=self.identity, setting=instance)


@register
class FeatureFlagViewSet(ResourceViewSet):
    resource_name = "feature-flag"
    resource_path = "feature-flags"
    resource_title = "Feature flag"
    resource_description = "Switches that turn product features on or off for this organization."
    list_columns = ["name", "enabled", "description", "updated_at"]
    read_scope = ORG_READ
    write_scope = ORG_MANAGE
    queryset = FeatureFlag.objects.all()
    serializer_class = s.FeatureFlagSerializer
    update_serializer_class = s.FeatureFlagUpdateSerializer
    filterset_fields = ["name", "enabled"]

    def perform_create_service(self, data: dict[str, Any]) -> FeatureFlag:
        return services.feature_flag_create(
            actor=self.identity, name=data["name"], enabled=data.get("enabled", False), description=data.get("description", "")
        )

    def perform_update_service(self, instance: FeatureFlag, data: dict[str, Any]) -> FeatureFlag:
        return services.feature_flag_update(
            actor=self.identity, flag=instance, enabled=data.get("enabled"), description=data.get("description")
        )

    def perform_destroy_service(self, instance: FeatureFlag) -> None:
        services.feature_flag_delete(actor=self.identity, flag=instance)


@register
class UserViewSet(ResourceViewSet):
    resource_name = "user"
    resource_path = "users"
    resource_title = "User"
    resource_description = "Members of this organization and their roles. DELETE removes the user from the organization."
    list_columns = ["email", "name", "role", "is_active", "joined_at"]
    read_scope = ORG_READ
    write_scope = ORG_MANAGE
    queryset = Membership.objects.select_related("user")
    lookup_field = "user_id"
    list_ordering = "-user_id"
    serializer_class = s.MemberSerializer
    create_serializer_class = s.MemberCreateSerializer
    update_serializer_class = s.MemberUpdateSerializer
    filterset_fields = ["role"]

    def perform_create_service(self, data: dict[str, Any]) -> Membership:
        return services.user_create(
            actor=self.identity,
            org=self.identity.org,
            email=data["email"],
            role=data["role"],
            name=data.get("name", ""),
            password=data.get("password") or None,
        )

    def perform_update_service(self, instance: Membership, data: dict[str, Any]) -> Membership:
        return services.membership_update(
            actor=self.identity,
            membership=instance,
            role=data.get("role"),
            name=data.get("name"),
            is_active=data.get("is_active"),
        )

    def perform_destroy_service(self, instance: Membership) -> None:
        services.membership_remove(actor=self.identity, membership=instance)


# --- Account endpoints ------------------------------------------------------------------


class AnonymousSessionView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [CredentialIssueThrottle]

    @extend_schema(
        tags=["auth"], summary="Mint an anonymous session token", request=None, responses={201: s.TokenSerializer}, auth=[]
    )
    def post(self, request: Request) -> Response:
        token, raw = services.anonymous_session_create()
        return Response(
            {
                "token": raw,
                "token_type": "Bearer",
                "expires_at": token.expires_at,
                "org_id": token.organization_id,
                "user_id": token.user_id,
            },
            status=status.HTTP_201_CREATED,
        )


class TokenView(APIView):
    permission_classes = [AllowAny]

    def _signing_in(self) -> bool:
        return getattr(getattr(self, "request", None), "method", None) == "POST"

    def get_authenticators(self) -> list[Any]:
        return [] if self._signing_in() else super().get_authenticators()

    def get_throttles(self) -> list[Any]:
        return [CredentialIssueThrottle()] if self._signing_in() else super().get_throttles()

    @extend_schema(
        tags=["auth"],
        summary="Sign in with e-mail and password for a bearer token",
        request=s.TokenRequestSerializer,
        responses={201: s.TokenSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = s.TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, raw = services.user_token_create(
            email=body.validated_data["email"], password=body.validated_data["password"], org_id=body.validated_data.get("org_id")
        )
        return Response(
            {
                "token": raw,
                "token_type": "Bearer",
                "expires_at": token.expires_at,
                "org_id": token.organization_id,
                "user_id": token.user_id,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(tags=["auth"], summary="Revoke the bearer token used for this request (sign out)", responses={204: None})
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, Identity):
            raise Unauthorized()
        services.token_revoke(actor=identity_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(tags=["auth"], summary="Echo the resolved identity", responses=s.IdentitySerializer)
    def get(self, request: Request) -> Response:
        identity = identity_of(request)
        user = identity.user
        org = identity.org
        return Response(
            {
                "auth_mode": identity.mode,
                "role": identity.role,
                "scopes": sorted(identity.scopes),
                "credential_id": identity.credential_id,
                "user": None
                if user is None
                else {
                    "id": user.id,
                    "email": user.email,
                    "name": user.name,
                    "is_platform_admin": user.is_platform_admin,
                },
                "organization": {"id": org.id, "name": org.name, "is_anonymous": org.is_anonymous, "expires_at": org.expires_at},
            }
        )


class ApiKeyListView(APIView):
    required_scopes: dict[str, str] = {}

    @extend_schema(
        tags=["api-keys"],
        summary="List your API keys (never the secrets)",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses=s.ApiKeySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return paged(request, selectors.api_keys_visible_to(identity_of(request)), s.ApiKeySerializer)

    @extend_schema(
        tags=["api-keys"],
        summary="Create an API key (the secret is returned once)",
        request=s.ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        body = s.ApiKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key, raw = services.api_key_create(
            actor=identity_of(request),
            name=body.validated_data["name"],
            scopes=body.validated_data.get("scopes"),
            expires_at=body.validated_data.get("expires_at"),
        )
        return Response(s.ApiKeyCreatedSerializer(key, context={"raw_key": raw}).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    def _get(self, request: Request, key_id: str) -> ApiKey:
        key = selectors.api_keys_visible_to(identity_of(request)).filter(pk=key_id).first()
        if key is None:
            raise NotFound()
        return key

    @extend_schema(tags=["api-keys"], summary="Fetch one API key", responses=s.ApiKeySerializer)
    def get(self, request: Request, key_id: str) -> Response:
        return Response(s.ApiKeySerializer(self._get(request, key_id)).data)

    @extend_schema(tags=["api-keys"], summary="Revoke an API key (effective immediately)", responses=s.ApiKeySerializer)
    def delete(self, request: Request, key_id: str) -> Response:
        key = services.api_key_revoke(actor=identity_of(request), key=self._get(request, key_id))
        return Response(s.ApiKeySerializer(key).data)


class UsageView(APIView):
    required_scopes = {"GET": ORG_READ}

    @extend_schema(tags=["account"], summary="Storage bytes, quota and file count", responses=s.UsageSerializer)
    def get(self, request: Request) -> Response:
        org = identity_of(request).org
        used, files = storage_usage(org)
        return Response(
            {
                "storage_bytes": used,
                "quota_bytes": org.storage_quota_bytes,
                "remaining_bytes": max(org.storage_quota_bytes - used, 0),
                "file_count": files,
                "file_quota": org.file_quota,
            }
        )


class AuditLogView(APIView):
    required_scopes = {"GET": ORG_READ}

    @extend_schema(
        tags=["account"],
        summary="The organization's audit log, newest first",
        parameters=[
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
            OpenApiParameter("action", str, description="Only this action, e.g. api_key.create."),
            OpenApiParameter("target_id", str, description="Only events about this object."),
        ],
        responses=s.AuditEventSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        events = selectors.audit_events_for(identity_of(request).org)
        for param in ("action", "target_id"):
            value = request.query_params.get(param)
            if value:
                events = events.filter(**{param: value})
        return paged(request, events, s.AuditEventSerializer)
