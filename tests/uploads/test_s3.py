"""The upload paths against a real S3 API: moto's standalone server, spoken to over HTTP
by django-storages/boto3 exactly as in production (tests/s3.py).

Found while writing these: moto's server does not check a presigned POST against its
policy (neither the ``key`` condition nor ``content-length-range``), so the two tests
that expect S3 to refuse such posts are strict xfails; the product's own checks on
``complete`` (which do not depend on the storage enforcing anything) are tested
separately and pass.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from fileconvert import storage
from tests.conftest import assert_error, data_of
from tests.s3 import storage_on_bucket
from tests.uploads.filebytes import chunked_put, init_upload, png_bytes, put_bytes, sha256_of
from uploads.models import FileStatus, StoredFile
from uploads.processing import file_process

MiB = 1024 * 1024
pytestmark = pytest.mark.django_db


def _etag_parts(head: dict) -> int:
    """Parts of the object per its ETag: ``"<md5>-<n>"`` for a multipart upload, 1 for a single PUT."""
    etag = head["ETag"].strip('"')
    return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1


def _pending(file_id: str) -> bool:
    stored = StoredFile.objects.get(pk=file_id)
    return stored.status == FileStatus.PENDING and stored.confirmed_at is None


# --- Streamed uploads (PUT /api/uploads/{id}/data) ------------------------------------------


def test_large_streamed_upload_is_an_s3_multipart_upload(owner, s3_storage):
    body = os.urandom(20 * MiB + 123)
    client = owner.client()
    started = init_upload(client, "big.bin", size=len(body))

    file = data_of(put_bytes(client, started["file_id"], body, sha256_of(body)))

    assert file["status"] == FileStatus.PROCESSING
    assert file["size"] == len(body)
    assert file["sha256"] == sha256_of(body)
    stored = StoredFile.objects.get(pk=started["file_id"])
    assert stored.storage_key.startswith(f"{owner.org.pk}/{stored.pk}/")
    head = s3_storage.head(stored.storage_key)
    assert head is not None
    assert head["ContentLength"] == len(body)
    assert _etag_parts(head) == 3  # 8 MiB + 8 MiB + the rest
    assert hashlib.sha256(s3_storage.get(stored.storage_key)).hexdigest() == sha256_of(body)
    assert s3_storage.multipart_uploads() == []
    assert s3_storage.keys() == [stored.storage_key]

    # The pipeline reads the object back from S3 and verifies it against what was recorded.
    assert file_process(file_id=stored.pk) in ("active", "staged")
    stored.refresh_from_db()
    assert stored.status in (FileStatus.ACTIVE, FileStatus.STAGED)
    assert (stored.size, stored.sha256) == (len(body), sha256_of(body))


def test_small_streamed_upload_is_a_single_put(owner, s3_storage):
    body = os.urandom(100_000)
    client = owner.client()
    started = init_upload(client, "small.bin", content_type="application/x-test")

    data_of(put_bytes(client, started["file_id"], body, sha256_of(body)))

    stored = StoredFile.objects.get(pk=started["file_id"])
    head = s3_storage.head(stored.storage_key)
    assert head is not None
    assert head["ContentLength"] == len(body)
    assert head["ETag"].strip('"') == hashlib.md5(body).hexdigest()  # a single PutObject
    assert head["ContentType"] == "application/x-test"
    assert s3_storage.get(stored.storage_key) == body


def test_checksum_mismatch_aborts_the_multipart_upload(owner, s3_storage):
    body = os.urandom(20 * MiB)  # two parts are already in S3 when the digest is compared
    client = owner.client()
    started = init_upload(client, "big.bin")

    response = put_bytes(client, started["file_id"], body, "0" * 64)

    assert_error(response, 400, "CHECKSUM_MISMATCH")
    assert s3_storage.keys() == []
    assert s3_storage.multipart_uploads() == []
    assert _pending(started["file_id"])


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_over_limit_body_is_refused_and_nothing_is_left(owner, s3_storage, framing):
    owner.org.storage_quota_bytes = 10 * MiB  # the upload limit is what the quota leaves
    owner.org.save(update_fields=["storage_quota_bytes"])
    body = os.urandom(20 * MiB)
    client = owner.client()
    started = init_upload(client, "big.bin")
    assert started["max_bytes"] == 10 * MiB

    if framing == "chunked":  # no length up front: refused mid-stream, after one 8 MiB part went to S3
        response = chunked_put(client, started["file_id"], body)
    else:  # refused from the announced length, before any byte is stored
        response = put_bytes(client, started["file_id"], body)

    assert_error(response, 413, "QUOTA_EXCEEDED")  # the quota, not the size cap, set this limit
    assert s3_storage.keys() == []
    assert s3_storage.multipart_uploads() == []
    assert _pending(started["file_id"])


# --- Presigned POST (POST /upload-api, then POST /api/uploads/{id}/complete) ---------------


def _presign(client, filename: str = "photo.png", **fields) -> dict:
    return data_of(client.post("/upload-api", {"filename": filename, **fields}, format="json"), 201)


def _post_form(post: dict, body: bytes, **overrides) -> requests.Response:
    fields = {**post["fields"], **overrides}
    return requests.post(post["url"], data=fields, files={"file": ("photo.png", body, "image/png")}, timeout=30)


def test_presigned_post_round_trip(owner, s3_storage):
    body = png_bytes(size=(64, 48))
    client = owner.client()
    post = _presign(client)

    stored = StoredFile.objects.get(pk=post["upload_id"])
    assert post["method"] == "POST"
    assert post["url"] == f"{s3_storage.endpoint_url}/{s3_storage.bucket}"
    fields = post["fields"]
    assert {"key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"} <= set(fields)
    assert fields["key"] == stored.storage_key
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"key": stored.storage_key} in policy["conditions"]
    assert ["content-length-range", 1, post["max_bytes"]] in policy["conditions"]
    assert {"bucket": s3_storage.bucket} in policy["conditions"]
    assert_error(client.post(f"/api/uploads/{stored.pk}/complete"), 409, "NOT_UPLOADED")

    response = _post_form(post, body)

    assert response.status_code in (201, 204), response.text
    assert s3_storage.get(stored.storage_key) == body
    completed = data_of(client.post(f"/api/uploads/{stored.pk}/complete"))
    assert completed["status"] == FileStatus.PROCESSING
    assert completed["size"] == len(body)
    assert file_process(file_id=stored.pk) in ("active", "staged")
    stored.refresh_from_db()
    assert stored.status in (FileStatus.ACTIVE, FileStatus.STAGED)
    assert stored.size == len(body)
    assert stored.sha256 == sha256_of(body)
    assert stored.kind == "png"
    assert stored.thumbnail_key
    assert s3_storage.get(stored.thumbnail_key).startswith(b"\x89PNG")


def test_presigned_post_to_another_key_registers_nothing(owner, outsider, s3_storage):
    """Whatever the storage does with it, bytes under another key never confirm this upload."""
    client = owner.client()
    post = _presign(client)
    planted = f"{outsider.org.pk}/fil_planted/photo.png"

    _post_form(post, png_bytes(), key=planted)

    assert s3_storage.head(post["fields"]["key"]) is None
    assert_error(client.post(f"/api/uploads/{post['upload_id']}/complete"), 409, "NOT_UPLOADED")
    assert _pending(post["upload_id"])


@pytest.mark.xfail(strict=True, reason="moto does not enforce the presigned POST policy's key condition")
def test_s3_refuses_a_presigned_post_to_another_key(owner, outsider, s3_storage):
    post = _presign(owner.client())
    planted = f"{outsider.org.pk}/fil_planted/photo.png"

    response = _post_form(post, png_bytes(), key=planted)

    assert 400 <= response.status_code < 500, response.status_code
    assert s3_storage.head(planted) is None


def test_complete_refuses_an_object_larger_than_the_policy_allowed(owner, s3_storage):
    """If an oversized object lands at the key anyway, ``complete`` refuses it and deletes it."""
    owner.org.storage_quota_bytes = 4096
    owner.org.save(update_fields=["storage_quota_bytes"])
    client = owner.client()
    post = _presign(client)
    assert post["max_bytes"] == 4096
    key = post["fields"]["key"]
    s3_storage.client.put_object(Bucket=s3_storage.bucket, Key=key, Body=os.urandom(8192))

    assert_error(client.post(f"/api/uploads/{post['upload_id']}/complete"), 413, "QUOTA_EXCEEDED")

    assert s3_storage.head(key) is None
    assert _pending(post["upload_id"])


@pytest.mark.xfail(strict=True, reason="moto does not enforce the presigned POST policy's content-length-range")
def test_s3_refuses_a_presigned_post_over_the_content_length_range(owner, s3_storage):
    owner.org.storage_quota_bytes = 4096
    owner.org.save(update_fields=["storage_quota_bytes"])
    client = owner.client()
    post = _presign(client)
    assert post["max_bytes"] == 4096

    response = _post_form(post, os.urandom(8192))

    assert 400 <= response.status_code < 500, response.status_code
    assert s3_storage.head(post["fields"]["key"]) is None
    assert_error(client.post(f"/api/uploads/{post['upload_id']}/complete"), 409, "NOT_UPLOADED")


# --- Batch upload (POST /upload) and deletion (DELETE /delete-upload-api) --------------------


def test_batch_upload_processing_and_delete_on_s3(owner, s3_storage, django_capture_on_commit_callbacks):
    png = png_bytes(size=(80, 60))
    notes = b"line of notes\n" * 500
    client = owner.client()

    response = client.post(
        "/upload",
        {
            "name": "two files",
            "files": [SimpleUploadedFile("a.png", png, "image/png"), SimpleUploadedFile("notes.txt", notes, "text/plain")],
        },
        format="multipart",
    )

    upload = data_of(response, 201)
    files = {f.name: f for f in StoredFile.objects.filter(upload_id=upload["id"])}
    assert set(files) == {"a.png", "notes.txt"}
    for stored, body in ((files["a.png"], png), (files["notes.txt"], notes)):
        assert stored.storage_key.startswith(f"{owner.org.pk}/{stored.pk}/")
        assert s3_storage.get(stored.storage_key) == body
        assert stored.sha256 == sha256_of(body)
        assert file_process(file_id=stored.pk) in ("active", "staged")
        stored.refresh_from_db()
        assert stored.status in (FileStatus.ACTIVE, FileStatus.STAGED)
    assert files["a.png"].thumbnail_key == f"{owner.org.pk}/{files['a.png'].pk}/.thumbnail.png"
    assert s3_storage.get(files["a.png"].thumbnail_key).startswith(b"\x89PNG")
    assert not files["notes.txt"].thumbnail_key
    assert s3_storage.multipart_uploads() == []
    assert len(s3_storage.keys(f"{owner.org.pk}/")) == 3

    for stored in files.values():
        with django_capture_on_commit_callbacks(execute=True):  # the objects go once the rows are gone
            deleted = data_of(client.delete("/delete-upload-api", {"upload_id": stored.pk}, format="json"))
        assert deleted == {"upload_id": stored.pk, "deleted": True, "deleted_files": 1}
        assert s3_storage.keys(f"{owner.org.pk}/{stored.pk}/") == []
    assert s3_storage.keys() == []
    assert not StoredFile.objects.filter(upload_id=upload["id"]).exists()


# --- Readiness ------------------------------------------------------------------------------


def test_readiness_checks_the_s3_bucket(anon, s3_storage):
    ready = data_of(anon.get("/api/health/ready"))

    assert ready["status"] == "ready"
    assert ready["checks"]["storage"]["ok"] is True


def test_readiness_fails_when_the_bucket_does_not_exist(db, anon, moto_server):
    with storage_on_bucket(endpoint_url=moto_server, bucket=f"fileconvert-missing-{uuid.uuid4().hex[:12]}"):
        assert storage.is_s3()
        response = anon.get("/api/health/ready")

    body = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    checks = body["details"]["checks"]
    assert checks["storage"]["ok"] is False
    assert checks["storage"]["error"]
    assert checks["database"]["ok"] is True
