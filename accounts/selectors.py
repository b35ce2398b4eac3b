from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.identity import Identity
from accounts.models import ApiKey, AuditEvent, FeatureFlag, Membership, Organization, OrgSetting, User
from accounts.org_settings import SETTINGS
from accounts.scopes import ORG_MANAGE


def org_setting_value(org: Organization, key: str) -> Any:
    row = OrgSetting.objects.filter(organization=org, key=key).values_list("value", flat=True).first()
    return org_setting_resolved(org, key, row)


def org_setting_resolved(org: Organization, key: str, stored: Any) -> Any:
    """The setting's value from what its row holds (``None``: no row, the default applies),
    for a caller that read the row with others (``uploads.processing``)."""
    return SETTINGS[key].default(org) if stored is None else stored


def feature_enabled(org: Organization, name: str, default: bool = False) -> bool:
    value = FeatureFlag.objects.filter(organization=org, name=name).values_list("enabled", flat=True).first()
    return default if value is None else value


def api_keys_visible_to(identity: Identity) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.filter(organization=identity.org).select_related("user")
    if identity.has_scope(ORG_MANAGE):
        return keys
    return keys.filter(user=identity.user)


def memberships_of(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=org).select_related("user")


def membership_of(org: Organization, user: User) -> Membership | None:
    return Membership.objects.filter(organization=org, user=user).first()


def audit_events_for(org: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=org)
