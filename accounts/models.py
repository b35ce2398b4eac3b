from __future__ import annotations

import hashlib

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone

from accounts.scopes import ROLE_CHOICES, ROLE_MEMBER
from fileconvert.ids import ID_MAX_LENGTH, IdFactory


class Organization(models.Model):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("org"), editable=False)
    name = models.CharField(max_length=200)
    # Identity of this tenant at the trusted gateway, when it was provisioned from there.
    gateway_ref = models.CharField(max_length=200, unique=True, null=True, blank=True)
    is_anonymous = models.BooleanField(default=False, help_text="Ephemeral organization of an anonymous session.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Anonymous organizations are purged after this.")
    storage_quota_bytes = models.BigIntegerField(help_text="Total bytes this organization may store.")
    file_quota = models.PositiveIntegerField(default=100_000, help_text="How many files this organization may store.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["is_anonymous", "expires_at"], name="org_anon_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class StorageUsage(models.Model):
    """What an organization stores: bytes and files counted against its quotas. Kept by the
    database itself (triggers on every model registered in ``fileconvert.usage``: uploads
    migration 0005), so every write path counts, ORM or not, and a quota check reads one
    row instead of summing every file. ``manage.py usage_recount`` checks it against the sum."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True, related_name="storage_usage")
    bytes = models.BigIntegerField(default=0)
    files = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.bytes} bytes in {self.files} files"


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra["is_platform_admin"] = True
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("usr"), editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    gateway_ref = models.CharField(max_length=200, unique=True, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    is_platform_admin = models.BooleanField(default=False, help_text="Platform staff: opens the Django admin and the review API.")
    is_anonymous_session = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email

    # The Django admin is for platform admins only; they hold every permission there.
    @property
    def is_staff(self) -> bool:
        return self.is_active and self.is_platform_admin

    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.is_staff

    def has_perms(self, perm_list: object, obj: object = None) -> bool:
        return self.is_staff

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_staff


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES, default=ROLE_MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.organization_id} as {self.role}"


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random strings, so a fast hash is enough: no dictionary to attack.
    return hashlib.sha256(secret.encode()).hexdigest()


class Credential(models.Model):
    """A hashed bearer secret, found by its public prefix; never stored in clear."""

    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True

    def is_usable(self, now: object = None) -> bool:
        moment = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


class ApiKey(Credential):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("key"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    scopes = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["organization", "-id"], name="apikey_org_idx")]

    def __str__(self) -> str:
        return f"{self.name or self.id} ({self.prefix}…)"


class AccessToken(Credential):
    """Bearer token: an anonymous session or a signed-in user, bound to one organization."""

    KIND_ANONYMOUS = "anonymous"
    KIND_USER = "user"

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("tok"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="access_tokens")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    kind = models.CharField(max_length=16, choices=[(KIND_ANONYMOUS, "Anonymous"), (KIND_USER, "User")])

    def __str__(self) -> str:
        return f"{self.kind} token {self.prefix}…"


class OrgSetting(models.Model):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("set"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="settings")
    key = models.CharField(max_length=100)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="orgsetting_unique_key")]
        indexes = [models.Index(fields=["organization", "-id"], name="orgsetting_org_idx")]

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"


class FeatureFlag(models.Model):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("flg"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="feature_flags")
    name = models.SlugField(max_length=100)
    enabled = models.BooleanField(default=False)
    description = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="featureflag_unique_name")]
        indexes = [models.Index(fields=["organization", "-id"], name="featureflag_org_idx")]

    def __str__(self) -> str:
        return f"{self.name}={'on' if self.enabled else 'off'}"


class AuditEvent(models.Model):
    """Append-only: rows are inserted by ``accounts.services.audit_record`` and never changed."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("aud"), editable=False)
    # Foreign keys are indexed in Meta.indexes (decision 0014); the organization by audit_org_idx.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="audit_events", db_index=False)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    actor_label = models.CharField(max_length=300, help_text="Who acted, kept even if the user is deleted.")
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=140, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-id"], name="audit_org_idx"),
            models.Index(fields=["organization", "action", "-id"], name="audit_org_action_idx"),
            models.Index(fields=["actor"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise RuntimeError("audit events are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]
