"""The three ways a caller proves who they are; each resolves an ``Identity``.

DRF sets ``request.user`` to the user and ``request.auth`` to the Identity, whose
organization scopes every query the request makes.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts import services
from accounts.identity import Identity


def _header(request: Request, name: str) -> str:
    # META keys are upper-cased, so any header case matches (X-API-Key, x-api-key).
    return request.META.get("HTTP_" + name.upper().replace("-", "_"), "")


class GatewayAuthentication(BaseAuthentication):
    """``X-Auth-Org-Id`` / ``X-Auth-User-Id`` / ``X-Auth-Role``, trusted only with ``X-Gateway-Key``."""

    def authenticate(self, request: Request) -> tuple[Any, Identity] | None:
        presented = _header(request, "X-Gateway-Key")
        if not presented:
            return None  # identity headers without the key are ignored
        identity = services.gateway_authenticate(
            presented_key=presented,
            org_ref=_header(request, "X-Auth-Org-Id").strip(),
            user_ref=_header(request, "X-Auth-User-Id").strip(),
            role=_header(request, "X-Auth-Role"),
        )
        return identity.user, identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="fileconvert"'


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Identity] | None:
        raw = _header(request, "X-API-Key")
        if not raw:
            return None
        identity = services.api_key_authenticate(raw=raw)
        return identity.user, identity

    def authenticate_header(self, request: Request) -> str:
        return "ApiKey"


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Identity] | None:
        header = _header(request, "Authorization")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        identity = services.token_authenticate(raw=raw)
        return identity.user, identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="fileconvert"'
