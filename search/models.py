"""The search index: one document per searchable file.

The rows hold what extraction produced (``title`` = filename and document title,
``body`` = capped text); the backend-specific index lives next to them: the ``vector``
column (PostgreSQL, GIN-indexed) or the ``search_fts`` FTS5 table kept in step with
this table by triggers (SQLite). See docs/decisions/0004-search-backends.md.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from uploads.models import StoredFile


class SearchDocument(models.Model):
    # An integer key: FTS5's external-content table addresses rows by an integer rowid.
    id = models.BigAutoField(primary_key=True)
    file = models.OneToOneField(StoredFile, on_delete=models.CASCADE, related_name="search_document")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    title = models.TextField(blank=True, help_text="Filename words and the document's own title.")
    body = models.TextField(blank=True, help_text="Extracted text, capped (SEARCH_MAX_TEXT_CHARS).")
    fields = models.JSONField(default=dict, blank=True, help_text="Structured fields: EXIF, audio tags, PDF info…")
    content_sha256 = models.CharField(max_length=64, blank=True, help_text="The bytes this document was extracted from.")
    truncated = models.BooleanField(default=False)
    error_code = models.CharField(max_length=64, blank=True, help_text="Why only the filename was indexed, if so.")
    indexed_at = models.DateTimeField(default=timezone.now)
    # PostgreSQL only (always NULL on SQLite); the GIN index on it is created by migration 0002.
    vector = SearchVectorField(null=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["organization", "file"], name="searchdoc_org_file_idx")]

    def __str__(self) -> str:
        return f"search document of {self.file_id}"
