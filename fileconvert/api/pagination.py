"""Keyset ("cursor") pagination: ``limit`` + an opaque ``cursor``; no OFFSET, no COUNT.

A page is ordered by one field plus the primary key as a tie-breaker; the cursor
holds the last row's values of both, so a page is an index range scan whatever
its depth, and rows inserted meanwhile never shift later pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.db.models import Model, Q, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from fileconvert.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def parse_limit(request: Request, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed("limit must be an integer.", fields={"limit": ["must be an integer"]}) from None
    if value < 1 or value > maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}.", fields={"limit": [f"1..{maximum}"]})
    return value


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != size or not all(isinstance(v, (str, int, float)) for v in values):
        raise ValidationFailed("cursor is invalid.", fields={"cursor": ["is not a cursor from this listing"]})
    return values


def keyset_page(
    queryset: QuerySet[Any], *, ordering: str = "-pk", limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``queryset`` in ``ordering`` (a field name, ``-`` for descending)."""
    descending = ordering.startswith("-")
    field = ordering.lstrip("-")
    pk_name = queryset.model._meta.pk.name  # type: ignore[union-attr]
    fields = [pk_name] if field in ("pk", pk_name) else [field, pk_name]
    order_by = [f"-{f}" if descending else f for f in fields]
    qs = queryset.order_by(*order_by)
    if cursor:
        values = decode_cursor(cursor, len(fields))
        op = "lt" if descending else "gt"
        if len(fields) == 1:
            qs = qs.filter(**{f"{fields[0]}__{op}": values[0]})
        else:
            # The leading ``field >= value`` (``<=`` descending) is implied by the OR below; it gives
            # the database an index range to start from instead of filtering every earlier row.
            bound = Q(**{f"{fields[0]}__{'lte' if descending else 'gte'}": values[0]})
            after = Q(**{f"{fields[0]}__{op}": values[0]}) | Q(**{fields[0]: values[0], f"{fields[1]}__{op}": values[1]})
            qs = qs.filter(bound & after)
    rows = list(qs[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([_value(last, f) for f in fields])
    return rows, next_cursor


def _value(row: Model | dict[str, Any], field: str) -> Any:
    value = row[field] if isinstance(row, dict) else getattr(row, field)
    return value.isoformat() if hasattr(value, "isoformat") else value


class KeysetPagination(BasePagination):
    """DRF pagination class behind every list endpoint (``ordering`` from the view)."""

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any]:
        ordering = getattr(view, "list_ordering", "-pk")
        rows, self.next_cursor = keyset_page(
            queryset, ordering=ordering, limit=parse_limit(request), cursor=request.query_params.get("cursor") or None
        )
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"items": data, "next_cursor": self.next_cursor, "has_more": self.next_cursor is not None})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "next_cursor", "has_more"],
            "properties": {
                "items": schema,
                "next_cursor": {"type": "string", "nullable": True, "description": "Pass as `cursor` for the next page."},
                "has_more": {"type": "boolean"},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "Opaque cursor from `next_cursor`.",
            },
        ]
