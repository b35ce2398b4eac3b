from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from uploads import processing, services, sweeper

logger = logging.getLogger(__name__)


def _process_limits() -> tuple[int, int]:
    from django.conf import settings

    soft = int(settings.FILECONVERT["PROCESS_TIMEOUT_SECONDS"])
    return soft, soft + 60


PROCESS_SOFT_LIMIT, PROCESS_HARD_LIMIT = _process_limits()


@shared_task(
    name="uploads.tasks.process_file",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PROCESS_SOFT_LIMIT,
    time_limit=PROCESS_HARD_LIMIT,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=5,
)
def process_file(file_id: str) -> str:
    return processing.file_process(file_id=file_id)


@shared_task(name="uploads.tasks.requeue_stuck_files")
def requeue_stuck_files() -> int:
    return services.file_reprocess_if_stuck()


@shared_task(name="uploads.tasks.sweep_expired")
def sweep_expired() -> int:
    return sweeper.sweep_expired_files()
