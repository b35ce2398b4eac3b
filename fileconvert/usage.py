"""Storage usage per organization, summed over every model that holds stored bytes.

Apps that store bytes call ``register_storage_model`` from their ``AppConfig.ready``;
quota checks and ``GET /api/usage`` read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Model, Q, Sum


@dataclass(frozen=True)
class StorageModel:
    model: type[Model]
    size_field: str
    counted: Q  # which rows hold bytes that count against the quota


_MODELS: list[StorageModel] = []


def register_storage_model(model: type[Model], *, size_field: str, counted: Q | None = None) -> None:
    _MODELS.append(StorageModel(model, size_field, counted or Q()))


def storage_usage(org: Any) -> tuple[int, int]:
    """(bytes stored, file count) for ``org``."""
    total_bytes = 0
    total_files = 0
    for entry in _MODELS:
        row = entry.model._default_manager.filter(entry.counted, organization=org).aggregate(
            b=Sum(entry.size_field), n=Count("pk")
        )
        total_bytes += row["b"] or 0
        total_files += row["n"] or 0
    return total_bytes, total_files
