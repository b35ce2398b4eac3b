"""Rate limits in the shared cache (Redis when configured).

Anonymous callers are keyed on the trusted client address: ``X-Forwarded-For`` is
only read through the ``TRUSTED_PROXY_COUNT`` proxies we run (DRF ``NUM_PROXIES``),
so rotating it does not mint new buckets.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.identity import Identity


class _SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate from settings at request time (DRF binds it at import)."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class IdentityRateThrottle(_SettingsRateThrottle):
    scope = "identity"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        identity = getattr(request, "auth", None)
        if not isinstance(identity, Identity):
            return None
        who = identity.credential_id or (identity.user.pk if identity.user else identity.org.pk)
        return self.cache_format % {"scope": self.scope, "ident": who}


class AnonymousRateThrottle(_SettingsRateThrottle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(getattr(request, "auth", None), Identity):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CredentialIssueThrottle(_SettingsRateThrottle):
    """Minting sessions and signing in: a tight per-address limit."""

    scope = "credentials"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
