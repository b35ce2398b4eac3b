"""Seed 000 "Upload API" in the embedded (local disk) mode: POST /upload-api, then the
form POST to our stand-in for the bucket, checked against the signed policy."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import assert_error, data_of
from tests.uploads.filebytes import jpeg_bytes, noise_png, partial_files, png_bytes, sha256_of, stored_bytes
from uploads.models import FileStatus, StoredFile, Upload
from uploads.processing import file_process
from uploads.services import PRESIGN_SALT


def fileconvert(**overrides):
    return override_settings(FILECONVERT={**settings.FILECONVERT, **overrides})


def presign(client, filename: str = "photo.png", **fields) -> dict:
    return data_of(client.post("/upload-api", {"filename": filename, **fields}, format="json"), 201)


def post_form(url: str, fields: dict, body: bytes, filename: str = "photo.png", field_name: str = "file"):
    """The browser's form POST: policy fields first, then the file; no credentials at all."""
    form = {**fields, field_name: SimpleUploadedFile(filename, body, content_type="image/png")}
    return APIClient().post(url, form, format="multipart")


class _PastSigner(signing.TimestampSigner):
    """A TimestampSigner whose clock is ``age`` seconds behind: a policy signed long ago."""

    def __init__(self, *args, age: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.age = age

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - self.age)


@pytest.mark.django_db
class TestPresignedUpload:
    def test_response_shape(self, member):
        created = presign(member.client(), "photo.png", size=100, content_type="image/png")
        assert set(created) == {"upload_id", "url", "fields", "method", "max_bytes", "expires_at"}
        assert created["method"] == "POST"
        assert set(created["fields"]) == {"key", "policy"}
        stored = StoredFile.objects.get(pk=created["upload_id"])
        assert created["fields"]["key"] == stored.storage_key
        assert stored.storage_key.startswith(f"{member.org.pk}/{stored.pk}/")
        assert stored.status == FileStatus.PENDING and stored.expected_size == 100
        assert Upload.objects.get(pk=stored.upload_id).source == Upload.SOURCE_PRESIGNED
        url = urlparse(created["url"])
        assert url.path == f"/api/uploads/{stored.pk}/form"
        assert parse_qs(url.query)["policy"] == [created["fields"]["policy"]]
        assert created["max_bytes"] == settings.FILECONVERT["MAX_UPLOAD_BYTES"]

    def test_filename_from_header_and_sanitised(self, member):
        response = member.client().post("/upload-api", {}, format="json", HTTP_X_FILE_NAME="../../etc/passwd")
        stored = StoredFile.objects.get(pk=data_of(response, 201)["upload_id"])
        assert stored.name == "passwd"
        assert stored.storage_key.startswith(f"{member.org.pk}/{stored.pk}/")

    def test_form_post_then_complete(self, member):
        client = member.client()
        created = presign(client)
        body = png_bytes()
        response = post_form(created["url"], created["fields"], body)
        assert response.status_code == 204, response.content
        assert response.content == b""

        stored = StoredFile.objects.get(pk=created["upload_id"])
        assert stored_bytes(stored.storage_key) == body
        assert stored.status == FileStatus.PENDING  # bytes are in; the client has not confirmed yet

        data = data_of(client.post(f"/api/uploads/{stored.pk}/complete"))
        assert data["status"] == FileStatus.PROCESSING
        assert data["size"] == len(body)
        stored.refresh_from_db()
        assert stored.confirmed_at is not None and stored.size == len(body)

        listed = client.get("/list-uploads-api", HTTP_X_UPLOAD_STATUS="processing").json()["uploads"]
        assert [u["upload_id"] for u in listed] == [stored.pk]
        assert listed[0]["file_size"] == len(body)
        files = data_of(client.get("/api/files", {"status": "processing"}))["items"]
        assert [f["id"] for f in files] == [stored.pk]

        # Completing twice is idempotent; the processing pipeline takes it from there.
        assert data_of(client.post(f"/api/uploads/{stored.pk}/complete"))["id"] == stored.pk
        assert file_process(file_id=stored.pk) == "staged"
        stored.refresh_from_db()
        assert stored.kind == "png" and stored.sha256 == sha256_of(body)

    def test_form_post_after_completion_is_refused(self, member):
        client = member.client()
        created = presign(client)
        body = png_bytes()
        assert post_form(created["url"], created["fields"], body).status_code == 204
        data_of(client.post(f"/api/uploads/{created['upload_id']}/complete"))
        assert_error(post_form(created["url"], created["fields"], jpeg_bytes()), 403, "POLICY_INVALID")
        assert stored_bytes(StoredFile.objects.get(pk=created["upload_id"]).storage_key) == body

    def test_wrong_key_field_is_403_and_nothing_is_stored(self, member):
        created = presign(member.client())
        stored = StoredFile.objects.get(pk=created["upload_id"])
        fields = {**created["fields"], "key": f"{member.org.pk}/{stored.pk}/other.png"}
        assert_error(post_form(created["url"], fields, png_bytes()), 403, "POLICY_KEY_MISMATCH")
        assert stored_bytes(stored.storage_key) is None
        assert stored_bytes(fields["key"]) is None
        assert partial_files() == []
        stored.refresh_from_db()
        assert stored.status == FileStatus.PENDING

    def test_key_of_another_upload_is_403(self, member):
        client = member.client()
        first = presign(client, "a.png")
        second = presign(client, "b.png")
        fields = {**first["fields"], "key": second["fields"]["key"]}
        assert_error(post_form(first["url"], fields, png_bytes()), 403, "POLICY_KEY_MISMATCH")
        assert stored_bytes(first["fields"]["key"]) is None
        assert stored_bytes(second["fields"]["key"]) is None

    def test_tampered_policy_is_403(self, member):
        created = presign(member.client())
        policy = created["fields"]["policy"]
        tampered = policy[:-1] + ("A" if policy[-1] != "A" else "B")
        url = f"/api/uploads/{created['upload_id']}/form?policy={tampered}"
        assert_error(post_form(url, {**created["fields"], "policy": tampered}, png_bytes()), 403, "POLICY_INVALID")
        assert_error(post_form(f"/api/uploads/{created['upload_id']}/form", created["fields"], png_bytes()), 403)
        assert stored_bytes(created["fields"]["key"]) is None

    def test_policy_of_another_upload_is_403(self, member):
        client = member.client()
        first = presign(client, "a.png")
        second = presign(client, "b.png")
        url = f"/api/uploads/{second['upload_id']}/form?policy={first['fields']['policy']}"
        assert_error(post_form(url, second["fields"], png_bytes()), 403, "POLICY_INVALID")
        assert stored_bytes(first["fields"]["key"]) is None
        assert stored_bytes(second["fields"]["key"]) is None

    def test_policy_with_raised_size_bound_signed_by_someone_else_is_403(self, member):
        created = presign(member.client())
        stored = StoredFile.objects.get(pk=created["upload_id"])
        forged = signing.dumps(
            {"f": stored.pk, "k": stored.storage_key, "m": 10**12}, key="not-our-secret", salt=PRESIGN_SALT, compress=True
        )
        url = f"/api/uploads/{stored.pk}/form?policy={forged}"
        assert_error(post_form(url, {**created["fields"], "policy": forged}, png_bytes()), 403, "POLICY_INVALID")

    def test_expired_policy_is_403(self, member):
        created = presign(member.client())
        stored = StoredFile.objects.get(pk=created["upload_id"])
        claims = {"f": stored.pk, "k": stored.storage_key, "m": created["max_bytes"]}
        with fileconvert(PRESIGNED_EXPIRES_SECONDS=30):
            old = _PastSigner(salt=PRESIGN_SALT, age=120).sign_object(claims, compress=True)
            assert signing.loads(old, salt=PRESIGN_SALT) == claims  # genuinely ours, only old
            url = f"/api/uploads/{stored.pk}/form?policy={old}"
            assert_error(post_form(url, {**created["fields"], "policy": old}, png_bytes()), 403, "POLICY_EXPIRED")

            fresh = _PastSigner(salt=PRESIGN_SALT, age=5).sign_object(claims, compress=True)
            url = f"/api/uploads/{stored.pk}/form?policy={fresh}"
            assert post_form(url, {**created["fields"], "policy": fresh}, png_bytes()).status_code == 204
        assert stored_bytes(stored.storage_key) == png_bytes()

    def test_oversize_body_is_413_and_nothing_is_stored(self, member):
        body = png_bytes(size=(64, 64))
        with fileconvert(MAX_UPLOAD_BYTES=len(body) - 1):
            created = presign(member.client())
        assert created["max_bytes"] == len(body) - 1
        assert_error(post_form(created["url"], created["fields"], body), 413, "PAYLOAD_TOO_LARGE")
        stored = StoredFile.objects.get(pk=created["upload_id"])
        assert stored_bytes(stored.storage_key) is None
        assert partial_files() == []
        assert stored.status == FileStatus.PENDING

    def test_policy_bound_follows_the_quota_left(self, member):
        from accounts.models import Organization

        Organization.objects.filter(pk=member.org.pk).update(storage_quota_bytes=300)
        created = presign(member.client())
        assert created["max_bytes"] == 300
        assert_error(post_form(created["url"], created["fields"], noise_png()), 413, "PAYLOAD_TOO_LARGE")
        assert stored_bytes(created["fields"]["key"]) is None

    def test_empty_file_and_wrong_field_are_refused(self, member):
        created = presign(member.client())
        assert_error(post_form(created["url"], created["fields"], b""), 400, "EMPTY_BODY")
        assert_error(post_form(created["url"], created["fields"], png_bytes(), field_name="upload"), 400)
        assert stored_bytes(created["fields"]["key"]) is None
        assert partial_files() == []

    def test_abort_removes_posted_bytes_and_closes_the_form(self, member):
        client = member.client()
        created = presign(client)
        assert post_form(created["url"], created["fields"], png_bytes()).status_code == 204
        assert data_of(client.post(f"/api/uploads/{created['upload_id']}/abort"))["aborted"] is True
        assert not StoredFile.objects.filter(pk=created["upload_id"]).exists()
        assert stored_bytes(created["fields"]["key"]) is None
        assert_error(post_form(created["url"], created["fields"], png_bytes()), 403, "POLICY_INVALID")
        assert stored_bytes(created["fields"]["key"]) is None

    def test_complete_before_the_form_post_is_409(self, member):
        client = member.client()
        created = presign(client)
        assert_error(client.post(f"/api/uploads/{created['upload_id']}/complete"), 409, "NOT_UPLOADED")

    def test_other_org_cannot_complete_and_viewer_cannot_presign(self, member, outsider, viewer):
        created = presign(member.client())
        assert post_form(created["url"], created["fields"], png_bytes()).status_code == 204
        assert_error(outsider.client().post(f"/api/uploads/{created['upload_id']}/complete"), 404, "NOT_FOUND")
        assert StoredFile.objects.get(pk=created["upload_id"]).status == FileStatus.PENDING
        assert_error(viewer.client().post("/upload-api", {"filename": "a.png"}, format="json"), 403, "INSUFFICIENT_SCOPE")
        assert_error(APIClient().post("/upload-api", {"filename": "a.png"}, format="json"), 401)


@pytest.mark.django_db
class TestRejectedFormLeavesEarlierBytes:
    """A refused form POST changes nothing, as S3 refuses before writing the object."""

    @pytest.mark.parametrize(
        "bad",
        [
            lambda created: post_form(created["url"], {**created["fields"], "key": "elsewhere"}, jpeg_bytes()),
            lambda created: post_form(created["url"], created["fields"], b""),
            lambda created: post_form(created["url"], created["fields"], jpeg_bytes(), field_name="upload"),
        ],
        ids=["wrong-key", "empty", "wrong-field"],
    )
    def test_refused_post_keeps_the_earlier_upload(self, member, bad):
        client = member.client()
        created = presign(client)
        body = png_bytes()
        assert post_form(created["url"], created["fields"], body).status_code == 204
        response = bad(created)
        assert response.status_code in (400, 403), response.content
        assert stored_bytes(created["fields"]["key"]) == body
        assert partial_files() == []
        assert data_of(client.post(f"/api/uploads/{created['upload_id']}/complete"))["size"] == len(body)
