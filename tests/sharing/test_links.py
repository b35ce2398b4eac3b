"""Signed ``?dl=`` links: minted by POST …/download-link or ``download_url_for``; the token
alone authorises, bound to the file and its content; every failure is the same 404."""

from __future__ import annotations

import os
import time
import types

import pytest

from accounts.models import AuditEvent
from fileconvert import signed
from fileconvert.signed import file_token_make
from sharing.services import download_url_for
from tests.conftest import assert_error, data_of
from uploads.models import ReviewState, StoredFile

pytestmark = pytest.mark.django_db
BODY = os.urandom(4096)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def blob(owner, make_file):
    return make_file(owner.org, BODY, name="report.bin")


def _mint(client, f, **body) -> dict:
    return data_of(client.post(f"/api/files/{f.organization_id}/{f.pk}/download-link", body, format="json"), 201)


def test_minted_link_downloads_with_no_auth_header(owner, blob, anon):
    link = _mint(owner.client(), blob, expires_in=60)
    assert link["url"].startswith(f"http://testserver/api/files/{owner.org.pk}/{blob.pk}/download?dl=")
    response = anon.get(link["url"])
    assert response.status_code == 200
    assert body_of(response) == BODY
    ranged = anon.get(link["url"], HTTP_RANGE="bytes=-10")
    assert ranged.status_code == 206 and body_of(ranged) == BODY[-10:]
    minted = AuditEvent.objects.get(action="file.download_link", target_id=blob.pk)
    assert minted.details == {"ttl": 60}
    # Counted once (the full body), not for the tail range.
    assert AuditEvent.objects.filter(action="file.download_signed", target_id=blob.pk).count() == 1


def test_viewer_may_mint_but_not_for_another_org(viewer, outsider, blob):
    _mint(viewer.client(), blob)
    assert_error(outsider.client().post(f"/api/files/{blob.organization_id}/{blob.pk}/download-link"), 404)


def test_link_lifetime_is_bounded(owner, blob, settings):
    client = owner.client()
    path = f"/api/files/{blob.organization_id}/{blob.pk}/download-link"
    assert_error(client.post(path, {"expires_in": 0}, format="json"), 400, "VALIDATION_ERROR")
    maximum = settings.FILECONVERT["DOWNLOAD_LINK_MAX_TTL_SECONDS"]
    assert_error(client.post(path, {"expires_in": maximum + 1}, format="json"), 400, "VALIDATION_ERROR")
    _mint(client, blob, expires_in=maximum)


def test_download_url_for_is_the_conversions_contract(blob, anon):
    url = download_url_for(blob, ttl=120)
    assert url.startswith(f"/api/files/{blob.organization_id}/{blob.pk}/download?dl=")
    assert body_of(anon.get(url)) == BODY


def test_a_tampered_token_is_a_404(blob, anon):
    url = download_url_for(blob)
    token = url.split("dl=", 1)[1]
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:-10], "", "x" * 40, token + "x"):
        assert_error(anon.get(f"/api/files/{blob.organization_id}/{blob.pk}/download", {"dl": bad}), 404, "NOT_FOUND")


def test_a_token_for_another_purpose_is_a_404(blob, anon):
    token, _ = file_token_make(purpose="preview", file_id=blob.pk, sha256=blob.sha256, ttl=60)
    assert_error(anon.get(f"/api/files/{blob.organization_id}/{blob.pk}/download", {"dl": token}), 404)


def test_a_token_only_opens_its_own_file_and_path(owner, outsider, make_file, blob, anon):
    other = make_file(owner.org, b"other bytes", name="other.bin")
    token = download_url_for(blob).split("dl=", 1)[1]
    assert_error(anon.get(f"/api/files/{owner.org.pk}/{other.pk}/download", {"dl": token}), 404)
    assert_error(anon.get(f"/api/files/{outsider.org.pk}/{blob.pk}/download", {"dl": token}), 404)


def _clock(monkeypatch, offset: float) -> None:
    now = time.time() + offset
    monkeypatch.setattr(signed, "time", types.SimpleNamespace(time=lambda: now))


def test_expiry_one_second_either_side(blob, anon, monkeypatch):
    url = download_url_for(blob, ttl=30)
    _clock(monkeypatch, 29)
    assert anon.get(url).status_code == 200
    _clock(monkeypatch, 32)
    assert_error(anon.get(url), 404, "NOT_FOUND")


def test_a_token_for_content_that_changed_is_a_404(blob, anon):
    url = download_url_for(blob)
    assert anon.get(url).status_code == 200
    StoredFile.objects.filter(pk=blob.pk).update(sha256="0" * 64)
    assert_error(anon.get(url), 404, "NOT_FOUND")


def test_a_token_for_a_file_later_rejected_or_deleted_is_a_404(owner, blob, anon):
    url = download_url_for(blob)
    StoredFile.objects.filter(pk=blob.pk).update(review_state=ReviewState.REJECTED)
    assert_error(anon.get(url), 404, "NOT_FOUND")
    StoredFile.objects.filter(pk=blob.pk).update(review_state=ReviewState.NOT_REQUIRED)
    assert anon.get(url).status_code == 200
    owner.client().delete(f"/api/files/{owner.org.pk}/{blob.pk}")
    assert_error(anon.get(url), 404, "NOT_FOUND")


def test_without_a_token_the_usual_auth_applies(blob, anon):
    assert_error(anon.get(f"/api/files/{blob.organization_id}/{blob.pk}/download"), 401)
