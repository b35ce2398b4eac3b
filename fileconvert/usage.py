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


def storage_usage_statements(org: Any) -> list[fastsql.Statement]:
    """The SUM/COUNT statements of ``storage_usage``, one per registered model, to run with
    others in one batch (``fastsql.run``); ``storage_usage_of`` adds their results up."""
    org_id = getattr(org, "pk", org)
    out = []
    for entry in _MODELS:
        alias = router.db_for_read(entry.model)
        sql, params = _compiled(entry, connections[alias])
        out.append(fastsql.Statement(sql, [org_id if p == _SENTINEL else p for p in params], alias))
    return out


def storage_usage_of(results: list[fastsql.Result]) -> tuple[int, int]:
    """(bytes stored, file count) from the results of ``storage_usage_statements``."""
    total_bytes = total_files = 0
    for result in results:
        if result.rows:
            total_bytes += int(result.rows[0][0] or 0)
            total_files += int(result.rows[0][1] or 0)
    return total_bytes, total_files


def storage_usage(org: Any) -> tuple[int, int]:
    """(bytes stored, file count) for ``org``."""
    statements = storage_usage_statements(org)
    # Each model may live in its own database: one batch per statement.
    return storage_usage_of([fastsql.run([s])[0] for s in statements])
