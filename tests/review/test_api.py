"""Seed 001 "Admin Review" through the real API: who may call it, its shapes, decisions
and their effects (task, audit, signals), previews through signed links."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from django.core import signing
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import AuditEvent
from fileconvert import signed, storage
from review import services
from tests.conftest import assert_error, data_of
from tests.review.conftest import HTML, bearer_client, pdf, png, upload_staged, wav
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus
from uploads.signals import file_activated, file_withdrawn

QUEUE = "/v1/admin/review/objects"
ITEM_FIELDS = {
    "object_id",
    "tenant_id",
    "dataset_id",
    "dataset_name",
    "filename",
    "content_type",
    "size_bytes",
    "uploaded_at",
    "review_expires_at",
}


def obj_url(stored: StoredFile, suffix: str = "") -> str:
    return f"{QUEUE}/{stored.organization_id}/{stored.pk}{suffix}"


@pytest.fixture
def signal_log():
    """Receivers on the lifecycle signals; each records (signal name, file id)."""
    got: list[tuple[str, str]] = []

    def on_activated(sender, file_id, organization_id, **kw):
        got.append(("activated", file_id))

    def on_withdrawn(sender, file_id, organization_id, **kw):
        got.append(("withdrawn", file_id))

    file_activated.connect(on_activated, weak=False)
    file_withdrawn.connect(on_withdrawn, weak=False)
    yield got
    file_activated.disconnect(on_activated)
    file_withdrawn.disconnect(on_withdrawn)


# --- who may call it -----------------------------------------------------------------------------


ENDPOINTS = [
    ("get", ""),
    ("get", "detail"),
    ("post", "approve"),
    ("post", "reject"),
    ("get", "preview"),
]


def call(client: APIClient, method: str, which: str, stored: StoredFile):
    if which == "":
        return client.get(QUEUE)
    url = obj_url(stored) if which == "detail" else obj_url(stored, f"/{which}")
    if method == "post":
        return client.post(url, {"reason": "no"}, format="json")
    return client.get(url)


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("persona_name", ["owner", "admin", "member", "viewer", "outsider"])
    @pytest.mark.parametrize(("method", "which"), ENDPOINTS)
    def test_api_key_of_every_tenant_role_is_403(self, request, staged, persona_name, method, which):
        persona = request.getfixturevalue(persona_name)
        assert_error(call(persona.client(), method, which, staged), 403, "FORBIDDEN")
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING

    @pytest.mark.parametrize("persona_name", ["owner", "member", "viewer"])
    @pytest.mark.parametrize(("method", "which"), ENDPOINTS)
    def test_bearer_of_a_non_platform_admin_is_403(self, request, staged, persona_name, method, which):
        client = bearer_client(request.getfixturevalue(persona_name))
        assert_error(call(client, method, which, staged), 403, "FORBIDDEN")

    @pytest.mark.parametrize(("method", "which"), ENDPOINTS)
    def test_platform_admin_key_without_admin_scope_is_403(self, platform_admin, staged, method, which):
        _key, raw = account_services.api_key_issue_for(
            org=platform_admin.org, user=platform_admin.user, name="narrow", scopes=["upload.read"]
        )
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        assert_error(call(client, method, which, staged), 403, "FORBIDDEN")
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING

    @pytest.mark.parametrize(("method", "which"), ENDPOINTS)
    def test_anonymous_and_bad_credentials_are_401(self, anon, staged, method, which):
        assert_error(call(anon, method, which, staged), 401)
        bad = APIClient()
        bad.credentials(HTTP_AUTHORIZATION="Bearer fct_000000000000_nope")
        assert_error(call(bad, method, which, staged), 401)

    def test_deactivated_platform_admin_is_refused(self, platform_admin, staged):
        client = platform_admin.client()
        platform_admin.user.is_active = False
        platform_admin.user.save(update_fields=["is_active"])
        response = client.get(QUEUE)
        assert response.status_code in (401, 403)
        assert_error(response, response.status_code)

    def test_platform_admin_with_bearer_and_with_key(self, platform_admin, staged):
        for client in (platform_admin.client(), bearer_client(platform_admin)):
            data = data_of(client.get(QUEUE))
            assert [i["object_id"] for i in data["items"]] == [staged.pk]


# --- the queue ----------------------------------------------------------------------------------


@pytest.mark.django_db
class TestQueue:
    def test_shape_and_across_tenants_oldest_deadline_first(self, platform_admin, member, outsider):
        first = upload_staged(member, "invoice-0425.pdf", pdf(), dataset="AP Invoices 2025")
        second = upload_staged(outsider, "b.png", png())
        third = upload_staged(member, "c.png", png(color=(1, 2, 3)))
        # Deadlines out of id order: the queue follows the deadline.
        StoredFile.objects.filter(pk=third.pk).update(review_expires_at=first.review_expires_at.replace(year=2020))
        response = platform_admin.client().get(QUEUE)
        data = data_of(response)
        assert set(data) >= {"items", "total"}
        assert data["total"] == 3
        assert [i["object_id"] for i in data["items"]] == [third.pk, first.pk, second.pk]
        item = data["items"][1]
        assert set(item) == ITEM_FIELDS
        assert item == {
            "object_id": first.pk,
            "tenant_id": member.org.pk,
            "dataset_id": first.dataset_id,
            "dataset_name": "AP Invoices 2025",
            "filename": "invoice-0425.pdf",
            "content_type": "application/pdf",
            "size_bytes": first.size,
            "uploaded_at": item["uploaded_at"],
            "review_expires_at": item["review_expires_at"],
        }
        assert item["uploaded_at"].endswith("Z") and item["review_expires_at"].endswith("Z")
        assert {i["tenant_id"] for i in data["items"]} == {member.org.pk, outsider.org.pk}

    def test_cursor_pages_and_total_counts_only_pending(self, platform_admin, member):
        files = [upload_staged(member, f"f{i}.png", png(color=(i, i, i))) for i in range(6)]
        services.file_approve(actor=None, file=files[0])
        client = platform_admin.client()
        page1 = data_of(client.get(QUEUE, {"limit": 2}))
        assert page1["total"] == 5 and len(page1["items"]) == 2 and page1["has_more"]
        page2 = data_of(client.get(QUEUE, {"limit": 2, "cursor": page1["next_cursor"]}))
        page3 = data_of(client.get(QUEUE, {"limit": 2, "cursor": page2["next_cursor"]}))
        seen = [i["object_id"] for p in (page1, page2, page3) for i in p["items"]]
        assert sorted(seen) == sorted(f.pk for f in files[1:])
        assert page3["has_more"] is False and page3["next_cursor"] is None

    def test_default_limit_is_20(self, platform_admin, member):
        for i in range(21):
            upload_staged(member, f"f{i}.txt", f"text {i}".encode())
        data = data_of(platform_admin.client().get(QUEUE))
        assert len(data["items"]) == 20 and data["total"] == 21 and data["has_more"]

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "not-a-cursor"}])
    def test_bad_paging_is_400(self, platform_admin, params):
        assert_error(platform_admin.client().get(QUEUE, params), 400, "VALIDATION_ERROR")

    def test_queue_query_count_is_constant(self, platform_admin, member, outsider, django_assert_max_num_queries):
        client = platform_admin.client()
        upload_staged(member, "a.png", png())
        with django_assert_max_num_queries(12) as few:
            data_of(client.get(QUEUE))
        baseline = len(few)  # read now: the next request resets the connection's query log
        for i in range(6):
            upload_staged(outsider if i % 2 else member, f"x{i}.png", png(color=(i, 0, 0)), dataset=f"d{i}")
        with django_assert_max_num_queries(baseline):
            assert len(data_of(client.get(QUEUE))["items"]) == 7


# --- detail -------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestDetail:
    def test_detail_shape(self, platform_admin, staged):
        data = data_of(platform_admin.client().get(obj_url(staged)))
        assert data["object_id"] == staged.pk
        assert data["tenant_id"] == staged.organization_id
        assert data["checksum_sha256"] == staged.sha256 and len(staged.sha256) == 64
        assert data["status"] == "staged" and data["review_state"] == "pending"
        assert data["reviewed_at"] is None
        assert data["dataset_name"] == "AP Invoices 2025"
        assert data["content_type"] == "image/png"

    def test_wrong_tenant_in_path_is_404(self, platform_admin, staged, outsider):
        client = platform_admin.client()
        for suffix, method in [("", "get"), ("/approve", "post"), ("/reject", "post"), ("/preview", "get")]:
            url = f"{QUEUE}/{outsider.org.pk}/{staged.pk}{suffix}"
            response = getattr(client, method)(url, {"reason": "x"}, format="json") if method == "post" else client.get(url)
            assert_error(response, 404, "NOT_FOUND")
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING

    def test_missing_and_not_reviewed_objects_are_404(self, platform_admin, staged):
        client = platform_admin.client()
        assert_error(client.get(f"{QUEUE}/{staged.organization_id}/fil_nope"), 404, "NOT_FOUND")
        StoredFile.objects.filter(pk=staged.pk).update(review_state=ReviewState.NOT_REQUIRED, status=FileStatus.ACTIVE)
        assert_error(client.get(obj_url(staged)), 404, "NOT_FOUND")
        assert_error(client.post(obj_url(staged, "/approve")), 404, "NOT_FOUND")


# --- decisions ----------------------------------------------------------------------------------


@pytest.mark.django_db
class TestApprove:
    def test_approve(self, platform_admin, staged, member, signal_log, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            data = data_of(platform_admin.client().post(obj_url(staged, "/approve")))
        assert set(data) == {"object_id", "status", "review_state", "reviewed_at"}
        assert data["object_id"] == staged.pk and data["status"] == "active" and data["review_state"] == "approved"
        assert data["reviewed_at"].endswith("Z")
        staged.refresh_from_db()
        assert staged.status == FileStatus.ACTIVE and staged.review_state == ReviewState.APPROVED
        assert staged.reviewed_by_id == platform_admin.user.pk and staged.reviewed_at is not None
        assert Task.objects.get(file=staged).status == TaskStatus.COMPLETED
        assert signal_log == [("activated", staged.pk)]
        event = AuditEvent.objects.get(action="review.approve", target_id=staged.pk)
        assert event.organization_id == staged.organization_id and event.actor_id == platform_admin.user.pk
        assert event.details["reviewer"] == platform_admin.user.email and event.details["decided_at"]
        # The tenant sees it active, and its upload completed (seed 002).
        file_view = data_of(member.client().get(f"/api/files/{member.org.pk}/{staged.pk}"))
        assert file_view["status"] == "active" and file_view["review_state"] == "approved"
        upload = data_of(member.client().get(f"/upload/{staged.upload_id}"))
        assert upload["status"] == "COMPLETED"

    def test_second_decision_is_409_and_changes_nothing(
        self, platform_admin, staged, signal_log, django_capture_on_commit_callbacks
    ):
        client = platform_admin.client()
        data_of(client.post(obj_url(staged, "/approve")))
        with django_capture_on_commit_callbacks(execute=True):
            assert_error(client.post(obj_url(staged, "/approve")), 409, "ALREADY_DECIDED")
            assert_error(client.post(obj_url(staged, "/reject"), {"reason": "late"}, format="json"), 409, "ALREADY_DECIDED")
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.APPROVED and staged.review_reason == ""
        assert signal_log == []
        assert AuditEvent.objects.filter(action__startswith="review.", target_id=staged.pk).count() == 1

    def test_deleted_object_is_404(self, platform_admin, staged, member):
        from uploads.services import file_delete

        url = obj_url(staged, "/approve")
        file_delete(actor=None, file=staged)
        assert_error(platform_admin.client().post(url), 404, "NOT_FOUND")

    def test_service_on_vanished_row_is_404_not_500(self, platform_admin, staged):
        from accounts.identity import Identity

        StoredFile.objects.filter(pk=staged.pk).delete()
        actor = services.admin_site_actor(platform_admin.user)
        assert isinstance(actor, Identity)
        with pytest.raises(services.NotFound):
            services.file_approve(actor=actor, file=staged)

    def test_tenant_identity_cannot_use_the_service(self, owner, staged):
        from accounts.identity import MODE_API_KEY, Identity
        from accounts.scopes import scopes_for_role

        actor = Identity(org=owner.org, user=owner.user, role="owner", mode=MODE_API_KEY, scopes=scopes_for_role("owner"))
        with pytest.raises(services.Forbidden):
            services.file_approve(actor=actor, file=staged)


@pytest.mark.django_db
class TestReject:
    REASON = "File contains personally identifiable information that must be redacted before upload."

    def test_reject(self, platform_admin, staged, member, signal_log, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            data = data_of(platform_admin.client().post(obj_url(staged, "/reject"), {"reason": self.REASON}, format="json"))
        assert data == {}
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.REJECTED and staged.status == FileStatus.FAILED
        assert staged.review_reason == self.REASON and staged.reviewed_by_id == platform_admin.user.pk
        assert signal_log == [("withdrawn", staged.pk)]
        task = Task.objects.get(file=staged)
        assert task.status == TaskStatus.FAILED
        assert (task.error_code, task.error_message) == ("REVIEW_REJECTED", self.REASON)
        event = AuditEvent.objects.get(action="review.reject", target_id=staged.pk)
        assert event.details["reason"] == self.REASON and event.actor_id == platform_admin.user.pk
        # The tenant sees the reason on the file and on its task.
        file_view = data_of(member.client().get(f"/api/files/{member.org.pk}/{staged.pk}"))
        assert file_view["review_state"] == "rejected"
        assert file_view["error"] == {"code": "REVIEW_REJECTED", "message": self.REASON}
        task_view = data_of(member.client().get(f"/task/{task.pk}"))
        assert task_view["error"] == {"code": "REVIEW_REJECTED", "message": self.REASON}
        assert task_view["status"] == "FAILED"
        detail = data_of(platform_admin.client().get(obj_url(staged)))
        assert detail["review_state"] == "rejected" and detail["reviewed_at"] and detail["review_reason"] == self.REASON

    @pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": "x" * 1001}])
    def test_missing_or_blank_reason_is_400(self, platform_admin, staged, body, signal_log, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            body_out = assert_error(platform_admin.client().post(obj_url(staged, "/reject"), body, format="json"), 400)
        assert body_out["error"] == "VALIDATION_ERROR"
        assert "reason" in body_out["details"]["fields"]
        staged.refresh_from_db()
        assert staged.review_state == ReviewState.PENDING and signal_log == []

    def test_malformed_json_is_400(self, platform_admin, staged):
        response = platform_admin.client().post(obj_url(staged, "/reject"), b"{nope", content_type="application/json")
        assert_error(response, 400)

    def test_reject_after_reject_is_409(self, platform_admin, staged):
        client = platform_admin.client()
        data_of(client.post(obj_url(staged, "/reject"), {"reason": "one"}, format="json"))
        assert_error(client.post(obj_url(staged, "/reject"), {"reason": "two"}, format="json"), 409, "ALREADY_DECIDED")
        assert_error(client.post(obj_url(staged, "/approve")), 409, "ALREADY_DECIDED")
        staged.refresh_from_db()
        assert staged.review_reason == "one" and staged.status == FileStatus.FAILED


# --- previews -----------------------------------------------------------------------------------


def preview_path(client, stored: StoredFile) -> tuple[str, dict]:
    data = data_of(client.get(obj_url(stored, "/preview")))
    assert set(data) == {"preview_url", "expires_at"}
    parsed = urlparse(data["preview_url"])
    assert parsed.scheme in ("http", "https") and parsed.netloc
    return parsed.path + (f"?{parsed.query}" if parsed.query else ""), data


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.django_db
class TestPreview:
    def test_preview_url_streams_the_file_with_safe_headers(self, platform_admin, staged, anon):
        path, data = preview_path(platform_admin.client(), staged)
        assert data["expires_at"].endswith("Z")
        response = anon.get(path)  # no credentials: the signed link is the credential
        assert response.status_code == 200
        assert body_of(response) == b"".join(storage.iter_chunks(staged.storage_key))
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert response["Content-Disposition"].startswith("inline")
        assert "no-store" in response["Cache-Control"]

    def test_expires_in_about_an_hour(self, platform_admin, staged):
        from datetime import datetime

        _path, data = preview_path(platform_admin.client(), staged)
        expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
        assert 3500 <= expires - time.time() <= 3700

    def test_thumbnail_variant(self, platform_admin, member, anon):
        stored = upload_staged(member, "doc.pdf", pdf())
        path, _ = preview_path(platform_admin.client(), stored)
        response = anon.get(path, {"variant": "thumbnail"})
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert body_of(response)[:8] == b"\x89PNG\r\n\x1a\n"
        # The PDF itself is not rendered inline by us: an attachment.
        original = anon.get(path)
        assert original["Content-Disposition"].startswith("attachment")
        assert original["Content-Type"] == "application/octet-stream"
        assert body_of(original)[:5] == b"%PDF-"

    def test_active_content_is_an_attachment(self, platform_admin, member, anon):
        stored = upload_staged(member, "page.html", HTML)
        path, _ = preview_path(platform_admin.client(), stored)
        response = anon.get(path)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Disposition"].startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]

    def test_audio_is_inline_for_the_player(self, platform_admin, member, anon):
        stored = upload_staged(member, "tone.wav", wav())
        path, _ = preview_path(platform_admin.client(), stored)
        response = anon.get(path)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("audio/")
        assert response["Content-Disposition"].startswith("inline")

    def test_tampered_token_is_refused(self, platform_admin, staged, anon):
        path, _ = preview_path(platform_admin.client(), staged)
        token = path.rsplit("/", 1)[1]
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        for bad in (flipped, token + "x", "garbage", token.split(":")[0]):
            assert_error(anon.get(f"/v1/admin/review/previews/{bad}"), 404, "NOT_FOUND")

    def test_token_for_another_purpose_is_refused(self, staged, anon):
        token, _ = signed.file_token_make(purpose="download", file_id=staged.pk, sha256=staged.sha256, ttl=3600)
        assert_error(anon.get(f"/v1/admin/review/previews/{token}"), 404, "NOT_FOUND")

    def test_forged_payload_for_another_file_is_refused(self, platform_admin, staged, staged_b, anon):
        # Re-sign is impossible without the key: a payload naming another file under the old signature fails.
        path, _ = preview_path(platform_admin.client(), staged)
        token = path.rsplit("/", 1)[1]
        payload, _, rest = token.partition(":")
        forged_payload = signing.b64_encode(
            signing.b64_decode(payload.encode()).replace(staged.pk.encode(), staged_b.pk.encode())
        ).decode()
        assert_error(anon.get(f"/v1/admin/review/previews/{forged_payload}:{rest}"), 404, "NOT_FOUND")

    def test_expired_token_is_refused(self, platform_admin, staged, anon, monkeypatch):
        path, _ = preview_path(platform_admin.client(), staged)
        assert anon.get(path).status_code == 200
        real = time.time
        monkeypatch.setattr(signed.time, "time", lambda: real() + 3601)
        assert_error(anon.get(path), 404, "NOT_FOUND")

    def test_token_dies_with_the_file_or_its_content(self, platform_admin, staged, anon):
        path, _ = preview_path(platform_admin.client(), staged)
        StoredFile.objects.filter(pk=staged.pk).update(sha256="0" * 64)
        assert_error(anon.get(path), 404, "NOT_FOUND")
        StoredFile.objects.filter(pk=staged.pk).delete()
        assert_error(anon.get(path), 404, "NOT_FOUND")
