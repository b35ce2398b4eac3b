from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from fileconvert.ids import ID_MAX_LENGTH, IdFactory
from uploads.models import StoredFile


class ShareVisibility(models.TextChoices):
    """Who a link serves (a file visibility other than private). Ordered from narrowest to widest (``RANK``)."""

    RESTRICTED = "restricted", "Named users or e-mails (signed in)"
    ORG = "org", "Members of the organization"
    PUBLIC = "public", "Anyone with the link"


# A link works only while the file's visibility is at least as wide as the link's audience:
# making a file private (rank 0) ends every link; narrowing public → org ends public links.
RANK = {"private": 0, ShareVisibility.RESTRICTED: 1, ShareVisibility.ORG: 2, ShareVisibility.PUBLIC: 3}


class ShareLink(models.Model):
    """A link to one file. The token is shown once; only its SHA-256 is stored, found by
    its public 12-hex-character prefix (as API keys are)."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("shr"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="share_links")
    file = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="share_links")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    visibility = models.CharField(max_length=16, choices=ShareVisibility.choices)
    allowed_user_ids = models.JSONField(default=list, blank=True)
    allowed_emails = models.JSONField(default=list, blank=True, help_text="Lower-cased.")
    content_sha256 = models.CharField(max_length=64, blank=True, help_text="The content the link was made for.")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)
    download_count = models.PositiveBigIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-id"], name="sharelink_org_idx"),
            models.Index(fields=["file"], name="sharelink_live_idx", condition=Q(revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.visibility} link {self.prefix}… to {self.file_id}"

    def is_live(self, now: object = None) -> bool:
        moment = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)
