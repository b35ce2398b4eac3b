"""GET/HEAD /api/files/{org_id}/{id}/download on local disk: ranges, validators, headers."""

from __future__ import annotations

import email
import hashlib
import io
import os
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils.http import http_date
from pypdf import PdfWriter

from accounts import services as account_services
from tests.conftest import assert_error
from tests.uploads.filebytes import jpeg_bytes, png_bytes
from uploads.models import FileStatus, ReviewState

pytestmark = pytest.mark.django_db
BODY = os.urandom(10_000)


def url(f) -> str:
    return f"/api/files/{f.organization_id}/{f.pk}/download"


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def blob(owner, make_file):
    return make_file(owner.org, BODY, name="data.bin")


def test_full_download_streams_the_bytes_with_validators(owner, blob):
    response = owner.client().get(url(blob))
    assert response.status_code == 200
    assert response.streaming
    assert body_of(response) == BODY
    assert response["Content-Length"] == str(len(BODY))
    assert response["ETag"] == f'"{hashlib.sha256(BODY).hexdigest()}"'
    assert response["Last-Modified"] == http_date(blob.confirmed_at.timestamp())
    assert response["Accept-Ranges"] == "bytes"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response["Content-Disposition"] == 'attachment; filename="data.bin"'
    assert response["Content-Type"] == "application/octet-stream"


def test_head_has_the_headers_and_no_body(owner, blob):
    response = owner.client().head(url(blob))
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(len(BODY))
    assert response["ETag"].startswith('"')
    ranged = owner.client().head(url(blob), HTTP_RANGE="bytes=10-19")
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == f"bytes 10-19/{len(BODY)}"
    assert ranged["Content-Length"] == "10"
    assert ranged.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),  # first byte
        ("bytes=9999-9999", 9999, 9999),  # last byte
        ("bytes=-500", 9500, 9999),  # suffix
        ("bytes=500-", 500, 9999),  # open
        ("bytes=9000-20000", 9000, 9999),  # clipped at the end
        ("bytes=0-10,5-20", 0, 20),  # overlapping: one coalesced range
    ],
)
def test_single_range_is_a_206(owner, blob, header, start, end):
    response = owner.client().get(url(blob), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(BODY)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert body_of(response) == BODY[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=20000-30000", "bytes=-0"])
def test_unsatisfiable_is_a_416_in_the_house_shape(owner, blob, header):
    response = owner.client().get(url(blob), HTTP_RANGE=header)
    assert_error(response, 416, "RANGE_NOT_SATISFIABLE")
    assert response["Content-Range"] == f"bytes */{len(BODY)}"


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=abc", "pages=1-2", "bytes=" + ",".join(["0-0"] * 1000)])
def test_malformed_or_pathological_range_is_the_plain_200(owner, blob, header):
    response = owner.client().get(url(blob), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body_of(response) == BODY
    assert "Content-Range" not in response


def test_multiple_ranges_are_multipart_byteranges(owner, blob):
    response = owner.client().get(url(blob), HTTP_RANGE="bytes=9990-,0-9,100-199,150-250")
    assert response.status_code == 206
    content_type = response["Content-Type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    raw = body_of(response)
    assert response["Content-Length"] == str(len(raw))
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    parts = [(p["Content-Range"], p.get_payload(decode=True)) for p in message.get_payload()]
    size = len(BODY)
    assert parts == [
        (f"bytes 0-9/{size}", BODY[0:10]),
        (f"bytes 100-250/{size}", BODY[100:251]),
        (f"bytes 9990-9999/{size}", BODY[9990:]),
    ]
    assert all(p.get_content_type() == "application/octet-stream" for p in message.get_payload())


def test_multipart_never_outgrows_the_file(owner, make_file):
    small = make_file(owner.org, b"0123456789" * 10, name="small.bin")
    response = owner.client().get(url(small), HTTP_RANGE="bytes=0-0,2-2,4-4,6-6")
    assert response.status_code == 200  # four one-byte parts would cost more than the 100 bytes
    assert body_of(response) == b"0123456789" * 10


def test_if_none_match_is_a_304(owner, blob):
    client = owner.client()
    etag = client.head(url(blob))["ETag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = client.get(url(blob), HTTP_IF_NONE_MATCH=header)
        assert response.status_code == 304, header
        assert response.content == b""
        assert response["ETag"] == etag
    assert client.get(url(blob), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_if_modified_since(owner, blob):
    client = owner.client()
    later = http_date((blob.confirmed_at + timedelta(seconds=5)).timestamp())
    earlier = http_date((blob.confirmed_at - timedelta(seconds=5)).timestamp())
    assert client.get(url(blob), HTTP_IF_MODIFIED_SINCE=later).status_code == 304
    assert client.get(url(blob), HTTP_IF_MODIFIED_SINCE=earlier).status_code == 200
    # If-None-Match takes precedence over If-Modified-Since.
    assert client.get(url(blob), HTTP_IF_MODIFIED_SINCE=later, HTTP_IF_NONE_MATCH='"x"').status_code == 200


def test_if_range_matching_serves_the_range_and_a_mismatch_the_whole(owner, blob):
    client = owner.client()
    etag = client.head(url(blob))["ETag"]
    date = http_date(blob.confirmed_at.timestamp())
    for validator in (etag, date):
        response = client.get(url(blob), HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE=validator)
        assert response.status_code == 206, validator
        assert body_of(response) == BODY[:100]
    stale_date = http_date((blob.confirmed_at - timedelta(days=1)).timestamp())
    for validator in ('"0123"', f"W/{etag}", stale_date, "garbage"):
        response = client.get(url(blob), HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE=validator)
        assert response.status_code == 200, validator
        assert body_of(response) == BODY


def test_content_disposition_for_a_unicode_name(owner, make_file):
    f = make_file(owner.org, b"x", name="Résumé – 履歴書.txt", content_type="text/plain")
    header = owner.client().get(url(f))["Content-Disposition"]
    assert header.startswith("attachment; filename=\"Resume _ _.txt\"; filename*=UTF-8''")
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == "Résumé – 履歴書.txt"
    assert header.isascii()


@pytest.mark.parametrize(
    "name",
    [
        'evil"; filename="x.html',
        "\u200b\u202e",
        "",
        "a\r\nSet-Cookie: x=1.txt",
        "..\\..\\boot.ini",
        "%2e%2e%2fpasswd",
        "\u202etxt.exe",
        "日本.pdf",
    ],
)
def test_content_disposition_survives_hostile_names(owner, make_file, name):
    f = make_file(owner.org, b"x", name=name)
    response = owner.client().get(url(f))
    header = response["Content-Disposition"]
    assert header.isascii()
    assert "\r" not in header and "\n" not in header
    kind, fallback_part, *rest = header.split("; ")
    assert kind == "attachment"
    fallback = fallback_part.removeprefix('filename="').removesuffix('"')
    assert '"' not in fallback and "\\" not in fallback and "/" not in fallback
    assert fallback and fallback.isprintable()
    assert len(rest) <= 1
    if rest:
        assert rest[0].startswith("filename*=UTF-8''")
        assert ";" not in rest[0] and '"' not in rest[0] and " " not in rest[0]


def _pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (b"<html><script>alert(document.cookie)</script></html>", "page.html", "text/html"),
        (SVG, "img.svg", "image/svg+xml"),
        (b"<?xml version='1.0'?><x/>", "doc.xml", "application/xml"),
        (b"alert(1)", "app.js", "text/javascript"),
        (_pdf(), "doc.pdf", "application/pdf"),
    ],
)
def test_active_content_is_always_an_attachment_in_a_sandbox(owner, make_file, data, name, content_type):
    f = make_file(owner.org, data, name=name, content_type=content_type)
    response = owner.client().get(url(f) + "?disposition=inline")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert body_of(response) == data


def test_passive_images_may_be_inline(owner, make_file):
    f = make_file(owner.org, png_bytes(), name="pic.png", content_type="image/png")
    response = owner.client().get(url(f) + "?disposition=inline")
    assert response["Content-Disposition"] == 'inline; filename="pic.png"'
    assert response["Content-Type"] == "image/png"
    assert owner.client().get(url(f))["Content-Disposition"].startswith("attachment;")


def test_a_player_asking_for_media_types_still_gets_bytes_and_json_errors(owner, blob):
    client = owner.client()
    assert client.get(url(blob), HTTP_ACCEPT="video/webm").status_code == 200
    assert_error(client.get(url(blob), HTTP_ACCEPT="video/webm", HTTP_RANGE="bytes=99999-"), 416)


# --- who may download ---------------------------------------------------------------------


def test_each_role_of_the_organization_may_download(owner, admin, member, viewer, blob):
    for persona in (owner, admin, member, viewer):
        assert body_of(persona.client().get(url(blob))) == BODY


def test_no_credentials_is_a_401(anon, blob):
    assert_error(anon.get(url(blob)), 401)
    assert anon.head(url(blob)).status_code == 401


def test_a_bad_credential_is_a_401(anon, blob):
    anon.credentials(HTTP_X_API_KEY="fck_000000000000_nope")
    assert_error(anon.get(url(blob)), 401)


def test_a_credential_without_upload_read_is_a_403(owner, blob):
    from rest_framework.test import APIClient

    _key, raw = account_services.api_key_issue_for(org=owner.org, user=owner.user, name="org only", scopes=["org.read"])
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    assert_error(client.get(url(blob)), 403, "INSUFFICIENT_SCOPE")


def test_another_organization_gets_a_404_like_a_missing_file(outsider, owner, blob):
    assert_error(outsider.client().get(url(blob)), 404, "NOT_FOUND")
    assert_error(outsider.client().get(f"/api/files/{outsider.org.pk}/{blob.pk}/download"), 404, "NOT_FOUND")
    assert_error(owner.client().get(f"/api/files/{owner.org.pk}/fil_missing/download"), 404, "NOT_FOUND")


def test_staged_files_download_for_their_organization(owner, make_file):
    data = jpeg_bytes()
    f = make_file(
        owner.org, data, name="p.jpg", content_type="image/jpeg", status=FileStatus.STAGED, review_state=ReviewState.PENDING
    )
    assert body_of(owner.client().get(url(f))) == data


@pytest.mark.parametrize(
    ("status", "review_state", "confirmed"),
    [
        (FileStatus.PENDING, ReviewState.NOT_REQUIRED, False),
        (FileStatus.FAILED, ReviewState.NOT_REQUIRED, True),
        (FileStatus.STAGED, ReviewState.REJECTED, True),
    ],
)
def test_files_without_downloadable_bytes_are_a_409(owner, make_file, status, review_state, confirmed):
    f = make_file(owner.org, b"abc", status=status, review_state=review_state, confirmed=confirmed)
    assert_error(owner.client().get(url(f)), 409, "NOT_DOWNLOADABLE")


def test_an_empty_file(owner, make_file):
    f = make_file(owner.org, b"", name="empty.txt", content_type="text/plain")
    response = owner.client().get(url(f))
    assert response.status_code == 200
    assert body_of(response) == b""
    assert response["Content-Length"] == "0"
    assert_error(owner.client().get(url(f), HTTP_RANGE="bytes=0-"), 416)


def test_a_real_upload_downloads_byte_for_byte(owner):
    from tests.uploads.filebytes import init_upload, put_bytes, sha256_of
    from uploads.processing import file_process

    data = jpeg_bytes((300, 200))
    client = owner.client()
    started = init_upload(client, "photo.jpg", size=len(data))
    put_bytes(client, started["file_id"], data, sha256_of(data))
    file_process(file_id=started["file_id"])
    response = client.get(f"/api/files/{owner.org.pk}/{started['file_id']}/download")
    assert response.status_code == 200
    assert body_of(response) == data
    assert response["Content-Type"] == "image/jpeg"
    assert response["ETag"] == f'"{sha256_of(data)}"'


def test_missing_bytes_are_a_404_not_a_500(owner, blob):
    from fileconvert import storage

    storage_path = storage.local_path(blob.storage_key)
    storage_path.unlink()
    assert_error(owner.client().get(url(blob)), 404, "CONTENT_MISSING")
    assert_error(owner.client().get(url(blob), HTTP_RANGE="bytes=0-9"), 404, "CONTENT_MISSING")
