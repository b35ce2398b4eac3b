"""The resolved caller of a request: who, in which organization, with what powers."""

from __future__ import annotations

from dataclasses import dataclass, field

from accounts.models import Organization, User
from accounts.scopes import scope_satisfied

MODE_API_KEY = "api_key"
MODE_BEARER = "bearer"
MODE_ANONYMOUS = "anonymous"
MODE_GATEWAY = "gateway"
MODE_SYSTEM = "system"


@dataclass(frozen=True)
class Identity:
    org: Organization
    user: User | None
    role: str
    mode: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    credential_id: str | None = None

    @property
    def is_platform_admin(self) -> bool:
        return bool(self.user and self.user.is_active and self.user.is_platform_admin)

    def has_scope(self, scope: str) -> bool:
        return scope_satisfied(self.scopes, scope)

    @property
    def label(self) -> str:
        who = self.user.email if self.user else "system"
        return f"{who} via {self.credential_id}" if self.credential_id else f"{who} ({self.mode})"


def system_identity(org: Organization) -> Identity:
    """For work the platform does on its own (beat tasks, operator commands)."""
    return Identity(org=org, user=None, role="system", mode=MODE_SYSTEM)
