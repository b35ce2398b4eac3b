"""The Django admin review console through Django's test client: the queue page, the
object page with its preview, the approve/reject buttons, bulk actions, and who may open it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from review import services
from review.models import ReviewEscalation
from tests.review.conftest import HTML, pdf, png, upload_staged, wav
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus
from uploads.signals import file_activated, file_withdrawn

CHANGELIST = reverse("admin:review_reviewqueueitem_changelist")


def change_url(stored: StoredFile) -> str:
    return reverse("admin:review_reviewqueueitem_change", args=[stored.pk])


@pytest.fixture
def console(platform_admin) -> Client:
    client = Client()
    client.force_login(platform_admin.user)
    return client


@pytest.fixture
def signal_log():
    got: list[tuple[str, str]] = []

    def on_activated(sender, file_id, **kw):
        got.append(("activated", file_id))

    def on_withdrawn(sender, file_id, **kw):
        got.append(("withdrawn", file_id))

    file_activated.connect(on_activated, weak=False)
    file_withdrawn.connect(on_withdrawn, weak=False)
    yield got
    file_activated.disconnect(on_activated)
    file_withdrawn.disconnect(on_withdrawn)


def listed_ids(response) -> list[str]:
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.mark.django_db
class TestWhoMayOpenIt:
    @pytest.mark.parametrize("persona_name", ["owner", "admin", "member", "viewer", "outsider"])
    def test_tenant_users_are_refused(self, request, persona_name, staged):
        persona = request.getfixturevalue(persona_name)
        client = Client()
        client.force_login(persona.user)
        for url in (CHANGELIST, change_url(staged)):
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
        response = client.post(reverse("admin:review_reviewqueueitem_approve", args=[staged.pk]))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING

    def test_anonymous_is_sent_to_login(self, staged):
        response = Client().get(CHANGELIST)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_deactivated_platform_admin_is_refused(self, platform_admin, staged):
        client = Client()
        client.force_login(platform_admin.user)
        platform_admin.user.is_active = False
        platform_admin.user.save(update_fields=["is_active"])
        assert client.get(CHANGELIST).status_code == 302

    def test_platform_admin_sees_it_in_the_index(self, console):
        response = console.get(reverse("admin:index"))
        assert response.status_code == 200
        assert CHANGELIST.encode() in response.content and b"Review queue" in response.content


@pytest.mark.django_db
class TestQueuePage:
    def test_pending_only_oldest_deadline_first_overdue_highlighted(self, console, member, outsider):
        a = upload_staged(member, "alpha.png", png(), dataset="Invoices")
        b = upload_staged(outsider, "beta.png", png(color=(9, 9, 9)))
        c = upload_staged(member, "gamma.txt", b"hello")
        decided = upload_staged(member, "done.png", png(color=(7, 7, 7)))
        services.file_approve(actor=None, file=decided)
        StoredFile.objects.filter(pk=c.pk).update(review_expires_at=a.review_expires_at - timedelta(days=30))
        response = console.get(CHANGELIST)
        assert response.status_code == 200
        assert listed_ids(response) == [c.pk, a.pk, b.pk]
        html = response.content.decode()
        assert html.count("review-overdue") == 1 and "(overdue)" in html
        for text in ("alpha.png", "Invoices", member.org.name, outsider.org.name, "image/png", "text/plain"):
            assert text in html
        # Thumbnails through the uploads admin's thumbnail view.
        assert reverse("admin:uploads_storedfile_thumbnail", args=[a.pk]) in html

    def test_escalated_is_marked(self, console, member):
        late = upload_staged(member, "late.png", png())
        services.review_apply_overdue_policy(now=late.review_expires_at + timedelta(seconds=1), policy="escalate")
        StoredFile.objects.filter(pk=late.pk).update(review_expires_at=late.review_expires_at - timedelta(days=8))
        assert ReviewEscalation.objects.filter(file_id=late.pk).exists()
        assert "overdue — escalated" in console.get(CHANGELIST).content.decode()

    def test_filters_and_search(self, console, member, outsider):
        image = upload_staged(member, "holiday.png", png())
        text = upload_staged(outsider, "notes.txt", b"some notes")
        document = upload_staged(member, "report.pdf", pdf())
        rejected = upload_staged(member, "nope.png", png(color=(1, 2, 3)))
        services.file_reject(actor=None, file=rejected, reason="no")
        StoredFile.objects.filter(pk=text.pk).update(review_expires_at=image.review_expires_at - timedelta(days=30))

        assert listed_ids(console.get(CHANGELIST, {"type": "image"})) == [image.pk]
        assert listed_ids(console.get(CHANGELIST, {"type": "pdf"})) == [document.pk]
        assert listed_ids(console.get(CHANGELIST, {"type": "text"})) == [text.pk]
        assert listed_ids(console.get(CHANGELIST, {"type": "other"})) == []
        assert listed_ids(console.get(CHANGELIST, {"overdue": "yes"})) == [text.pk]
        assert set(listed_ids(console.get(CHANGELIST, {"overdue": "no"}))) == {image.pk, document.pk}
        assert set(listed_ids(console.get(CHANGELIST, {"organization__id__exact": member.org.pk}))) == {
            image.pk,
            document.pk,
        }
        assert listed_ids(console.get(CHANGELIST, {"q": "holi"})) == [image.pk]
        assert listed_ids(console.get(CHANGELIST, {"q": document.sha256})) == [document.pk]
        assert listed_ids(console.get(CHANGELIST, {"q": document.sha256.upper()})) == [document.pk]
        assert listed_ids(console.get(CHANGELIST, {"q": document.sha256[:20]})) == []
        assert listed_ids(console.get(CHANGELIST, {"state": "rejected"})) == [rejected.pk]
        assert len(listed_ids(console.get(CHANGELIST, {"state": "all"}))) == 4

    def test_query_count_is_constant(self, console, member, outsider, django_assert_max_num_queries):
        upload_staged(member, "one.png", png())
        with django_assert_max_num_queries(20) as first:
            assert console.get(CHANGELIST).status_code == 200
        baseline = len(first)
        for i in range(8):
            stored = upload_staged(outsider if i % 2 else member, f"f{i}.png", png(color=(i, 3, 3)), dataset=f"set {i}")
            if i % 3 == 0:  # some overdue and escalated, some overdue only, the rest on time
                services.review_apply_overdue_policy(now=stored.review_expires_at + timedelta(seconds=1), policy="escalate")
            if i % 3 != 2:
                StoredFile.objects.filter(pk=stored.pk).update(review_expires_at=stored.review_expires_at - timedelta(days=30))
        with django_assert_max_num_queries(baseline):
            response = console.get(CHANGELIST)
        assert len(listed_ids(response)) == 9
        shown = StoredFile.objects.filter(review_escalation__isnull=False, review_expires_at__lt=timezone.now()).count()
        assert shown >= 3 and response.content.decode().count("overdue — escalated") == shown

    def test_no_add_edit_or_delete(self, console, staged):
        assert console.get(reverse("admin:review_reviewqueueitem_add")).status_code == 403
        response = console.get(CHANGELIST)
        assert b'value="delete_selected"' not in response.content
        response = console.post(change_url(staged), {"name": "renamed"})
        assert response.status_code == 403
        staged.refresh_from_db()
        assert staged.name == "photo.png"


@pytest.mark.django_db
class TestObjectPage:
    def test_image_preview_summary_and_buttons(self, console, staged):
        response = console.get(change_url(staged))
        assert response.status_code == 200
        html = response.content.decode()
        assert staged.sha256 in html and "AP Invoices 2025" in html and staged.organization.name in html
        assert "/v1/admin/review/previews/" in html and "<img" in html
        assert reverse("admin:review_reviewqueueitem_approve", args=[staged.pk]) in html
        assert reverse("admin:review_reviewqueueitem_reject", args=[staged.pk]) in html
        assert 'name="reason"' in html
        # The signed link in the page really serves the file.
        start = html.index("/v1/admin/review/previews/")
        link = html[start : html.index('"', start)]
        served = Client().get(link)
        assert served.status_code == 200 and served["Content-Type"] == "image/png"

    def test_pdf_shows_its_first_page_thumbnail(self, console, member):
        stored = upload_staged(member, "report.pdf", pdf(2))
        html = console.get(change_url(stored)).content.decode()
        assert reverse("admin:uploads_storedfile_thumbnail", args=[stored.pk]) in html
        thumb = console.get(reverse("admin:uploads_storedfile_thumbnail", args=[stored.pk]))
        assert thumb.status_code == 200 and b"".join(thumb.streaming_content)[:4] == b"\x89PNG"

    def test_text_excerpt_is_escaped(self, console, member):
        stored = upload_staged(member, "page.html", HTML)
        stored_text = upload_staged(member, "readme.txt", b"first line <b>not bold</b>\nsecond line")
        html = console.get(change_url(stored_text)).content.decode()
        assert "review-excerpt" in html and "first line &lt;b&gt;not bold&lt;/b&gt;" in html
        html = console.get(change_url(stored)).content.decode()
        assert "<script>alert(document.cookie)</script>" not in html

    def test_audio_player(self, console, member):
        stored = upload_staged(member, "tone.wav", wav())
        html = console.get(change_url(stored)).content.decode()
        assert "<audio controls" in html and "/v1/admin/review/previews/" in html

    def test_approve_button(self, console, staged, platform_admin, signal_log, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = console.post(reverse("admin:review_reviewqueueitem_approve", args=[staged.pk]))
        assert response.status_code == 302 and response["Location"] == CHANGELIST
        staged.refresh_from_db()
        assert staged.status == FileStatus.ACTIVE and staged.reviewed_by_id == platform_admin.user.pk
        assert signal_log == [("activated", staged.pk)]
        event = AuditEvent.objects.get(action="review.approve", target_id=staged.pk)
        assert event.actor_id == platform_admin.user.pk
        # Decided: the page says so and offers no buttons.
        html = console.get(change_url(staged)).content.decode()
        assert "Approved" in html and 'name="reason"' not in html

    def test_approve_needs_post(self, console, staged):
        assert console.get(reverse("admin:review_reviewqueueitem_approve", args=[staged.pk])).status_code == 405
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING

    def test_reject_button_needs_a_reason(self, console, staged, signal_log, django_capture_on_commit_callbacks):
        url = reverse("admin:review_reviewqueueitem_reject", args=[staged.pk])
        response = console.post(url, {"reason": "  "}, follow=True)
        assert b"reason is required" in response.content
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING
        with django_capture_on_commit_callbacks(execute=True):
            response = console.post(url, {"reason": "blurry scan"})
        assert response.status_code == 302
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.REJECTED and staged.review_reason == "blurry scan"
        assert Task.objects.get(file=staged).error_message == "blurry scan"
        assert signal_log == [("withdrawn", staged.pk)]

    def test_deciding_twice_is_a_message_not_a_500(self, console, staged):
        url = reverse("admin:review_reviewqueueitem_approve", args=[staged.pk])
        console.post(url)
        response = console.post(url, follow=True)
        assert response.status_code == 200 and b"already approved" in response.content

    def test_missing_object(self, console):
        response = console.post(reverse("admin:review_reviewqueueitem_approve", args=["fil_nope"]))
        assert response.status_code == 404


@pytest.mark.django_db
class TestBulkActions:
    def test_bulk_approve(self, console, member, outsider, signal_log, django_capture_on_commit_callbacks):
        files = [upload_staged(member if i % 2 else outsider, f"f{i}.png", png(color=(i, 5, 5))) for i in range(3)]
        keep = upload_staged(member, "keep.png", png(color=(50, 5, 5)))
        with django_capture_on_commit_callbacks(execute=True):
            response = console.post(
                CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [f.pk for f in files], "index": 0}, follow=True
            )
        assert response.status_code == 200 and b"Approved 3 file(s)." in response.content
        assert set(StoredFile.objects.filter(status=FileStatus.ACTIVE).values_list("pk", flat=True)) == {f.pk for f in files}
        assert sorted(fid for kind, fid in signal_log if kind == "activated") == sorted(f.pk for f in files)
        keep.refresh_from_db()
        assert keep.review_state == ReviewState.PENDING
        assert AuditEvent.objects.filter(action="review.approve").count() == 3

    def test_bulk_reject_asks_for_one_reason(self, console, member, signal_log, django_capture_on_commit_callbacks):
        files = [upload_staged(member, f"f{i}.png", png(color=(i, 6, 6))) for i in range(3)]
        ids = [f.pk for f in files]
        first = console.post(CHANGELIST, {"action": "reject_selected", ACTION_CHECKBOX_NAME: ids, "index": 0})
        assert first.status_code == 200 and b'name="reason"' in first.content and b"Reject 3 files" in first.content
        assert not StoredFile.objects.filter(review_state=ReviewState.REJECTED).exists()
        blank = console.post(
            CHANGELIST, {"action": "reject_selected", ACTION_CHECKBOX_NAME: ids, "index": 0, "apply": "1", "reason": " "}
        )
        assert blank.status_code == 200 and b"A reason is required" in blank.content
        assert not StoredFile.objects.filter(review_state=ReviewState.REJECTED).exists()
        with django_capture_on_commit_callbacks(execute=True):
            done = console.post(
                CHANGELIST,
                {"action": "reject_selected", ACTION_CHECKBOX_NAME: ids, "index": 0, "apply": "1", "reason": "duplicates"},
                follow=True,
            )
        assert b"Rejected 3 file(s)." in done.content
        assert set(StoredFile.objects.filter(pk__in=ids).values_list("review_state", "review_reason")) == {
            (ReviewState.REJECTED, "duplicates")
        }
        assert set(Task.objects.filter(file_id__in=ids).values_list("status", flat=True)) == {TaskStatus.FAILED}
        assert sorted(fid for kind, fid in signal_log if kind == "withdrawn") == sorted(ids)

    def test_bulk_skips_already_decided(self, console, member):
        a = upload_staged(member, "a.png", png())
        b = upload_staged(member, "b.png", png(color=(2, 2, 2)))
        services.file_reject(actor=None, file=a, reason="earlier")
        response = console.post(
            CHANGELIST + "?state=all", {"action": "approve_selected", ACTION_CHECKBOX_NAME: [a.pk, b.pk], "index": 0}, follow=True
        )
        assert b"Approved 1 file(s)." in response.content and b"Skipped 1" in response.content
        a.refresh_from_db()
        assert a.review_state == ReviewState.REJECTED


@pytest.mark.django_db
def test_the_files_admin_cannot_decide_behind_the_service(console, staged):
    """The uploads "Files" admin shows status and review state read-only: a decision made
    there would skip the audit, the task and the signals."""
    url = reverse("admin:uploads_storedfile_change", args=[staged.pk])
    page = console.get(url)
    assert page.status_code == 200
    assert b'name="review_state"' not in page.content and b'name="status"' not in page.content
    response = console.post(
        url, {"name": staged.name, "visibility": staged.visibility, "status": "active", "review_state": "approved"}
    )
    assert response.status_code == 302
    staged.refresh_from_db()
    assert staged.review_state == ReviewState.PENDING and staged.status == FileStatus.STAGED
