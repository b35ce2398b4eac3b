"""Seed 003 ``GET /list-uploads-api`` and seed 000 ``DELETE /delete-upload-api``, in their
documented shapes (no envelope for the listing; the seed error shape for deletion)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.identity import system_identity
from accounts.services import setting_set
from tests.conftest import assert_error, data_of
from tests.uploads.filebytes import (
    eml_bytes,
    init_upload,
    jpeg_bytes,
    media_dirs_mentioning,
    media_paths_mentioning,
    png_bytes,
    stored_bytes,
    upload_file,
)
from uploads.models import StoredFile, Task, Upload
from uploads.processing import file_process

SEED_KEYS = {"upload_id", "user_id", "status", "filename", "s3_key", "file_size", "created_at", "expires_at"}
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00garbage, not an image" * 20


def listing(client, status: str | None = None, **extra):
    headers = {"HTTP_X_UPLOAD_STATUS": status} if status is not None else {}
    return client.get("/list-uploads-api", **headers, **extra)


def uploads_of(response) -> list[dict]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"uploads"}, body
    return body["uploads"]


def one_of_each_status(persona) -> dict[str, str]:
    """Real files driven to each seed status: pending, processing, reviewing, completed, failed."""
    client = persona.client()
    ids = {"pending": init_upload(client, "pending.jpg", size=10)["file_id"]}
    reviewing = upload_file(client, jpeg_bytes(), "reviewing.jpg")["id"]
    assert file_process(file_id=reviewing) == "staged"
    ids["reviewing"] = reviewing
    failed = upload_file(client, CORRUPT_PNG, "broken.png")["id"]
    assert file_process(file_id=failed) == "failed"
    ids["failed"] = failed
    setting_set(actor=system_identity(persona.org), key="review.required", value=False)
    completed = upload_file(client, png_bytes(), "completed.png")["id"]
    assert file_process(file_id=completed) == "active"
    ids["completed"] = completed
    ids["processing"] = upload_file(client, jpeg_bytes(color=(0, 0, 0)), "processing.jpg")["id"]
    return ids


@pytest.mark.django_db
class TestListUploads:
    def test_shape_is_exactly_the_seed(self, member):
        client = member.client()
        body = jpeg_bytes()
        done = upload_file(client, body, "report.jpg")
        pending = init_upload(client, "../../etc/passwd", size=77)

        uploads = uploads_of(listing(client))
        assert [u["upload_id"] for u in uploads] == [pending["file_id"], done["id"]]
        for item in uploads:
            assert set(item) == SEED_KEYS
            assert isinstance(item["created_at"], int) and not isinstance(item["created_at"], bool)
            assert item["expires_at"] is None or isinstance(item["expires_at"], int)
            assert item["user_id"] == member.user.pk

        newest, oldest = uploads
        stored = StoredFile.objects.get(pk=pending["file_id"])
        assert newest == {
            "upload_id": stored.pk,
            "user_id": member.user.pk,
            "status": "pending",
            "filename": "passwd",
            "s3_key": stored.storage_key,
            "file_size": 77,
            "created_at": int(stored.created_at.timestamp()),
            "expires_at": int(stored.expires_at.timestamp()),
        }
        assert oldest["status"] == "processing"
        assert oldest["file_size"] == len(body)
        assert oldest["filename"] == "report.jpg"
        assert oldest["expires_at"] is None  # no retention configured
        assert abs(oldest["created_at"] - int(timezone.now().timestamp())) < 60

    def test_newest_first(self, member):
        client = member.client()
        created = [init_upload(client, f"f{i}.jpg")["file_id"] for i in range(4)]
        assert [u["upload_id"] for u in uploads_of(listing(client))] == list(reversed(created))
        epochs = [u["created_at"] for u in uploads_of(listing(client))]
        assert epochs == sorted(epochs, reverse=True)

    def test_pages_with_limit_and_cursor(self, member):
        client = member.client()
        created = [init_upload(client, f"f{i}.jpg")["file_id"] for i in range(3)]
        first = client.get("/list-uploads-api", {"limit": 2})
        assert first.status_code == 200
        body = first.json()
        assert set(body) == {"uploads", "next_cursor"}
        assert [u["upload_id"] for u in body["uploads"]] == created[:0:-1]
        rest = client.get("/list-uploads-api", {"limit": 2, "cursor": body["next_cursor"]})
        assert [u["upload_id"] for u in uploads_of(rest)] == [created[0]]

    def test_status_filter(self, member):
        ids = one_of_each_status(member)
        client = member.client()
        assert {u["upload_id"] for u in uploads_of(listing(client))} == set(ids.values())
        for status, file_id in ids.items():
            uploads = uploads_of(listing(client, status))
            assert [(u["upload_id"], u["status"]) for u in uploads] == [(file_id, status)], status
        assert [u["upload_id"] for u in uploads_of(listing(client, " Completed "))] == [ids["completed"]]

    @pytest.mark.parametrize("status", ["done", "active", "staged", "COMPLETEDX", "*"])
    def test_invalid_status_is_400(self, member, status):
        init_upload(member.client())
        response = listing(member.client(), status)
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "INVALID_STATUS"

    def test_expired_uploads_are_omitted(self, member):
        client = member.client()
        kept = init_upload(client, "kept.jpg")["file_id"]
        lapsed = init_upload(client, "lapsed.jpg")["file_id"]
        StoredFile.objects.filter(pk=lapsed).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert [u["upload_id"] for u in uploads_of(listing(client))] == [kept]
        assert [u["upload_id"] for u in uploads_of(listing(client, "pending"))] == [kept]

    def test_derived_files_are_not_listed(self, member):
        client = member.client()
        message = upload_file(client, eml_bytes(attachments=2), "mail.eml")["id"]
        file_process(file_id=message)
        assert StoredFile.objects.filter(parent_id=message).count() == 2
        assert [u["upload_id"] for u in uploads_of(listing(client))] == [message]

    def test_other_orgs_files_are_never_listed(self, member, outsider):
        mine = upload_file(member.client(), jpeg_bytes())["id"]
        theirs = upload_file(outsider.client(), jpeg_bytes())["id"]
        init_upload(outsider.client())
        assert [u["upload_id"] for u in uploads_of(listing(member.client()))] == [mine]
        assert theirs in [u["upload_id"] for u in uploads_of(listing(outsider.client()))]
        for status in ("pending", "processing"):
            assert mine not in [u["upload_id"] for u in uploads_of(listing(outsider.client(), status))]

    def test_empty_listing(self, member):
        assert uploads_of(listing(member.client())) == []

    def test_viewer_may_list(self, member, viewer):
        file_id = upload_file(member.client(), jpeg_bytes())["id"]
        assert [u["upload_id"] for u in uploads_of(listing(viewer.client()))] == [file_id]

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"HTTP_X_API_KEY": "garbage"},
            {"HTTP_X_API_KEY": "fck_000000000000_" + "a" * 43},
            {"HTTP_AUTHORIZATION": "Bearer nonsense"},
        ],
    )
    def test_missing_or_invalid_key_is_401_unauthorized(self, member, headers):
        init_upload(member.client())
        response = APIClient().get("/list-uploads-api", **headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}

    def test_truncated_key_is_401(self, member):
        response = APIClient().get("/list-uploads-api", HTTP_X_API_KEY=member.key[:-1])
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}

    def test_lowercase_header_names_work(self, member):
        file_id = upload_file(member.client(), jpeg_bytes())["id"]
        response = APIClient().get("/list-uploads-api", headers={"x-api-key": member.key, "x-upload-status": "processing"})
        assert [u["upload_id"] for u in uploads_of(response)] == [file_id]


def delete_by_body(client, upload_id: str):
    return client.delete("/delete-upload-api", {"upload_id": upload_id}, format="json")


def delete_by_header(client, upload_id: str):
    return client.delete("/delete-upload-api", HTTP_X_UPLOAD_ID=upload_id)


@pytest.mark.django_db
class TestDeleteUpload:
    @pytest.mark.parametrize("send", [delete_by_body, delete_by_header])
    def test_delete_removes_bytes_rows_and_thumbnail(self, member, send, django_capture_on_commit_callbacks):
        client = member.client()
        body = jpeg_bytes()
        data = upload_file(client, body)
        file_process(file_id=data["id"])
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored_bytes(stored.storage_key) == body and stored.thumbnail_key

        with django_capture_on_commit_callbacks(execute=True):
            response = send(client, stored.pk)
        assert data_of(response) == {"upload_id": stored.pk, "deleted": True, "deleted_files": 1}
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
        assert not Task.objects.filter(file_id=stored.pk).exists()
        assert not Upload.objects.filter(pk=stored.upload_id).exists()
        assert stored_bytes(stored.storage_key) is None
        assert stored_bytes(stored.thumbnail_key) is None
        assert media_paths_mentioning(stored.pk) == []
        assert media_dirs_mentioning(stored.pk) == []
        assert_error(send(client, stored.pk), 404, "NOT_FOUND")

    def test_delete_takes_derived_files_with_it(self, member, django_capture_on_commit_callbacks):
        client = member.client()
        message = upload_file(client, eml_bytes(attachments=2), "mail.eml")["id"]
        file_process(file_id=message)
        children = list(StoredFile.objects.filter(parent_id=message))
        assert len(children) == 2
        for child in children:
            assert file_process(file_id=child.pk) == "staged"
        children = list(StoredFile.objects.filter(parent_id=message))
        keys = [c.storage_key for c in children] + [c.thumbnail_key for c in children if c.thumbnail_key]
        assert all(stored_bytes(k) is not None for k in keys)
        upload_id = StoredFile.objects.get(pk=message).upload_id
        assert Task.objects.filter(upload_id=upload_id).count() == 3

        with django_capture_on_commit_callbacks(execute=True):
            response = delete_by_body(client, message)
        assert data_of(response)["deleted_files"] == 3
        assert not StoredFile.objects.filter(pk__in=[message, *[c.pk for c in children]]).exists()
        assert not Task.objects.filter(upload_id=upload_id).exists()
        assert not Upload.objects.filter(pk=upload_id).exists()
        assert all(stored_bytes(k) is None for k in keys)
        assert media_paths_mentioning(message, *[c.pk for c in children]) == []
        assert media_dirs_mentioning(message, *[c.pk for c in children]) == []

    def test_delete_pending_upload(self, member, django_capture_on_commit_callbacks):
        client = member.client()
        started = init_upload(client)
        with django_capture_on_commit_callbacks(execute=True):
            data_of(delete_by_header(client, started["file_id"]))
        assert not StoredFile.objects.filter(pk=started["file_id"]).exists()
        assert not Upload.objects.filter(pk=started["upload_id"]).exists()

    @pytest.mark.parametrize(
        "send",
        [
            lambda c: c.delete("/delete-upload-api"),
            lambda c: c.delete("/delete-upload-api", {}, format="json"),
            lambda c: c.delete("/delete-upload-api", {"upload_id": ""}, format="json"),
            lambda c: c.delete("/delete-upload-api", HTTP_X_UPLOAD_ID=""),
        ],
    )
    def test_missing_id_is_400_in_the_seed_error_shape(self, member, send):
        upload_file(member.client(), jpeg_bytes())
        response = send(member.client())
        body = assert_error(response, 400)
        assert set(body) == {"status", "request_id", "error", "details"}
        assert body["status"] == "error" and "message" in body["details"]
        assert StoredFile.objects.count() == 1

    def test_other_orgs_id_is_404_and_their_file_stays(self, member, outsider, django_capture_on_commit_callbacks):
        body = jpeg_bytes()
        theirs = upload_file(outsider.client(), body)["id"]
        stored = StoredFile.objects.get(pk=theirs)
        with django_capture_on_commit_callbacks(execute=True):
            assert_error(delete_by_body(member.client(), theirs), 404, "NOT_FOUND")
            assert_error(delete_by_header(member.client(), theirs), 404, "NOT_FOUND")
        assert StoredFile.objects.filter(pk=theirs).exists()
        assert Task.objects.filter(file_id=theirs).exists()
        assert stored_bytes(stored.storage_key) == body

    def test_viewer_cannot_delete(self, member, viewer):
        file_id = upload_file(member.client(), jpeg_bytes())["id"]
        assert_error(delete_by_body(viewer.client(), file_id), 403, "INSUFFICIENT_SCOPE")
        assert StoredFile.objects.filter(pk=file_id).exists()

    def test_delete_without_key_is_401(self, member):
        file_id = upload_file(member.client(), jpeg_bytes())["id"]
        assert_error(delete_by_body(APIClient(), file_id), 401)
        assert StoredFile.objects.filter(pk=file_id).exists()
