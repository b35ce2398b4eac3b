"""Authorisation: an authenticated Identity, then the scope each action needs.

Views declare ``required_scopes`` as ``{action_or_method: scope}`` (``"*"`` as the
fallback); an action absent from the map needs no scope beyond being signed in.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.identity import Identity
from fileconvert.errors import Forbidden


def identity_of(request: Request) -> Identity:
    identity = getattr(request, "auth", None)
    assert isinstance(identity, Identity), "view reached without an authenticated identity"
    return identity


def required_scope(view: Any, request: Request) -> str | None:
    scopes: dict[str, str] = getattr(view, "required_scopes", {}) or {}
    action = getattr(view, "action", None)
    for key in (action, request.method, "*"):
        if key and key in scopes:
            return scopes[key]
    return None


class IsAuthenticatedIdentity(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(getattr(request, "auth", None), Identity):
            return False
        scope = required_scope(view, request)
        if scope and not request.auth.has_scope(scope):
            raise Forbidden(f"This credential lacks the {scope} scope.", code="INSUFFICIENT_SCOPE", required_scope=scope)
        return True


class IsPlatformAdmin(BasePermission):
    """The review API: only users with ``is_platform_admin`` (and the ``admin:*`` scope)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        identity = getattr(request, "auth", None)
        if not isinstance(identity, Identity):
            return False
        if not identity.is_platform_admin or not identity.has_scope("admin:*"):
            raise Forbidden("Platform admin privileges are required.")
        return True
