"""Storage usage per organization, summed over every model that holds stored bytes.

Apps that store bytes call ``register_storage_model`` from their ``AppConfig.ready``;
quota checks and ``GET /api/usage`` read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import Count, Model, Q, Sum

from fileconvert import fastsql


@dataclass(frozen=True)
class StorageModel:
    model: type[Model]
    size_field: str
    counted: Q  # which rows hold bytes that count against the quota


_MODELS: list[StorageModel] = []


def register_storage_model(model: type[Model], *, size_field: str, counted: Q | None = None) -> None:
    _MODELS.append(StorageModel(model, size_field, counted or Q()))


_SENTINEL = "\x00organization\x00"


def _compiled(entry: StorageModel, connection: Any) -> tuple[str, list[Any]]:
    """The SUM/COUNT of ``entry`` for one organization, compiled by the ORM once
    (``fastsql.once``): every upload confirmation and every conversion output asks."""

    def build() -> tuple[str, list[Any]]:
        query = (
            entry.model._default_manager.filter(entry.counted, organization_id=_SENTINEL)
            .order_by()
            .values("organization_id")
            .annotate(b=Sum(entry.size_field), n=Count("pk"))
            .values_list("b", "n")
            .query
        )
        sql, params = query.get_compiler(connection=connection).as_sql()
        if list(params).count(_SENTINEL) != 1:
            raise RuntimeError(f"storage usage of {entry.model.__name__}: the organization must be the one parameter")
        return sql, list(params)

    return fastsql.once(("storage-usage", entry.model, connection.vendor), build)


def storage_usage(org: Any) -> tuple[int, int]:
    """(bytes stored, file count) for ``org``."""
    org_id = getattr(org, "pk", org)
    total_bytes = 0
    total_files = 0
    for entry in _MODELS:
        connection = connections[router.db_for_read(entry.model)]
        sql, params = _compiled(entry, connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, [org_id if p == _SENTINEL else p for p in params])
            row = cursor.fetchone()
        if row is not None:
            total_bytes += int(row[0] or 0)
            total_files += int(row[1] or 0)
    return total_bytes, total_files
