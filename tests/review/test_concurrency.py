"""Two platform admins decide the same object at the same moment, through the real API,
each on its own thread and so its own PostgreSQL connection: exactly one 200, one 409.

Needs PostgreSQL (row locks and concurrent transactions); SQLite serialises every write
on one file lock, so the race cannot happen there and the test is skipped.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from accounts.models import AuditEvent
from tests.review.conftest import png, upload_staged
from uploads.models import ReviewState, StoredFile, Task, TaskStatus
from uploads.signals import file_activated, file_withdrawn

pytestmark = pytest.mark.django_db(transaction=True)


def race(calls) -> list[tuple[str, int, dict]]:
    """Run each call on its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def run(name, call):
        try:
            barrier.wait(timeout=10)
            response = call()
            with lock:
                results.append((name, response.status_code, response.json()))
        finally:
            connections.close_all()  # this thread's connection must not outlive the test

    threads = [threading.Thread(target=run, args=(name, call)) for name, call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == len(calls), results
    return results


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent decisions need PostgreSQL (set DATABASE_URL); SQLite serialises all writes")


@pytest.fixture
def second_admin(db):
    from tests.conftest import make_persona
    from tests.factories import OrganizationFactory

    return make_persona(OrganizationFactory(name="Platform 2"), "owner", platform_admin=True)


def url(stored: StoredFile, action: str) -> str:
    return f"/v1/admin/review/objects/{stored.organization_id}/{stored.pk}/{action}"


@pytest.fixture
def signals_seen():
    seen: list[tuple[str, str]] = []

    def on_activated(sender, file_id, **kw):
        seen.append(("activated", file_id))

    def on_withdrawn(sender, file_id, **kw):
        seen.append(("withdrawn", file_id))

    file_activated.connect(on_activated, weak=False)
    file_withdrawn.connect(on_withdrawn, weak=False)
    yield seen
    file_activated.disconnect(on_activated)
    file_withdrawn.disconnect(on_withdrawn)


def test_two_approvals_one_wins(platform_admin, second_admin, member, signals_seen):
    for round_ in range(5):
        stored = upload_staged(member, f"race{round_}.png", png(color=(round_, 0, 0)))
        one, two = platform_admin.client(), second_admin.client()
        results = race(
            [("a", lambda c=one, s=stored: c.post(url(s, "approve"))), ("b", lambda c=two, s=stored: c.post(url(s, "approve")))]
        )
        codes = sorted(code for _name, code, _body in results)
        assert codes == [200, 409], results
        loser = next(body for _n, code, body in results if code == 409)
        assert loser["status"] == "error" and loser["error"] == "ALREADY_DECIDED"
        stored.refresh_from_db()
        assert stored.review_state == ReviewState.APPROVED
        assert AuditEvent.objects.filter(action="review.approve", target_id=stored.pk).count() == 1
        assert signals_seen.count(("activated", stored.pk)) == 1


def test_approve_against_reject_one_wins(platform_admin, second_admin, member, signals_seen):
    for round_ in range(5):
        stored = upload_staged(member, f"duel{round_}.png", png(color=(0, round_, 0)))
        one, two = platform_admin.client(), second_admin.client()
        results = race(
            [
                ("approve", lambda c=one, s=stored: c.post(url(s, "approve"))),
                ("reject", lambda c=two, s=stored: c.post(url(s, "reject"), {"reason": "race"}, format="json")),
            ]
        )
        assert sorted(code for _n, code, _b in results) == [200, 409], results
        winner = next(name for name, code, _b in results if code == 200)
        stored.refresh_from_db()
        task = Task.objects.get(file=stored)
        if winner == "approve":
            assert stored.review_state == ReviewState.APPROVED and task.status == TaskStatus.COMPLETED
            assert signals_seen.count(("activated", stored.pk)) == 1 and ("withdrawn", stored.pk) not in signals_seen
        else:
            assert stored.review_state == ReviewState.REJECTED and task.status == TaskStatus.FAILED
            assert signals_seen.count(("withdrawn", stored.pk)) == 1 and ("activated", stored.pk) not in signals_seen
        assert AuditEvent.objects.filter(action__in=["review.approve", "review.reject"], target_id=stored.pk).count() == 1


def test_decision_racing_a_delete_is_never_500(platform_admin, member):
    from uploads.services import file_delete

    for round_ in range(3):
        stored = upload_staged(member, f"gone{round_}.png", png(color=(0, 0, round_)))
        client = platform_admin.client()

        class Deleted:
            status_code = 204

            @staticmethod
            def json():
                return {}

        def delete(s=stored):
            file_delete(actor=None, file=StoredFile.objects.get(pk=s.pk))
            return Deleted()

        results = race([("approve", lambda c=client, s=stored: c.post(url(s, "approve"))), ("delete", delete)])
        code = next(code for name, code, _b in results if name == "approve")
        assert code in (200, 404), results
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
