"""System checks: settings that would break the task guarantees are refused by `manage.py check`
(and so by `migrate`) before anything runs."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from conversions.tasks import run_job
from fileconvert.checks import task_limits_below_visibility_timeout

REDIS = "redis://127.0.0.1:6379/0"


def test_a_task_allowed_to_outlive_the_visibility_timeout_is_an_error():
    visibility = run_job.time_limit  # the conversion task may run exactly this long: not less
    with override_settings(CELERY_BROKER_URL=REDIS, CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": visibility}):
        errors = task_limits_below_visibility_timeout()
        named = {e.msg.split()[1] for e in errors}
        assert "conversions.tasks.run_job" in named and {e.id for e in errors} == {"fileconvert.E001"}
        with pytest.raises(SystemCheckError, match=r"fileconvert\.E001"):
            call_command("check")


def test_limits_below_the_visibility_timeout_pass():
    with override_settings(CELERY_BROKER_URL=REDIS, CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 10**6}):
        assert task_limits_below_visibility_timeout() == []


def test_the_default_settings_pass():
    with override_settings(CELERY_BROKER_URL=REDIS, CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 3600}):
        assert task_limits_below_visibility_timeout() == []


def test_another_broker_has_no_visibility_timeout_to_check():
    with override_settings(CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 1}):
        assert task_limits_below_visibility_timeout() == []
