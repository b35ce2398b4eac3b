"""Storage usage per organization: bytes and files counted against its quotas.

The database keeps the numbers (``accounts.StorageUsage``, one row per organization,
maintained by triggers on every model that holds stored bytes: uploads migration 0005),
so a quota check or ``GET /api/usage`` reads one row however many files there are, and
every write path counts, ORM, bulk or raw. Apps that store bytes also call
``register_storage_model`` from their ``AppConfig.ready``: that says what the triggers
count, and ``storage_usage_recount`` (``manage.py usage_recount``) sums it from the rows
to check the counter against.
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
    """The SUM/COUNT of ``entry`` for one organization, compiled by the ORM once."""

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


def storage_usage_statement(org: Any) -> fastsql.Statement:
    """The read of ``org``'s counter row, to run with others in one batch (``fastsql.run``);
    ``storage_usage_of`` turns its result into numbers."""
    from accounts.models import StorageUsage

    return fastsql.get_statement(StorageUsage, getattr(org, "pk", org))


def storage_usage_of(result: fastsql.Result) -> tuple[int, int]:
    """(bytes stored, file count) from the result of ``storage_usage_statement``."""
    from accounts.models import StorageUsage

    usage = result.first(StorageUsage)
    return (0, 0) if usage is None else (usage.bytes, usage.files)


def storage_usage(org: Any) -> tuple[int, int]:
    """(bytes stored, file count) for ``org``: its counter row."""
    return storage_usage_of(fastsql.run([storage_usage_statement(org)])[0])


def storage_usage_recount(org: Any) -> tuple[int, int]:
    """(bytes stored, file count) for ``org`` summed from the rows of every registered model:
    what the counter must say. O(files): for checks and repairs, not for requests."""
    org_id = getattr(org, "pk", org)
    total_bytes = total_files = 0
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
