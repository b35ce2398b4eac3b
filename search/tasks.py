"""Thin Celery tasks: ids in, a service call, the outcome out (job state is the index row)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from search import services

RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 5, "max_retries": 5}


@shared_task(name="search.tasks.index_file", acks_late=True, reject_on_worker_lost=True, **RETRY)
def index_file(file_id: str) -> str:
    return services.document_index(file_id=file_id)


@shared_task(name="search.tasks.remove_file", acks_late=True, reject_on_worker_lost=True, **RETRY)
def remove_file(file_id: str) -> str:
    return services.document_remove(file_id=file_id)


@shared_task(name="search.tasks.reconcile", acks_late=True)
def reconcile() -> dict[str, int]:
    return services.documents_reconcile()
