"""Writes for organizations, users, credentials, settings, flags and the audit log.

Every function is keyword-only, atomic, and records what it did in the audit log.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ParamSpec

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.identity import MODE_ANONYMOUS, MODE_API_KEY, MODE_BEARER, MODE_GATEWAY, Identity
from accounts.models import (
    AccessToken,
    ApiKey,
    AuditEvent,
    Credential,
    FeatureFlag,
    Membership,
    Organization,
    OrgSetting,
    User,
    hash_secret,
)
from accounts.org_settings import SETTINGS
from accounts.scopes import (
    ADMIN_ALL,
    ALL_SCOPES,
    ANONYMOUS_SCOPES,
    ROLE_MEMBER,
    ROLE_OWNER,
    ROLES,
    scopes_for_role,
)
from fileconvert import fastsql
from fileconvert.context import current_client_ip, current_request_id
from fileconvert.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "fck"
TOKEN_PREFIX = "fct"
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _conf(name: str) -> Any:
    return settings.FILECONVERT[name]


P = ParamSpec("P")

# --- Audit ------------------------------------------------------------------------


def audit_event(
    *,
    org: Organization | None = None,
    org_id: str = "",
    actor: Identity | None,
    action: str,
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit event, not yet written: ``fastsql.insert_statement`` it with the statements
    it belongs with (``audit_record`` writes it at once)."""
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(target.pk)
    user = actor.user if actor else None
    # By id when the caller has no Organization loaded (a worker finishing a job): no query for it.
    owner = {"organization": org} if org is not None else {"organization_id": org_id}
    if not (org is not None or org_id):
        raise ValueError("an audit event needs org or org_id")
    event = AuditEvent(
        **owner,
        actor=user,
        actor_label=actor.label if actor else "system",
        action=action,
        target_type=target_type,
        target_id=target_id,
        request_id=current_request_id() if current_request_id() != "-" else "",
        ip=current_client_ip(),
        details=details or {},
    )
    return event


def _written(build: Callable[P, AuditEvent]) -> Callable[P, AuditEvent]:
    @functools.wraps(build)  # audit_event's signature, for help() and type checkers
    def write(*args: P.args, **kwargs: P.kwargs) -> AuditEvent:
        # Every audited action writes one: its INSERT is compiled once (fileconvert.fastsql).
        return fastsql.insert(build(*args, **kwargs))

    write.__name__ = write.__qualname__ = "audit_record"
    write.__doc__ = "Write one audit event (``audit_event``'s arguments) in the caller's transaction."
    return write


audit_record = _written(audit_event)


# --- Organizations and users --------------------------------------------------------


def organization_create(
    *, actor: Identity | None, name: str, is_anonymous: bool = False, gateway_ref: str | None = None
) -> Organization:
    name = name.strip()
    if not name:
        raise ValidationFailed("name is required.", fields={"name": ["required"]})
    with transaction.atomic():
        org = Organization.objects.create(
            name=name[:200],
            is_anonymous=is_anonymous,
            gateway_ref=gateway_ref,
            expires_at=timezone.now() + timedelta(seconds=_conf("ANON_SESSION_TTL_SECONDS")) if is_anonymous else None,
            storage_quota_bytes=_conf("ANON_STORAGE_QUOTA_BYTES" if is_anonymous else "DEFAULT_STORAGE_QUOTA_BYTES"),
            file_quota=_conf("ANON_FILE_QUOTA" if is_anonymous else "DEFAULT_FILE_QUOTA"),
        )
        audit_record(org=org, actor=actor, action="organization.create", target=org, details={"name": org.name})
    return org


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of: {', '.join(ROLES)}.", fields={"role": [f"one of {', '.join(ROLES)}"]})


def _check_password(password: str | None, user: User | None = None) -> None:
    if password:
        try:
            validate_password(password, user)
        except DjangoValidationError as exc:
            raise ValidationFailed(exc.messages[0], fields={"password": exc.messages}) from None


def _guard_role_change(*, actor: Identity | None, membership_role: str | None, new_role: str | None) -> None:
    """Only owners create, change or remove owners (the system may do anything)."""
    if actor is None or actor.role == "system":
        return
    touches_owner = ROLE_OWNER in (membership_role, new_role)
    if touches_owner and actor.role != ROLE_OWNER:
        raise Forbidden("Only an owner can grant, change or remove the owner role.")


def user_create(
    *,
    actor: Identity | None,
    org: Organization,
    email: str,
    role: str = ROLE_MEMBER,
    name: str = "",
    password: str | None = None,
    is_platform_admin: bool = False,
) -> Membership:
    """Add a user to ``org`` (creating the account if the e-mail is new)."""
    _check_role(role)
    _guard_role_change(actor=actor, membership_role=None, new_role=role)
    email = User.objects.normalize_email(email).strip().lower()
    if not email or "@" not in email:
        raise ValidationFailed("email is invalid.", fields={"email": ["invalid"]})
    _check_password(password)
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        created = user is None
        if user is None:
            user = User.objects.create_user(email, password, name=name, is_platform_admin=is_platform_admin)
        else:
            changed = []
            if password:
                user.set_password(password)
                changed.append("password")
            if is_platform_admin and not user.is_platform_admin:
                user.is_platform_admin = True
                changed.append("is_platform_admin")
            if changed:
                user.save(update_fields=changed)
        try:
            with transaction.atomic():
                membership = Membership.objects.create(organization=org, user=user, role=role)
        except IntegrityError:
            raise Conflict("This user is already a member of the organization.", code="ALREADY_MEMBER") from None
        audit_record(
            org=org,
            actor=actor,
            action="user.create" if created else "membership.create",
            target=user,
            details={"email": email, "role": role, "platform_admin": user.is_platform_admin},
        )
    return membership


def membership_update(
    *, actor: Identity, membership: Membership, role: str | None = None, name: str | None = None, is_active: bool | None = None
) -> Membership:
    changes: dict[str, Any] = {}
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
        user = membership.user
        if role is not None and role != membership.role:
            _check_role(role)
            _guard_role_change(actor=actor, membership_role=membership.role, new_role=role)
            if membership.role == ROLE_OWNER:
                _ensure_another_owner(membership)
            changes["role"] = [membership.role, role]
            membership.role = role
            membership.save(update_fields=["role"])
        user_fields = []
        if name is not None and name != user.name:
            changes["name"] = [user.name, name]
            user.name = name
            user_fields.append("name")
        if is_active is not None and is_active != user.is_active:
            if actor.user and actor.user.pk == user.pk and not is_active:
                raise Conflict("You cannot deactivate yourself.")
            if user.memberships.exclude(organization=membership.organization).exists():
                raise Forbidden("This user belongs to other organizations; remove them from this one instead.")
            _guard_role_change(actor=actor, membership_role=membership.role, new_role=None)
            changes["is_active"] = [user.is_active, is_active]
            user.is_active = is_active
            user_fields.append("is_active")
        if user_fields:
            user.save(update_fields=user_fields)
        if changes:
            audit_record(org=membership.organization, actor=actor, action="user.update", target=user, details=changes)
    return membership


def _ensure_another_owner(membership: Membership) -> None:
    others = Membership.objects.filter(organization=membership.organization, role=ROLE_OWNER).exclude(pk=membership.pk)
    if not others.exists():
        raise Conflict("An organization must keep at least one owner.", code="LAST_OWNER")


def membership_remove(*, actor: Identity, membership: Membership) -> None:
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
        _guard_role_change(actor=actor, membership_role=membership.role, new_role=None)
        if membership.role == ROLE_OWNER:
            _ensure_another_owner(membership)
        # The user's credentials for this organization go with the membership.
        ApiKey.objects.filter(organization=membership.organization, user=membership.user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        AccessToken.objects.filter(organization=membership.organization, user=membership.user).delete()
        membership.delete()
        audit_record(
            org=membership.organization,
            actor=actor,
            action="user.remove",
            target=membership.user,
            details={"email": membership.user.email},
        )


# --- Credentials --------------------------------------------------------------------


def _new_secret(kind: str) -> tuple[str, str, str]:
    """(raw credential, lookup prefix, hash). Raw form: ``<kind>_<prefix>_<secret>``."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    raw = f"{kind}_{prefix}_{secret}"
    return raw, prefix, hash_secret(raw)


def _lookup(model: type[Credential], kind: str, raw: str) -> Any:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != kind or len(parts[1]) != 12:
        return None
    row = model.objects.select_related("organization", "user").filter(prefix=parts[1]).first()  # type: ignore[attr-defined]
    if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(raw.strip())):
        return None
    return row


def _touch(row: Credential) -> None:
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        type(row).objects.filter(pk=row.pk).update(last_used_at=now)  # type: ignore[attr-defined]


def _membership_role(org: Organization, user: User) -> str | None:
    return Membership.objects.filter(organization=org, user=user).values_list("role", flat=True).first()


def api_key_authenticate(*, raw: str) -> Identity:
    key = _lookup(ApiKey, API_KEY_PREFIX, raw)
    if key is None or not key.is_usable() or not key.user.is_active:
        raise Unauthorized("Invalid API key.")
    role = _membership_role(key.organization, key.user)
    if role is None:
        raise Unauthorized("Invalid API key.")
    _touch(key)
    allowed = scopes_for_role(role, is_platform_admin=key.user.is_platform_admin)
    return Identity(
        org=key.organization,
        user=key.user,
        role=role,
        mode=MODE_API_KEY,
        scopes=frozenset(key.scopes) & allowed,
        credential_id=key.id,
    )


def token_authenticate(*, raw: str) -> Identity:
    token = _lookup(AccessToken, TOKEN_PREFIX, raw)
    if token is None or not token.is_usable() or not token.user.is_active:
        raise Unauthorized("Invalid or expired token.")
    org = token.organization
    if token.kind == AccessToken.KIND_ANONYMOUS:
        if org.expires_at and org.expires_at <= timezone.now():
            raise Unauthorized("Invalid or expired token.")
        return Identity(
            org=org, user=token.user, role=ROLE_MEMBER, mode=MODE_ANONYMOUS, scopes=ANONYMOUS_SCOPES, credential_id=token.id
        )
    role = _membership_role(org, token.user)
    if role is None:
        raise Unauthorized("Invalid or expired token.")
    _touch(token)
    scopes = scopes_for_role(role, is_platform_admin=token.user.is_platform_admin)
    return Identity(org=org, user=token.user, role=role, mode=MODE_BEARER, scopes=scopes, credential_id=token.id)


def api_key_create(
    *, actor: Identity, name: str = "", scopes: list[str] | None = None, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key for the caller; returns the row and the raw key (shown once)."""
    if actor.user is None or actor.mode == MODE_ANONYMOUS:
        raise Forbidden("Anonymous sessions cannot create API keys.")
    requested = list(dict.fromkeys(scopes)) if scopes else [s for s in ALL_SCOPES if s != ADMIN_ALL and actor.has_scope(s)]
    unknown = [s for s in requested if s not in ALL_SCOPES]
    if unknown:
        raise ValidationFailed(f"Unknown scope: {unknown[0]}.", fields={"scopes": [f"unknown: {', '.join(unknown)}"]})
    beyond = [s for s in requested if not actor.has_scope(s)]
    if beyond:
        raise Forbidden(f"You cannot grant a scope you do not hold: {', '.join(beyond)}.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("expires_at must be in the future.", fields={"expires_at": ["must be in the future"]})
    raw, prefix, digest = _new_secret(API_KEY_PREFIX)
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization=actor.org,
            user=actor.user,
            name=name.strip()[:200],
            scopes=requested,
            prefix=prefix,
            secret_hash=digest,
            expires_at=expires_at,
        )
        audit_record(
            org=actor.org, actor=actor, action="api_key.create", target=key, details={"name": key.name, "scopes": requested}
        )
    return key, raw


def api_key_issue_for(*, org: Organization, user: User, name: str, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Operator path (management commands): issue a key without a calling identity."""
    role = _membership_role(org, user)
    if role is None:
        raise NotFound("That user is not a member of the organization.")
    allowed = scopes_for_role(role, is_platform_admin=user.is_platform_admin)
    requested = scopes or sorted(allowed)
    beyond = [s for s in requested if s not in allowed]
    if beyond:
        raise Forbidden(f"The user's role does not allow: {', '.join(beyond)}.")
    raw, prefix, digest = _new_secret(API_KEY_PREFIX)
    with transaction.atomic():
        key = ApiKey.objects.create(organization=org, user=user, name=name, scopes=requested, prefix=prefix, secret_hash=digest)
        audit_record(org=org, actor=None, action="api_key.create", target=key, details={"name": name, "scopes": requested})
    return key, raw


def api_key_revoke(*, actor: Identity, key: ApiKey) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db()
        if updated:
            audit_record(org=key.organization, actor=actor, action="api_key.revoke", target=key, details={"name": key.name})
    return key


def anonymous_session_create() -> tuple[AccessToken, str]:
    ttl = timedelta(seconds=_conf("ANON_SESSION_TTL_SECONDS"))
    with transaction.atomic():
        org = organization_create(actor=None, name="Anonymous session", is_anonymous=True)
        user = User.objects.create_user(f"anon-{org.id.split('_', 1)[1]}@anonymous.invalid", is_anonymous_session=True)
        Membership.objects.create(organization=org, user=user, role=ROLE_MEMBER)
        raw, prefix, digest = _new_secret(TOKEN_PREFIX)
        token = AccessToken.objects.create(
            organization=org,
            user=user,
            kind=AccessToken.KIND_ANONYMOUS,
            prefix=prefix,
            secret_hash=digest,
            expires_at=timezone.now() + ttl,
        )
    return token, raw


def user_token_create(*, email: str, password: str, org_id: str | None = None) -> tuple[AccessToken, str]:
    """Sign in with e-mail and password for a bearer token in one of the user's organizations."""
    user = User.objects.filter(email=User.objects.normalize_email(email).strip().lower(), is_active=True).first()
    if user is None:
        User().set_password(password)  # spend the hashing time anyway: timing must not reveal accounts
        raise Unauthorized("Invalid e-mail or password.")
    if not user.check_password(password) or user.is_anonymous_session:
        raise Unauthorized("Invalid e-mail or password.")
    memberships = Membership.objects.filter(user=user).select_related("organization").order_by("created_at")
    if org_id:
        memberships = memberships.filter(organization_id=org_id)
    membership = memberships.first()
    if membership is None:
        raise Unauthorized("Invalid e-mail or password.") if not org_id else NotFound("Organization not found.")
    raw, prefix, digest = _new_secret(TOKEN_PREFIX)
    with transaction.atomic():
        token = AccessToken.objects.create(
            organization=membership.organization,
            user=user,
            kind=AccessToken.KIND_USER,
            prefix=prefix,
            secret_hash=digest,
            expires_at=timezone.now() + timedelta(seconds=_conf("USER_TOKEN_TTL_SECONDS")),
        )
        identity = Identity(
            org=membership.organization, user=user, role=membership.role, mode=MODE_BEARER, credential_id=token.id
        )
        audit_record(org=membership.organization, actor=identity, action="token.create", target=token)
    return token, raw


def token_revoke(*, actor: Identity) -> None:
    if actor.credential_id and actor.mode in (MODE_BEARER, MODE_ANONYMOUS):
        AccessToken.objects.filter(pk=actor.credential_id).update(revoked_at=timezone.now())
        audit_record(org=actor.org, actor=actor, action="token.revoke", target_type="accesstoken", target_id=actor.credential_id)


def gateway_authenticate(*, presented_key: str, org_ref: str, user_ref: str, role: str) -> Identity:
    """Trust the gateway's identity headers; provision the org and user on first sight."""
    expected = _conf("GATEWAY_KEY")
    if not expected or not hmac.compare_digest(presented_key.encode(), expected.encode()):
        raise Unauthorized("Invalid gateway key.")
    role = (role or ROLE_MEMBER).strip().lower()
    if not org_ref or not user_ref or role not in ROLES or len(org_ref) > 200 or len(user_ref) > 200:
        raise Unauthorized("Incomplete or invalid gateway identity.")
    with transaction.atomic():
        org = Organization.objects.filter(gateway_ref=org_ref).first()
        if org is None:
            try:
                with transaction.atomic():
                    org = organization_create(actor=None, name=f"Gateway organization {org_ref}", gateway_ref=org_ref)
            except IntegrityError:  # provisioned concurrently by another request
                org = Organization.objects.get(gateway_ref=org_ref)
        user = User.objects.filter(gateway_ref=user_ref).first()
        if user is None:
            try:
                with transaction.atomic():
                    user = User.objects.create_user(
                        f"gw-{secrets.token_hex(8)}@gateway.invalid", gateway_ref=user_ref, name=user_ref
                    )
            except IntegrityError:
                user = User.objects.get(gateway_ref=user_ref)
        if not user.is_active:
            raise Unauthorized("This user is deactivated.")
        membership, created = Membership.objects.get_or_create(organization=org, user=user, defaults={"role": role})
        if not created and membership.role != role:
            # The gateway is the authority on roles.
            Membership.objects.filter(pk=membership.pk).update(role=role)
    return Identity(
        org=org, user=user, role=role, mode=MODE_GATEWAY, scopes=scopes_for_role(role, is_platform_admin=user.is_platform_admin)
    )


# --- Settings and feature flags -----------------------------------------------------


def setting_set(*, actor: Identity, key: str, value: Any) -> OrgSetting:
    spec = SETTINGS.get(key)
    if spec is None:
        raise ValidationFailed(f"Unknown setting: {key}.", fields={"key": [f"one of {', '.join(SETTINGS)}"]})
    try:
        value = spec.validate(value)
    except ValueError as exc:
        raise ValidationFailed(f"value {exc}.", fields={"value": [str(exc)]}) from None
    with transaction.atomic():
        row = OrgSetting.objects.select_for_update().filter(organization=actor.org, key=key).first()
        old = row.value if row else spec.default(actor.org)
        if row is None:
            row = OrgSetting.objects.create(organization=actor.org, key=key, value=value)
        else:
            row.value = value
            row.save(update_fields=["value", "updated_at"])
        audit_record(org=actor.org, actor=actor, action="setting.set", target=row, details={"key": key, "old": old, "new": value})
    return row


def setting_create(*, actor: Identity, key: str, value: Any) -> OrgSetting:
    if OrgSetting.objects.filter(organization=actor.org, key=key).exists():
        raise Conflict(f"Setting {key} already exists; PATCH it instead.", code="ALREADY_EXISTS")
    return setting_set(actor=actor, key=key, value=value)


def setting_reset(*, actor: Identity, setting: OrgSetting) -> None:
    setting_id = setting.id  # delete() clears the pk
    with transaction.atomic():
        setting.delete()
        audit_record(
            org=actor.org,
            actor=actor,
            action="setting.reset",
            target_type="orgsetting",
            target_id=setting_id,
            details={"key": setting.key},
        )


def feature_flag_create(*, actor: Identity, name: str, enabled: bool, description: str = "") -> FeatureFlag:
    with transaction.atomic():
        try:
            with transaction.atomic():
                flag = FeatureFlag.objects.create(organization=actor.org, name=name, enabled=enabled, description=description)
        except IntegrityError:
            raise Conflict(f"Feature flag {name} already exists.", code="ALREADY_EXISTS") from None
        audit_record(
            org=actor.org, actor=actor, action="feature_flag.create", target=flag, details={"name": name, "enabled": enabled}
        )
    return flag


def feature_flag_update(
    *, actor: Identity, flag: FeatureFlag, enabled: bool | None = None, description: str | None = None
) -> FeatureFlag:
    changes: dict[str, Any] = {}
    with transaction.atomic():
        flag = FeatureFlag.objects.select_for_update().get(pk=flag.pk)
        if enabled is not None and enabled != flag.enabled:
            changes["enabled"] = [flag.enabled, enabled]
            flag.enabled = enabled
        if description is not None and description != flag.description:
            changes["description"] = [flag.description, description]
            flag.description = description
        if changes:
            flag.save()
            audit_record(org=actor.org, actor=actor, action="feature_flag.update", target=flag, details=changes)
    return flag


def feature_flag_delete(*, actor: Identity, flag: FeatureFlag) -> None:
    flag_id = flag.id  # delete() clears the pk
    with transaction.atomic():
        flag.delete()
        audit_record(
            org=actor.org,
            actor=actor,
            action="feature_flag.delete",
            target_type="featureflag",
            target_id=flag_id,
            details={"name": flag.name},
        )


# --- Housekeeping ---------------------------------------------------------------------


def purge_expired_anonymous_orgs(*, now: datetime | None = None, batch: int = 200) -> int:
    """Delete anonymous organizations (and everything they own) past their TTL."""
    moment = now or timezone.now()
    ids = list(Organization.objects.filter(is_anonymous=True, expires_at__lte=moment).values_list("id", flat=True)[:batch])
    purged = 0
    for org_id in ids:
        with transaction.atomic():
            org = Organization.objects.select_for_update(skip_locked=True).filter(pk=org_id, is_anonymous=True).first()
            if org is None:
                continue
            user_ids = list(Membership.objects.filter(organization=org).values_list("user_id", flat=True))
            org.delete()
            User.objects.filter(pk__in=user_ids, is_anonymous_session=True).delete()
            purged += 1
    if purged:
        logger.info("purged expired anonymous organizations", extra={"count": purged})
    return purged
