from celery import shared_task

from accounts import services


@shared_task(name="accounts.tasks.purge_expired_anonymous_orgs")
def purge_expired_anonymous_orgs() -> int:
    return services.purge_expired_anonymous_orgs()
