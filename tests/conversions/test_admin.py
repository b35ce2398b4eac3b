"""Jobs in the Django admin: list with filters, detail with error and timings, retry action."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent
from conversions import engine
from conversions.models import ConversionJob, JobStatus
from tests.conversions import samples
from tests.conversions.test_jobs_api import convert

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(platform_admin) -> Client:
    client = Client()
    client.force_login(platform_admin.user)
    return client


def test_list_filters_detail_and_retry_action(member, admin_client):
    failed = convert(member.client(), samples.pixel_flood_png(20000), "bomb.png", "webp")
    engine.job_run(job_id=failed["id"])
    queued = convert(member.client(), samples.image_bytes("png"), "ok.png", "jpeg")

    page = admin_client.get("/admin/conversions/conversionjob/?status__exact=failed")
    assert page.status_code == 200
    assert failed["id"] in page.content.decode() and queued["id"] not in page.content.decode()
    page = admin_client.get(f"/admin/conversions/conversionjob/?organization__id__exact={member.org.pk}&target_format=webp")
    assert page.status_code == 200 and failed["id"] in page.content.decode()

    detail = admin_client.get(f"/admin/conversions/conversionjob/{failed['id']}/change/")
    assert detail.status_code == 200
    assert "IMAGE_TOO_LARGE" in detail.content.decode() and "Duration" in detail.content.decode()

    response = admin_client.post(
        "/admin/conversions/conversionjob/",
        {"action": "retry_jobs", "_selected_action": [failed["id"], queued["id"]]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 job(s) retried, 1 skipped." in response.content.decode()
    retry = ConversionJob.objects.get(retry_of_id=failed["id"])
    assert retry.status == JobStatus.QUEUED and retry.target_format == "webp"
    assert AuditEvent.objects.filter(target_id=retry.pk, action="conversion.retry").exists()


def test_admin_needs_staff(member):
    client = Client()
    client.force_login(member.user)
    assert client.get("/admin/conversions/conversionjob/").status_code in (302, 403)
