"""The review app's own data: the admin's view of the queue and overdue escalations.

Review state itself lives on ``uploads.StoredFile`` (``review_state``, ``review_expires_at``,
``reviewed_at``, ``reviewed_by``, ``review_reason``); this app only adds what uploads
does not need to know about.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from uploads.models import StoredFile


class ReviewQueueItem(StoredFile):
    """A proxy of StoredFile so the Django admin has a "Review queue" next to "Files"."""

    class Meta:
        proxy = True
        verbose_name = "review queue item"
        verbose_name_plural = "review queue"


class ReviewEscalation(models.Model):
    """A pending file that passed its review deadline (policy ``escalate``): recorded once."""

    file = models.OneToOneField(StoredFile, on_delete=models.CASCADE, related_name="review_escalation", primary_key=True)
    escalated_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(help_text="The review deadline that was missed.")

    class Meta:
        indexes = [models.Index(fields=["escalated_at"], name="review_escalation_at_idx")]

    def __str__(self) -> str:
        return f"escalation of {self.file_id}"
