"""Expiry: unconfirmed uploads, anonymous sessions' files and retention, in batches."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from fileconvert import storage
from uploads.models import StoredFile

logger = logging.getLogger(__name__)
PARTIAL_MAX_AGE_SECONDS = 6 * 3600


def sweep_expired_files(*, now: datetime | None = None, batch: int = 200, max_batches: int = 50) -> int:
    from uploads.services import file_delete

    moment = now or timezone.now()
    removed = 0
    for _ in range(max_batches):
        # Roots only: a parent's deletion takes its derived files with it.
        candidates = list(
            StoredFile.objects.filter(expires_at__lte=moment, parent__isnull=True)
            .select_related("organization")
            .order_by("expires_at")[:batch]
        )
        if not candidates:
            break
        for stored in candidates:
            file_delete(actor=None, file=stored, reason="expire")
            removed += 1
    _sweep_partials()
    if removed:
        logger.info("expired files removed", extra={"count": removed})
    return removed


def _sweep_partials() -> None:
    """Temporary files of streams whose process died before it could clean up."""
    if storage.is_s3():
        return
    partial = Path(settings.MEDIA_ROOT) / ".partial"
    if not partial.is_dir():
        return
    cutoff = time.time() - PARTIAL_MAX_AGE_SECONDS
    for path in partial.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue
