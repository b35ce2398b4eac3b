"""The success envelope ``{"data": …, "request_id": "req_…", "timestamp": "…Z"}``."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from fileconvert.context import current_request_id


def now_iso() -> str:
    return timezone.now().isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "request_id": current_request_id(), "timestamp": now_iso()}


class EnvelopeRenderer(JSONRenderer):
    """Wraps successful payloads; errors (already shaped by the handler) pass through.

    A view whose documented shape is not the envelope (the seed endpoints that
    predate it) sets ``envelope = False``.
    """

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        context = renderer_context or {}
        response = context.get("response")
        view = context.get("view")
        if response is not None:
            if response.status_code == 204:
                return b""
            if response.status_code < 400 and getattr(view, "envelope", True):
                data = envelope(data)
        return super().render(data, accepted_media_type, renderer_context)


class RawJSONRenderer(JSONRenderer):
    """For endpoints that serve a documented non-envelope shape."""
