"""System checks: a misspelt REVIEW_OVERDUE_POLICY fails ``manage.py check`` and start-up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_overdue_policy(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from review.services import POLICIES

    value = str(settings.FILECONVERT.get("REVIEW_OVERDUE_POLICY", "")).strip().lower()
    if value in POLICIES:
        return []
    return [Error(f"REVIEW_OVERDUE_POLICY must be one of {', '.join(POLICIES)}, got {value!r}.", id="review.E001")]
