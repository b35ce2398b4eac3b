"""System checks (``manage.py check``, run before ``migrate`` and by ``runserver`` and the
worker's start-up through Django's set-up of the commands): settings that would break the
task guarantees are refused with an error before anything runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def task_limits_below_visibility_timeout(app_configs: Any = None, **_kwargs: Any) -> list[checks.CheckMessage]:
    """On Redis a message not acknowledged within ``visibility_timeout`` is delivered again.
    Every task acknowledges late (``acks_late``), so a task allowed to run longer than that
    (a raised ``CONVERT_TIMEOUT_SECONDS`` or ``PROCESS_TIMEOUT_SECONDS``) would be delivered
    to a second worker while it still runs. The limit alone is compared because a worker
    reserves no message beyond the ones it runs (prefetch multiplier 1 with ``acks_late``);
    a larger prefetch would also need the time a reserved message waits to fit."""
    broker = str(getattr(settings, "CELERY_BROKER_URL", ""))
    if not broker.startswith(("redis://", "rediss://")):
        return []
    visibility = int((getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("visibility_timeout", 3600))
    import importlib
    import importlib.util

    from django.apps import apps

    from fileconvert.celery import app

    # The tasks of every installed app, imported directly: Celery's own loader would run the
    # system checks again from here (its Django fix-up validates models on import).
    for config in apps.get_app_configs():
        if importlib.util.find_spec(f"{config.name}.tasks") is not None:
            importlib.import_module(f"{config.name}.tasks")
    errors = []
    default = app.conf.task_time_limit
    for name, task in sorted(app.tasks.items()):
        if name.startswith("celery."):
            continue
        limit = getattr(task, "time_limit", None) or default
        if limit and limit >= visibility:
            errors.append(
                checks.Error(
                    f"Task {name} may run {limit} s, not less than the broker's visibility timeout ({visibility} s): "
                    "Redis would deliver it again while it runs.",
                    hint="Raise CELERY_VISIBILITY_TIMEOUT above the task's limit, or lower the timeout setting it follows "
                    "(CONVERT_TIMEOUT_SECONDS, PROCESS_TIMEOUT_SECONDS, CELERY_TASK_TIME_LIMIT).",
                    id="fileconvert.E001",
                )
            )
    return errors
