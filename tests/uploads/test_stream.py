"""Streamed uploads: POST /api/uploads/init, PUT …/data, …/abort, …/complete; quotas; processing."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from django.conf import settings
from django.test import override_settings

from accounts.identity import system_identity
from accounts.models import AuditEvent, Organization
from accounts.services import setting_set
from tests.conftest import assert_error, data_of, record_published
from tests.uploads.filebytes import (
    chunked_put,
    init_upload,
    jpeg_bytes,
    partial_files,
    png_bytes,
    put_bytes,
    sha256_of,
    stored_bytes,
    upload_file,
)
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus, Upload
from uploads.processing import file_process


def small_uploads(limit: int):
    return override_settings(FILECONVERT={**settings.FILECONVERT, "MAX_UPLOAD_BYTES": limit})


def set_quota(org: Organization, **fields) -> None:
    Organization.objects.filter(pk=org.pk).update(**fields)


@pytest.mark.django_db
class TestInit:
    def test_init_shape(self, member):
        started = init_upload(member.client(), "photo.jpg", size=1234, content_type="image/jpeg")
        assert set(started) == {"method", "upload_url", "file_id", "upload_id", "max_bytes", "expires_at"}
        assert started["method"] == "PUT"
        assert started["upload_url"] == f"http://testserver/api/uploads/{started['file_id']}/data"
        assert started["upload_url"].endswith("/data")
        assert started["file_id"].startswith("fil_") and started["upload_id"].startswith("upl_")
        assert started["max_bytes"] == settings.FILECONVERT["MAX_UPLOAD_BYTES"]
        assert datetime.fromisoformat(started["expires_at"].replace("Z", "+00:00"))

        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.organization_id == member.org.pk
        assert stored.upload_id == started["upload_id"]
        assert stored.status == FileStatus.PENDING and stored.confirmed_at is None
        assert stored.expected_size == 1234 and stored.claimed_content_type == "image/jpeg"
        assert stored.uploaded_by_id == member.user.pk
        assert Task.objects.get(file=stored).status == TaskStatus.PROCESSING
        assert Upload.objects.get(pk=started["upload_id"]).source == Upload.SOURCE_STREAM
        assert AuditEvent.objects.filter(organization=member.org, action="file.init", target_id=stored.pk).exists()

    def test_max_bytes_is_bounded_by_the_quota_left(self, member):
        set_quota(member.org, storage_quota_bytes=5000)
        assert init_upload(member.client())["max_bytes"] == 5000

    @pytest.mark.parametrize(
        ("raw", "display"),
        [
            ("../../etc/passwd", "passwd"),
            ("a\u202egnp.exe", "agnp.exe"),
            ("．．／x", "x"),
            ("..\\..\\windows\\win.ini", "win.ini"),
            ("C:report.pdf", "C_report.pdf"),
            ("...", "file"),
        ],
    )
    def test_hostile_filenames_are_sanitised(self, member, raw, display):
        started = init_upload(member.client(), raw)
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.name == display
        prefix = f"{member.org.pk}/{stored.pk}/"
        assert stored.storage_key.startswith(prefix)
        slug = stored.storage_key[len(prefix) :]
        assert slug and "/" not in slug and "\\" not in slug and ".." not in slug
        assert slug.isascii()

    def test_negative_or_oversized_size_is_refused(self, member):
        client = member.client()
        assert_error(client.post("/api/uploads/init", {"filename": "a.jpg", "size": -1}, format="json"), 400)
        with small_uploads(100):
            body = assert_error(client.post("/api/uploads/init", {"filename": "a.jpg", "size": 101}, format="json"), 413)
            assert body["error"] == "PAYLOAD_TOO_LARGE"
        assert not StoredFile.objects.exists()

    def test_filename_is_required(self, member):
        assert_error(member.client().post("/api/uploads/init", {}, format="json"), 400)
        assert not StoredFile.objects.exists()


@pytest.mark.django_db
class TestPutData:
    def test_put_with_matching_checksum_stores_the_bytes(self, member):
        client = member.client()
        body = jpeg_bytes()
        started = init_upload(client, "photo.jpg", size=len(body))
        response = put_bytes(client, started["file_id"], body, sha256_of(body))
        data = data_of(response)
        assert data["id"] == started["file_id"]
        assert data["status"] == FileStatus.PROCESSING
        assert data["size"] == len(body)
        assert data["sha256"] == sha256_of(body)

        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.confirmed_at is not None and stored.size == len(body)
        assert stored_bytes(stored.storage_key) == body
        assert partial_files() == []

    def test_put_without_checksum_records_the_digest(self, member):
        client = member.client()
        body = jpeg_bytes(color=(1, 2, 3))
        started = init_upload(client)
        assert data_of(put_bytes(client, started["file_id"], body))["sha256"] == sha256_of(body)

    def test_checksum_given_at_init_is_enforced(self, member):
        client = member.client()
        body = jpeg_bytes()
        started = init_upload(client, sha256=sha256_of(b"something else"))
        assert_error(put_bytes(client, started["file_id"], body), 400, "CHECKSUM_MISMATCH")
        assert stored_bytes(StoredFile.objects.get(pk=started["file_id"]).storage_key) is None

    def test_checksum_mismatch_keeps_nothing_and_a_retry_succeeds(self, member):
        client = member.client()
        body = jpeg_bytes()
        started = init_upload(client)
        stored = StoredFile.objects.get(pk=started["file_id"])

        response = put_bytes(client, stored.pk, body, sha256_of(body + b"x"))
        assert_error(response, 400, "CHECKSUM_MISMATCH")
        stored.refresh_from_db()
        assert stored.status == FileStatus.PENDING
        assert stored.confirmed_at is None and stored.size is None
        assert stored_bytes(stored.storage_key) is None
        assert partial_files() == []

        data = data_of(put_bytes(client, stored.pk, body, sha256_of(body).upper()))
        assert data["status"] == FileStatus.PROCESSING
        assert stored_bytes(stored.storage_key) == body

    def test_malformed_checksum_header_is_400(self, member):
        client = member.client()
        started = init_upload(client)
        assert_error(put_bytes(client, started["file_id"], jpeg_bytes(), "not-a-digest"), 400, "VALIDATION_ERROR")
        assert StoredFile.objects.get(pk=started["file_id"]).status == FileStatus.PENDING

    def test_empty_body_is_refused(self, member):
        client = member.client()
        started = init_upload(client)
        assert_error(put_bytes(client, started["file_id"], b""), 400)
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.status == FileStatus.PENDING and stored_bytes(stored.storage_key) is None

    def test_announced_content_length_over_the_limit_is_413(self, member):
        client = member.client()
        started = init_upload(client)
        body = jpeg_bytes()
        with small_uploads(len(body) - 1):
            assert_error(put_bytes(client, started["file_id"], body), 413, "PAYLOAD_TOO_LARGE")
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.status == FileStatus.PENDING
        assert stored_bytes(stored.storage_key) is None
        assert partial_files() == []

    def test_chunked_body_over_the_limit_is_413_while_reading(self, member):
        client = member.client()
        started = init_upload(client)
        body = jpeg_bytes()
        with small_uploads(len(body) - 1):
            assert_error(chunked_put(client, started["file_id"], body), 413, "PAYLOAD_TOO_LARGE")
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.status == FileStatus.PENDING
        assert stored_bytes(stored.storage_key) is None
        assert partial_files() == []

    def test_chunked_body_within_the_limit_is_accepted(self, member):
        client = member.client()
        started = init_upload(client)
        body = jpeg_bytes()
        with small_uploads(len(body)):
            data = data_of(chunked_put(client, started["file_id"], body, HTTP_X_CONTENT_SHA256=sha256_of(body)))
        assert data["size"] == len(body)
        assert stored_bytes(StoredFile.objects.get(pk=started["file_id"]).storage_key) == body

    def test_body_shorter_than_announced_is_400_and_not_kept(self, member):
        client = member.client()
        started = init_upload(client)
        body = jpeg_bytes()
        response = client.generic(
            "PUT",
            f"/api/uploads/{started['file_id']}/data",
            b"",
            content_type="application/octet-stream",
            CONTENT_LENGTH=str(len(body) + 100),
            **{"wsgi.input": io.BytesIO(body)},
        )
        assert_error(response, 400, "INCOMPLETE_BODY")
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.status == FileStatus.PENDING and stored_bytes(stored.storage_key) is None
        assert partial_files() == []

    def test_no_length_and_not_chunked_is_400(self, member):
        client = member.client()
        started = init_upload(client)
        response = client.generic(
            "PUT", f"/api/uploads/{started['file_id']}/data", b"", content_type="application/octet-stream", CONTENT_LENGTH=""
        )
        assert_error(response, 400, "LENGTH_REQUIRED")

    def test_second_put_after_success_is_409(self, member):
        client = member.client()
        body = jpeg_bytes()
        started = init_upload(client)
        data_of(put_bytes(client, started["file_id"], body))
        other = png_bytes()
        assert_error(put_bytes(client, started["file_id"], other), 409, "ALREADY_UPLOADED")
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored_bytes(stored.storage_key) == body
        assert stored.size == len(body) and stored.status == FileStatus.PROCESSING


@pytest.mark.django_db
class TestAbortAndComplete:
    def test_abort_removes_the_row_task_and_upload(self, member):
        client = member.client()
        started = init_upload(client)
        response = client.post(f"/api/uploads/{started['file_id']}/abort")
        assert data_of(response) == {"file_id": started["file_id"], "aborted": True}
        assert not StoredFile.objects.filter(pk=started["file_id"]).exists()
        assert not Task.objects.filter(file_id=started["file_id"]).exists()
        assert not Upload.objects.filter(pk=started["upload_id"]).exists()
        assert_error(client.post(f"/api/uploads/{started['file_id']}/abort"), 404, "NOT_FOUND")
        assert_error(put_bytes(client, started["file_id"], jpeg_bytes()), 404, "NOT_FOUND")

    def test_abort_after_completion_is_409(self, member):
        client = member.client()
        body = jpeg_bytes()
        started = init_upload(client)
        data_of(put_bytes(client, started["file_id"], body))
        assert_error(client.post(f"/api/uploads/{started['file_id']}/abort"), 409, "ALREADY_UPLOADED")
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored_bytes(stored.storage_key) == body
        assert Task.objects.filter(file=stored).exists()

    def test_complete_without_bytes_is_409(self, member):
        client = member.client()
        started = init_upload(client)
        assert_error(client.post(f"/api/uploads/{started['file_id']}/complete"), 409, "NOT_UPLOADED")
        assert StoredFile.objects.get(pk=started["file_id"]).status == FileStatus.PENDING

    def test_complete_after_put_returns_the_confirmed_file(self, member):
        client = member.client()
        body = jpeg_bytes()
        started = init_upload(client)
        data_of(put_bytes(client, started["file_id"], body))
        data = data_of(client.post(f"/api/uploads/{started['file_id']}/complete"))
        assert data["status"] == FileStatus.PROCESSING and data["size"] == len(body)


@pytest.mark.django_db
class TestQuota:
    def test_init_over_the_storage_quota_is_413(self, member):
        set_quota(member.org, storage_quota_bytes=1000)
        response = member.client().post("/api/uploads/init", {"filename": "a.jpg", "size": 1001}, format="json")
        assert_error(response, 413, "QUOTA_EXCEEDED")
        assert not StoredFile.objects.exists()

    def test_put_over_the_remaining_quota_is_413_and_other_orgs_are_unaffected(self, member, outsider):
        body = jpeg_bytes()
        first = upload_file(member.client(), body)
        set_quota(member.org, storage_quota_bytes=first["size"] + len(body) - 1)
        set_quota(outsider.org, storage_quota_bytes=len(body))

        client = member.client()
        started = init_upload(client)
        assert started["max_bytes"] == len(body) - 1
        assert_error(put_bytes(client, started["file_id"], body), 413)
        assert_error(chunked_put(client, started["file_id"], body), 413)
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.status == FileStatus.PENDING and stored_bytes(stored.storage_key) is None

        theirs = upload_file(outsider.client(), body)
        assert theirs["size"] == len(body)
        assert data_of(outsider.client().get("/api/usage"))["storage_bytes"] == len(body)
        assert data_of(member.client().get("/api/usage"))["storage_bytes"] == first["size"]

    def test_file_quota_zero_is_413(self, member, outsider):
        set_quota(member.org, file_quota=0)
        response = member.client().post("/api/uploads/init", {"filename": "a.jpg"}, format="json")
        assert_error(response, 413, "QUOTA_EXCEEDED")
        assert not StoredFile.objects.filter(organization=member.org).exists()
        init_upload(outsider.client())

    def test_file_quota_reached_refuses_the_next_upload(self, member):
        client = member.client()
        upload_file(client, jpeg_bytes())
        set_quota(member.org, file_quota=1)
        assert_error(client.post("/api/uploads/init", {"filename": "b.jpg"}, format="json"), 413, "QUOTA_EXCEEDED")


@pytest.mark.django_db
class TestProcessing:
    def test_review_required_by_default_stages_the_file(self, member):
        client = member.client()
        body = jpeg_bytes()
        data = upload_file(client, body, "photo.jpg", content_type="image/jpeg")
        assert file_process(file_id=data["id"]) == "staged"
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.status == FileStatus.STAGED
        assert stored.review_state == ReviewState.PENDING
        assert Task.objects.get(file=stored).status == TaskStatus.REVIEWING
        assert stored.kind == "jpeg" and stored.content_type == "image/jpeg"
        assert stored.metadata["width"] == 48 and stored.metadata["height"] == 32
        assert stored.thumbnail_key and stored_bytes(stored.thumbnail_key)[:8] == b"\x89PNG\r\n\x1a\n"
        # A second delivery of the same message does nothing.
        assert file_process(file_id=data["id"]) == "skipped"

    def test_without_review_the_file_is_active_and_the_type_comes_from_the_bytes(self, member):
        setting_set(actor=system_identity(member.org), key="review.required", value=False)
        client = member.client()
        body = png_bytes()
        data = upload_file(client, body, "photo.jpg", content_type="image/jpeg")
        assert file_process(file_id=data["id"]) == "active"
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.status == FileStatus.ACTIVE
        assert stored.review_state == ReviewState.NOT_REQUIRED
        assert Task.objects.get(file=stored).status == TaskStatus.COMPLETED
        assert stored.content_type == "image/png" and stored.kind == "png"
        assert stored.claimed_content_type == "image/jpeg"
        assert stored.name == "photo.jpg"
        assert stored.thumbnail_key == f"{member.org.pk}/{stored.pk}/.thumbnail.png"
        assert stored_bytes(stored.thumbnail_key) is not None
        got = data_of(client.get(f"/api/files/{member.org.pk}/{stored.pk}"))
        assert got["content_type"] == "image/png" and got["has_thumbnail"] is True

    def test_processing_is_enqueued_on_commit(self, member, django_capture_on_commit_callbacks):
        client = member.client()
        started = init_upload(client)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            data_of(put_bytes(client, started["file_id"], jpeg_bytes()))
        assert len(callbacks) == 1
        # Stamped in the confirming commit itself, so a message lost after it is the sweeper's.
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.process_enqueued_at is not None and stored.process_enqueued_at == stored.confirmed_at

    def test_pending_files_are_not_processed(self, member):
        started = init_upload(member.client())
        assert file_process(file_id=started["file_id"]) == "skipped"
        assert StoredFile.objects.get(pk=started["file_id"]).status == FileStatus.PENDING


@pytest.mark.django_db
class TestIsolationAndScopes:
    def test_outsider_gets_404_everywhere_and_nothing_changes(self, member, outsider):
        client = member.client()
        pending = init_upload(client)
        body = jpeg_bytes()
        done = upload_file(client, body)
        theirs = outsider.client()

        for file_id in (pending["file_id"], done["id"]):
            assert_error(put_bytes(theirs, file_id, png_bytes()), 404, "NOT_FOUND")
            assert_error(chunked_put(theirs, file_id, png_bytes()), 404, "NOT_FOUND")
            assert_error(theirs.post(f"/api/uploads/{file_id}/abort"), 404, "NOT_FOUND")
            assert_error(theirs.post(f"/api/uploads/{file_id}/complete"), 404, "NOT_FOUND")

        still_pending = StoredFile.objects.get(pk=pending["file_id"])
        assert still_pending.status == FileStatus.PENDING and stored_bytes(still_pending.storage_key) is None
        confirmed = StoredFile.objects.get(pk=done["id"])
        assert confirmed.status == FileStatus.PROCESSING and stored_bytes(confirmed.storage_key) == body
        assert not StoredFile.objects.filter(organization=outsider.org).exists()
        assert not AuditEvent.objects.filter(organization=outsider.org, action__startswith="file.").exists()

    def test_unknown_id_is_404_like_another_orgs(self, member):
        assert_error(put_bytes(member.client(), "fil_doesnotexist", jpeg_bytes()), 404, "NOT_FOUND")

    def test_viewer_cannot_init_or_send_bytes(self, member, viewer):
        started = init_upload(member.client())
        client = viewer.client()
        assert_error(client.post("/api/uploads/init", {"filename": "a.jpg"}, format="json"), 403, "INSUFFICIENT_SCOPE")
        assert_error(put_bytes(client, started["file_id"], jpeg_bytes()), 403, "INSUFFICIENT_SCOPE")
        assert_error(client.post(f"/api/uploads/{started['file_id']}/abort"), 403, "INSUFFICIENT_SCOPE")
        assert_error(client.post(f"/api/uploads/{started['file_id']}/complete"), 403, "INSUFFICIENT_SCOPE")
        assert StoredFile.objects.count() == 1
        assert StoredFile.objects.get(pk=started["file_id"]).status == FileStatus.PENDING

    def test_no_credentials_is_401(self, member, anon):
        started = init_upload(member.client())
        assert_error(anon.post("/api/uploads/init", {"filename": "a.jpg"}, format="json"), 401)
        assert_error(put_bytes(anon, started["file_id"], jpeg_bytes()), 401)


@pytest.mark.django_db
def test_the_sweeper_publishes_a_confirmed_file_that_never_got_a_message(member, monkeypatch):
    # A confirmation whose publish was lost (the process died after the commit, the broker
    # was down): the row says when it was enqueued, in the same commit, and the sweeper
    # takes it up once that is old enough; a row from before that stamp, by its confirmation.
    from datetime import timedelta

    from django.utils import timezone

    from uploads import services as upload_services

    published = record_published(monkeypatch, "uploads.tasks.process_file")
    client = member.client()
    started = init_upload(client)
    data_of(put_bytes(client, started["file_id"], jpeg_bytes()))
    published.clear()  # as if that message had been lost
    assert upload_services.file_reprocess_if_stuck() == 0  # not yet: it was enqueued just now
    an_hour_ago = timezone.now() - timedelta(hours=1)
    StoredFile.objects.filter(pk=started["file_id"]).update(process_enqueued_at=an_hour_ago, confirmed_at=an_hour_ago)
    assert upload_services.file_reprocess_if_stuck() == 1 and published == [started["file_id"]]
    published.clear()
    StoredFile.objects.filter(pk=started["file_id"]).update(process_enqueued_at=None, confirmed_at=an_hour_ago)
    assert upload_services.file_reprocess_if_stuck() == 1 and published == [started["file_id"]]
