"""``review.services`` without HTTP: bulk decisions, the overdue policy with a frozen clock
(``now=``), the purge of rejected files, the beat entries and the policy check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from accounts.models import AuditEvent
from fileconvert import storage
from review import services, tasks
from review.models import ReviewEscalation
from tests.review.conftest import png, upload_staged
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus
from uploads.signals import file_activated, file_withdrawn


@pytest.fixture
def reviewer(platform_admin):
    return services.admin_site_actor(platform_admin.user)


@pytest.fixture
def received():
    got: list[tuple[str, str, str]] = []

    def on_activated(sender, file_id, organization_id, **kw):
        got.append(("activated", file_id, organization_id))

    def on_withdrawn(sender, file_id, organization_id, **kw):
        got.append(("withdrawn", file_id, organization_id))

    file_activated.connect(on_activated, weak=False)
    file_withdrawn.connect(on_withdrawn, weak=False)
    yield got
    file_activated.disconnect(on_activated)
    file_withdrawn.disconnect(on_withdrawn)


def settings_with(**values):
    return override_settings(FILECONVERT={**settings.FILECONVERT, **values})


@pytest.mark.django_db
class TestSignals:
    def test_signals_only_after_commit(self, reviewer, member, received, django_capture_on_commit_callbacks):
        a = upload_staged(member, "a.png", png())
        b = upload_staged(member, "b.png", png(color=(1, 1, 1)))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.file_approve(actor=reviewer, file=a)
            services.file_reject(actor=reviewer, file=b, reason="no")
        assert received == []  # nothing before the commit
        for callback in callbacks:
            callback()
        assert received == [("activated", a.pk, member.org.pk), ("withdrawn", b.pk, member.org.pk)]

    def test_a_refused_decision_sends_nothing(self, reviewer, staged, received, django_capture_on_commit_callbacks):
        services.file_approve(actor=reviewer, file=staged)
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(services.Conflict):
            services.file_reject(actor=reviewer, file=staged, reason="x")
        assert callbacks == [] and received == []


@pytest.mark.django_db
class TestBulk:
    def test_bulk_approve_skips_losers(self, reviewer, member, outsider, received, django_capture_on_commit_callbacks):
        files = [upload_staged(member if i % 2 else outsider, f"f{i}.png", png(color=(i, 9, 9))) for i in range(4)]
        services.file_reject(actor=reviewer, file=files[0], reason="earlier")
        with django_capture_on_commit_callbacks(execute=True):
            outcome = services.files_approve(actor=reviewer, files=[*files, "fil_missing"])
        assert outcome.decided == [f.pk for f in files[1:]]
        assert outcome.skipped == {files[0].pk: "ALREADY_DECIDED", "fil_missing": "NOT_FOUND"}
        assert sorted(r[1] for r in received if r[0] == "activated") == sorted(f.pk for f in files[1:])
        assert StoredFile.objects.filter(review_state=ReviewState.APPROVED).count() == 3
        assert AuditEvent.objects.filter(action="review.approve").count() == 3

    def test_bulk_reject_one_reason_for_all(self, reviewer, member):
        files = [upload_staged(member, f"f{i}.png", png(color=(i, 1, 1))) for i in range(3)]
        outcome = services.files_reject(actor=reviewer, files=files, reason="  duplicate batch  ")
        assert outcome.decided == [f.pk for f in files] and outcome.skipped == {}
        assert set(StoredFile.objects.filter(pk__in=outcome.decided).values_list("review_reason", flat=True)) == {
            "duplicate batch"
        }
        assert set(Task.objects.filter(file__in=files).values_list("status", "error_code")) == {
            (TaskStatus.FAILED, "REVIEW_REJECTED")
        }

    def test_bulk_reject_needs_a_reason_before_touching_anything(self, reviewer, staged):
        with pytest.raises(services.ValidationFailed):
            services.files_reject(actor=reviewer, files=[staged], reason=" ")
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING

    def test_non_admin_cannot_bulk(self, member, staged):
        actor = services.admin_site_actor(member.user)
        with pytest.raises(services.Forbidden):
            services.files_approve(actor=actor, files=[staged])

    def test_a_task_the_tenant_discarded_stays_discarded_but_shows_the_reason(self, reviewer, staged):
        Task.objects.filter(file=staged).update(status=TaskStatus.DISCARDED)
        services.file_reject(actor=reviewer, file=staged, reason="bad")
        task = Task.objects.get(file=staged)
        assert task.status == TaskStatus.DISCARDED and task.error_message == "bad"


@pytest.mark.django_db
class TestOverduePolicy:
    def setup_files(self, member):
        due = upload_staged(member, "late.png", png())
        fresh = upload_staged(member, "fresh.png", png(color=(5, 5, 5)))
        deadline = due.review_expires_at
        StoredFile.objects.filter(pk=fresh.pk).update(review_expires_at=deadline + timedelta(days=3))
        return due, fresh, deadline

    def test_nothing_is_overdue_before_the_deadline(self, member):
        due, _fresh, deadline = self.setup_files(member)
        assert services.review_apply_overdue_policy(now=deadline - timedelta(seconds=1), policy="escalate") == 0
        assert services.review_apply_overdue_policy(now=deadline - timedelta(seconds=1), policy="reject") == 0
        assert not ReviewEscalation.objects.exists()
        due.refresh_from_db()
        assert due.review_state == ReviewState.PENDING

    def test_escalate_once(self, member, received, django_capture_on_commit_callbacks):
        due, _fresh, deadline = self.setup_files(member)
        later = deadline + timedelta(minutes=1)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.review_apply_overdue_policy(now=later, policy="escalate") == 1
            assert services.review_apply_overdue_policy(now=later + timedelta(hours=1), policy="escalate") == 0
        escalation = ReviewEscalation.objects.get()
        assert escalation.file_id == due.pk and escalation.escalated_at == later and escalation.deadline == deadline
        assert AuditEvent.objects.filter(action="review.escalate", target_id=due.pk).count() == 1
        due.refresh_from_db()
        assert due.review_state == ReviewState.PENDING and due.status == FileStatus.STAGED
        assert received == []  # still staged: nothing activated or withdrawn
        # The fresh file joins once its own deadline passes.
        assert services.review_apply_overdue_policy(now=deadline + timedelta(days=4), policy="escalate") == 1
        assert ReviewEscalation.objects.count() == 2

    def test_deciding_clears_the_escalation(self, reviewer, member):
        due, _fresh, deadline = self.setup_files(member)
        services.review_apply_overdue_policy(now=deadline + timedelta(minutes=1), policy="escalate")
        services.file_approve(actor=reviewer, file=due)
        assert not ReviewEscalation.objects.exists()

    def test_reject_policy(self, member, received, django_capture_on_commit_callbacks):
        due, fresh, deadline = self.setup_files(member)
        later = deadline + timedelta(minutes=1)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.review_apply_overdue_policy(now=later, policy="reject") == 1
            assert services.review_apply_overdue_policy(now=later, policy="reject") == 0
        due.refresh_from_db()
        fresh.refresh_from_db()
        assert due.review_state == ReviewState.REJECTED and due.review_reason == "review deadline passed"
        assert due.reviewed_at == later and due.reviewed_by_id is None
        assert fresh.review_state == ReviewState.PENDING
        assert received == [("withdrawn", due.pk, member.org.pk)]
        event = AuditEvent.objects.get(action="review.reject", target_id=due.pk)
        assert event.actor_id is None and event.actor_label == "system"
        assert Task.objects.get(file=due).error_message == "review deadline passed"

    def test_the_setting_chooses_the_policy(self, member):
        due, _fresh, deadline = self.setup_files(member)
        with settings_with(REVIEW_OVERDUE_POLICY="reject"):
            assert services.overdue_policy() == "reject"
            services.review_apply_overdue_policy(now=deadline + timedelta(seconds=1))
        due.refresh_from_db()
        assert due.review_state == ReviewState.REJECTED

    def test_default_policy_is_escalate(self):
        assert settings.FILECONVERT["REVIEW_OVERDUE_POLICY"] == "escalate"
        assert services.overdue_policy() == "escalate"

    def test_a_bad_policy_fails_the_system_check(self):
        with settings_with(REVIEW_OVERDUE_POLICY="approve"):
            with pytest.raises(SystemCheckError, match=r"review\.E001"):
                call_command("check")
            with pytest.raises(ValueError):
                services.overdue_policy()

    def test_beat_task_runs_the_policy(self, member):
        due, _fresh, _deadline = self.setup_files(member)
        StoredFile.objects.filter(pk=due.pk).update(review_expires_at=due.review_expires_at - timedelta(days=30))
        assert tasks.apply_overdue_policy.apply().get() == 1
        assert ReviewEscalation.objects.filter(file_id=due.pk).exists()


@pytest.mark.django_db
class TestPurge:
    def test_rejected_files_go_after_retention(self, reviewer, member, received, django_capture_on_commit_callbacks):
        rejected = upload_staged(member, "bad.png", png())
        approved = upload_staged(member, "good.png", png(color=(3, 3, 3)))
        pending = upload_staged(member, "wait.png", png(color=(4, 4, 4)))
        decided_at = rejected.review_expires_at - timedelta(days=6)
        services.file_reject(actor=reviewer, file=rejected, reason="no", now=decided_at)
        services.file_approve(actor=reviewer, file=approved, now=decided_at)
        assert storage.object_size(rejected.storage_key) and rejected.thumbnail_key
        with settings_with(REVIEW_REJECTED_RETENTION_DAYS=30):
            assert services.review_purge_rejected(now=decided_at + timedelta(days=29)) == 0
            received.clear()
            with django_capture_on_commit_callbacks(execute=True):
                assert services.review_purge_rejected(now=decided_at + timedelta(days=30, seconds=1)) == 1
        assert not StoredFile.objects.filter(pk=rejected.pk).exists()
        assert not Task.objects.filter(file_id=rejected.pk).exists()
        assert storage.object_size(rejected.storage_key) is None
        assert storage.object_size(rejected.thumbnail_key) is None
        assert StoredFile.objects.filter(pk__in=[approved.pk, pending.pk]).count() == 2
        assert AuditEvent.objects.filter(action="file.review_purge", target_id=rejected.pk).count() == 1
        assert received == [("withdrawn", rejected.pk, member.org.pk)]

    def test_purge_beat_task(self, reviewer, staged):
        services.file_reject(actor=reviewer, file=staged, reason="no")
        with settings_with(REVIEW_REJECTED_RETENTION_DAYS=0):
            assert tasks.purge_rejected.apply().get() == 1
        assert not StoredFile.objects.filter(pk=staged.pk).exists()


def test_beat_schedule_has_both_entries():
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"review.tasks.apply_overdue_policy", "review.tasks.purge_rejected"} <= schedule
    from fileconvert.celery import app

    app.loader.import_default_modules()
    assert {"review.tasks.apply_overdue_policy", "review.tasks.purge_rejected"} <= set(app.tasks)
