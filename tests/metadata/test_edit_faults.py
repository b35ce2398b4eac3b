"""Metadata edits against real S3 (moto's server), with signed links, concurrent changes and
a sandbox that runs out of time: nothing half-written, no orphaned objects."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from metadata import services
from metadata.models import MetadataEdit
from tests.conftest import assert_error, data_of
from tests.metadata import samples as s
from tests.s3 import moto_server, s3_storage  # noqa: F401 - fixtures
from tests.uploads.filebytes import media_paths_mentioning, stored_bytes
from uploads.models import StoredFile
from uploads.processing import file_process


def url(file: StoredFile) -> str:
    return f"/api/files/{file.organization_id}/{file.pk}/metadata"


@pytest.mark.django_db
def test_edit_on_s3_replaces_the_object(owner, s3_storage, django_capture_on_commit_callbacks):  # noqa: F811
    client = owner.client()
    created = data_of(client.post("/api/files", {"file": SimpleUploadedFile("p.jpg", s.jpeg_bytes())}, format="multipart"), 201)
    assert file_process(file_id=created["id"]) in ("active", "staged")
    f = StoredFile.objects.get(pk=created["id"])
    probed = data_of(client.get(url(f)))  # read back from S3 into a temporary copy
    assert probed["common"]["author"] == s.AUTHOR
    old_key = f.storage_key
    with django_capture_on_commit_callbacks(execute=True):
        data_of(client.post(url(f), {"strip_all": True}, format="json"))
    f.refresh_from_db()
    keys = set(s3_storage.keys())
    assert f.storage_key != old_key and f.storage_key in keys and old_key not in keys
    body = s3_storage.get(f.storage_key)
    assert s.AUTHOR.encode() not in body and s.SERIAL.encode() not in body
    assert not [k for k in keys if k.startswith(f"{f.organization_id}/{f.pk}/") and k != f.storage_key and "thumbnail" not in k]
    assert s3_storage.multipart_uploads() == []


@pytest.mark.django_db
def test_signed_link_to_the_old_content_stops_working(member, stored_file, django_capture_on_commit_callbacks):
    from sharing.services import download_url_for

    f = stored_file(member, s.png_bytes(), "a.png")
    link = download_url_for(f)
    anon = member.client()
    anon.credentials()
    assert anon.get(link).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        data_of(member.client().post(url(f), {"anonymize": True}, format="json"))
    assert_error(anon.get(link), 404)
    f.refresh_from_db()
    fresh = anon.get(download_url_for(f))
    assert fresh.status_code == 200
    assert s.AUTHOR.encode() not in b"".join(fresh.streaming_content if fresh.streaming else [fresh.content])


@pytest.mark.django_db
def test_content_changed_meanwhile_is_409_and_leaves_no_orphan(member, stored_file, monkeypatch):
    f = stored_file(member, s.jpeg_bytes(), "a.jpg")
    real_upload = services._upload

    def upload_then_someone_else_edits(written, key):
        real_upload(written, key)
        StoredFile.objects.filter(pk=f.pk).update(sha256="0" * 64)  # another writer won the race

    monkeypatch.setattr(services, "_upload", upload_then_someone_else_edits)
    assert_error(member.client().post(url(f), {"strip_all": True}, format="json"), 409, "CONTENT_CHANGED")
    row = StoredFile.objects.get(pk=f.pk)
    assert row.storage_key == f.storage_key and stored_bytes(f.storage_key) is not None
    stored = [p for p in media_paths_mentioning(f.pk) if "thumbnail" not in p]
    assert len(stored) == 1 and stored[0].endswith(f.storage_key)
    assert not MetadataEdit.objects.exists()


@pytest.mark.django_db
def test_an_edited_file_changed_after_it_was_hashed_is_422_and_leaves_no_orphan(member, stored_file, monkeypatch):
    f = stored_file(member, s.jpeg_bytes(), "a.jpg")
    real_run_editor = services._run_editor

    def editor_then_the_file_changes(*args, **kwargs):
        written = real_run_editor(*args, **kwargs)
        with open(written.path, "ab") as fh:  # what was hashed is no longer what is there
            fh.write(b"appended")
        return written

    monkeypatch.setattr(services, "_run_editor", editor_then_the_file_changes)
    assert_error(member.client().post(url(f), {"strip_all": True}, format="json"), 422, "UNREADABLE_CONTENT")
    row = StoredFile.objects.get(pk=f.pk)
    assert (row.storage_key, row.sha256) == (f.storage_key, f.sha256)
    stored = [p for p in media_paths_mentioning(f.pk) if "thumbnail" not in p]
    assert len(stored) == 1 and stored[0].endswith(f.storage_key)
    assert not MetadataEdit.objects.exists()


@pytest.mark.django_db
def test_editor_timeout_is_422_and_nothing_changes(member, stored_file, settings):
    f = stored_file(member, s.pdf_bytes(), "a.pdf")
    settings.FILECONVERT = {**settings.FILECONVERT, "METADATA_EDIT_TIMEOUT_SECONDS": 0.05}
    assert_error(member.client().post(url(f), {"strip_all": True}, format="json"), 422, "EDIT_TIMEOUT")
    row = StoredFile.objects.get(pk=f.pk)
    assert (row.storage_key, row.sha256) == (f.storage_key, f.sha256)
    assert not MetadataEdit.objects.exists()


@pytest.mark.django_db
def test_too_large_for_editing_is_422(member, stored_file, settings):
    f = stored_file(member, s.jpeg_bytes(), "a.jpg")
    settings.FILECONVERT = {**settings.FILECONVERT, "METADATA_MAX_EDIT_BYTES": 100}
    body = assert_error(member.client().post(url(f), {"strip_all": True}, format="json"), 422, "FILE_TOO_LARGE")
    assert body["details"]["max_bytes"] == 100


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("committed", [True, False])
def test_a_connection_lost_around_the_edits_commit_keeps_exactly_the_referenced_bytes(
    member, stored_file, monkeypatch, committed
):
    # SECURITY F6 for metadata edits: after an OperationalError the new bytes go only if no
    # row has them (the COMMIT may have gone through unheard).
    from django.db import OperationalError, transaction

    f = stored_file(member, s.jpeg_bytes(), "a.jpg")

    def fail(*_args, **_kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    if committed:  # the transaction committed, then the error: as a reply lost after COMMIT
        monkeypatch.setattr(services, "send_on_commit", lambda *a, **k: transaction.on_commit(fail))
    else:  # inside the transaction: rolled back
        monkeypatch.setattr(services, "_record_edit", fail)
    client = member.client()
    client.raise_request_exception = False
    assert client.post(url(f), {"strip_all": True}, format="json").status_code >= 500
    row = StoredFile.objects.get(pk=f.pk)
    stored = [p for p in media_paths_mentioning(f.pk) if "thumbnail" not in p]
    if committed:
        assert row.storage_key != f.storage_key and stored_bytes(row.storage_key) is not None
    else:
        assert row.storage_key == f.storage_key and len(stored) == 1 and stored[0].endswith(f.storage_key)
