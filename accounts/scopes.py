"""API scopes and what each organization role may hold.

A credential's effective scopes are its own scopes intersected with what the
holder's current role allows, so demoting a user shrinks their keys at once.
"""

from __future__ import annotations

UPLOAD_CREATE = "upload.create"
UPLOAD_READ = "upload.read"
UPLOAD_EDIT = "upload.edit"
CONVERT = "convert"
ORG_READ = "org.read"
ORG_MANAGE = "org.manage"
ADMIN_ALL = "admin:*"

SCOPE_HELP = {
    UPLOAD_CREATE: "Create uploads and files.",
    UPLOAD_READ: "Read uploads, files, tasks and jobs.",
    UPLOAD_EDIT: "Move, modify, share and delete uploads and files.",
    CONVERT: "Start and retry conversion jobs.",
    ORG_READ: "Read the organization's settings, flags, members, usage and audit log.",
    ORG_MANAGE: "Change the organization's settings, flags and members.",
    ADMIN_ALL: "Platform administration (review queue); platform admins only.",
}
ALL_SCOPES = tuple(SCOPE_HELP)

ROLE_OWNER = "owner"
ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"
ROLE_VIEWER = "viewer"
ROLES = (ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER)
ROLE_CHOICES = [(r, r.capitalize()) for r in ROLES]

_VIEWER = frozenset({UPLOAD_READ, ORG_READ})
_MEMBER = _VIEWER | {UPLOAD_CREATE, UPLOAD_EDIT, CONVERT}
_ADMIN = _MEMBER | {ORG_MANAGE}
ROLE_SCOPES: dict[str, frozenset[str]] = {
    ROLE_VIEWER: _VIEWER,
    ROLE_MEMBER: frozenset(_MEMBER),
    ROLE_ADMIN: frozenset(_ADMIN),
    ROLE_OWNER: frozenset(_ADMIN),
}
ANONYMOUS_SCOPES = frozenset(_MEMBER)


def scopes_for_role(role: str, *, is_platform_admin: bool = False) -> frozenset[str]:
    scopes = ROLE_SCOPES.get(role, frozenset())
    return scopes | {ADMIN_ALL} if is_platform_admin else scopes


def scope_satisfied(held: frozenset[str], required: str) -> bool:
    if required in held:
        return True
    # "admin:*" covers every "admin:<thing>" scope.
    return required.startswith("admin:") and ADMIN_ALL in held
