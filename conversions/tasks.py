"""Thin tasks: ids in, the engine does the work. Time limits sit below the broker's
visibility timeout so a long job is never delivered twice while it still runs."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from conversions import engine, services


@shared_task(
    name="conversions.tasks.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=services.job_soft_time_limit(),
    time_limit=services.job_hard_time_limit(),
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=5,
)
def run_job(job_id: str) -> str:
    return engine.job_run(job_id=job_id)


@shared_task(name="conversions.tasks.requeue_stuck_jobs")
def requeue_stuck_jobs() -> int:
    return services.job_requeue_stuck()


@shared_task(name="conversions.tasks.noop", acks_late=True, reject_on_worker_lost=True)
def noop(job_id: str) -> str:
    """For bench/job_overhead.py: the job machinery (claim, finish, audit) with no conversion."""
    return engine.job_noop(job_id=job_id)
