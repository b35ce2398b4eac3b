"""Downloads from a real S3 API (moto's server over HTTP): a range is an S3 ranged GET, never
the whole object; the full body streams; share links work the same on S3."""

from __future__ import annotations

import email
import os
from typing import Any

import pytest

from accounts.models import OrgSetting
from fileconvert import storage
from tests.conftest import assert_error, data_of
from tests.uploads.filebytes import init_upload, put_bytes, sha256_of
from uploads.processing import file_process

pytestmark = pytest.mark.django_db
MiB = 1024 * 1024


class RecordingClient:
    """The real boto3 client, with a note of each ``get_object``'s arguments."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.gets: list[dict[str, Any]] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs)
        return self._client.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def recorder(s3_storage, monkeypatch) -> RecordingClient:
    client, bucket = storage._s3()
    spy = RecordingClient(client)
    monkeypatch.setattr(storage, "_s3", lambda: (spy, bucket))
    return spy


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def big(owner, make_file, s3_storage):
    data = os.urandom(3 * MiB + 17)
    stored = make_file(owner.org, data, name="big.bin")
    assert s3_storage.head(stored.storage_key)["ContentLength"] == len(data)
    return stored, data


def url(f) -> str:
    return f"/api/files/{f.organization_id}/{f.pk}/download"


def test_full_download_from_s3_streams_in_chunks(owner, big, recorder):
    stored, data = big
    response = owner.client().get(url(stored))
    assert response.status_code == 200 and response.streaming
    chunks = list(response.streaming_content)
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= storage.READ_CHUNK
    assert response["Content-Length"] == str(len(data))
    assert [g["Range"] for g in recorder.gets] == [f"bytes=0-{len(data) - 1}"]


def test_a_range_is_an_s3_ranged_get(owner, big, recorder):
    stored, data = big
    response = owner.client().get(url(stored), HTTP_RANGE="bytes=2097152-2097407")
    assert response.status_code == 206
    assert body_of(response) == data[2097152:2097408]
    assert response["Content-Range"] == f"bytes 2097152-2097407/{len(data)}"
    assert recorder.gets == [{"Bucket": storage._s3()[1], "Key": stored.storage_key, "Range": "bytes=2097152-2097407"}]


def test_suffix_and_multipart_ranges_on_s3(owner, big, recorder):
    stored, data = big
    tail = owner.client().get(url(stored), HTTP_RANGE="bytes=-100")
    assert body_of(tail) == data[-100:]
    recorder.gets.clear()
    response = owner.client().get(url(stored), HTTP_RANGE="bytes=0-9,1048576-1048585")
    assert response.status_code == 206
    raw = body_of(response)
    message = email.message_from_bytes(f"Content-Type: {response['Content-Type']}\r\n\r\n".encode() + raw)
    assert [p.get_payload(decode=True) for p in message.get_payload()] == [data[0:10], data[1048576:1048586]]
    assert [g["Range"] for g in recorder.gets] == ["bytes=0-9", "bytes=1048576-1048585"]


def test_unsatisfiable_and_head_touch_no_object(owner, big, recorder):
    stored, data = big
    assert_error(owner.client().get(url(stored), HTTP_RANGE=f"bytes={len(data)}-"), 416)
    head = owner.client().head(url(stored))
    assert head.status_code == 200 and head.content == b""
    assert recorder.gets == []


def test_a_streamed_upload_to_s3_downloads_through_a_share_link(owner, s3_storage, anon):
    OrgSetting.objects.create(organization=owner.org, key="review.required", value=False)
    data = os.urandom(MiB + 5)
    client = owner.client()
    started = init_upload(client, "upload.bin", size=len(data))
    put_bytes(client, started["file_id"], data, sha256_of(data))
    assert file_process(file_id=started["file_id"]) == "active"
    shared = data_of(
        client.post(f"/api/files/{owner.org.pk}/{started['file_id']}/share", {"visibility": "public"}, format="json"), 201
    )
    path = shared["url"].removeprefix("http://testserver")
    assert body_of(anon.get(path)) == data
    ranged = anon.get(path, HTTP_RANGE="bytes=1048576-")
    assert ranged.status_code == 206 and body_of(ranged) == data[1048576:]


def test_missing_object_is_a_404_before_any_byte_is_sent(owner, big, s3_storage):
    stored, _data = big
    storage.delete(stored.storage_key)
    assert_error(owner.client().get(url(stored)), 404, "CONTENT_MISSING")
    assert_error(owner.client().get(url(stored), HTTP_RANGE="bytes=5-9"), 404, "CONTENT_MISSING")
