"""Version history of metadata edits. The bytes live in ``uploads.StoredFile``; a row here
records each write-back (a new version of the file, or a copy) and what it changed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from fileconvert.ids import ID_MAX_LENGTH, IdFactory
from uploads.models import StoredFile


class MetadataEdit(models.Model):
    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("mde"), editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    file = models.ForeignKey(
        StoredFile, on_delete=models.CASCADE, related_name="metadata_edits", help_text="The file holding the result."
    )
    source = models.ForeignKey(
        StoredFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The file that was read."
    )
    version = models.PositiveIntegerField(help_text="1 for the first edit of this file's bytes.")
    as_copy = models.BooleanField(default=False)
    previous_sha256 = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    operations = models.JSONField(default=dict, help_text="The request: anonymize, strip_all, set, remove.")
    changed = models.JSONField(default=list)
    skipped = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["file", "version"], name="metadata_edit_unique_version")]
        indexes = [models.Index(fields=["organization", "-id"], name="metadata_edit_org_idx")]

    def __str__(self) -> str:
        return f"{self.file_id} v{self.version}"
