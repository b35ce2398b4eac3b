"""Beat tasks of the review app: thin, they call the services."""

from __future__ import annotations

from celery import shared_task

from review import services


@shared_task(name="review.tasks.apply_overdue_policy")
def apply_overdue_policy() -> int:
    return services.review_apply_overdue_policy()


@shared_task(name="review.tasks.purge_rejected")
def purge_rejected() -> int:
    return services.review_purge_rejected()
