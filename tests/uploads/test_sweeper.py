"""uploads.sweeper.sweep_expired_files: unconfirmed uploads, anonymous sessions' files and
retention, with their bytes, thumbnails and derived files; nothing orphaned in storage."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.identity import system_identity
from accounts.models import AuditEvent
from accounts.services import setting_set
from tests.conftest import data_of
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
from uploads.models import FileStatus, StoredFile, Task, Upload
from uploads.processing import file_process
from uploads.sweeper import PARTIAL_MAX_AGE_SECONDS, sweep_expired_files

PENDING_TTL = timedelta(seconds=settings.FILECONVERT["UPLOAD_PENDING_TTL_SECONDS"])
ANON_TTL = timedelta(seconds=settings.FILECONVERT["ANON_FILE_TTL_SECONDS"])


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run the sweeper with its after-commit byte deletions executed, as in production."""

    def run(**kwargs) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return sweep_expired_files(**kwargs)

    return run


@pytest.fixture
def anon_client(anon) -> APIClient:
    session = data_of(anon.post("/api/anon/session"), 201)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session['token']}")
    client.org_id = session["org_id"]
    return client


def all_keys(stored: StoredFile) -> list[str]:
    return [k for k in (stored.storage_key, stored.thumbnail_key) if k]


@pytest.mark.django_db
class TestSweeper:
    def test_unconfirmed_upload_past_its_expiry_is_removed(self, member, sweep):
        client = member.client()
        started = init_upload(client, "never-sent.jpg")
        stored = StoredFile.objects.get(pk=started["file_id"])
        assert stored.expires_at is not None
        assert sweep(now=timezone.now()) == 0
        assert StoredFile.objects.filter(pk=stored.pk).exists()

        assert sweep(now=stored.expires_at + timedelta(seconds=1)) == 1
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
        assert not Task.objects.filter(file_id=stored.pk).exists()
        assert not Upload.objects.filter(pk=started["upload_id"]).exists()
        assert AuditEvent.objects.filter(organization=member.org, action="file.expire", target_id=stored.pk).exists()

    def test_unconfirmed_upload_with_bytes_at_its_key_is_removed_with_them(self, member, sweep):
        # A presigned POST whose client never called /complete: bytes, but no confirmation.
        client = member.client()
        created = data_of(client.post("/upload-api", {"filename": "orphan.png"}, format="json"), 201)
        form = APIClient().post(
            created["url"],
            {**created["fields"], "file": SimpleUploadedFile("orphan.png", png_bytes(), content_type="image/png")},
            format="multipart",
        )
        assert form.status_code == 204, form.content
        stored = StoredFile.objects.get(pk=created["upload_id"])
        assert stored_bytes(stored.storage_key) is not None and stored.confirmed_at is None
        assert sweep(now=timezone.now() + PENDING_TTL + timedelta(seconds=1)) == 1
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
        assert stored_bytes(stored.storage_key) is None
        assert media_paths_mentioning(stored.pk) == []

    def test_confirmed_files_lose_the_pending_expiry(self, member, sweep):
        client = member.client()
        data = upload_file(client, jpeg_bytes())
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.expires_at is None  # no retention in a regular organization
        assert sweep(now=timezone.now() + timedelta(days=3650)) == 0
        assert StoredFile.objects.filter(pk=stored.pk).exists()
        assert stored_bytes(stored.storage_key) == jpeg_bytes()

    def test_anonymous_sessions_file_is_removed_after_its_ttl(self, anon_client, sweep):
        body = png_bytes()
        data = upload_file(anon_client, body, "scan.png")
        assert file_process(file_id=data["id"]) == "active"  # anonymous sessions are not reviewed
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.organization_id == anon_client.org_id
        assert stored.thumbnail_key
        assert abs(stored.expires_at - (stored.confirmed_at + ANON_TTL)) < timedelta(seconds=5)
        keys = all_keys(stored)
        assert all(stored_bytes(k) is not None for k in keys)

        assert sweep(now=stored.expires_at - timedelta(seconds=1)) == 0
        assert StoredFile.objects.filter(pk=stored.pk).exists()

        assert sweep(now=stored.expires_at + timedelta(seconds=1)) == 1
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
        assert not Upload.objects.filter(pk=stored.upload_id).exists()
        assert all(stored_bytes(k) is None for k in keys)
        assert media_paths_mentioning(stored.pk) == []

    def test_retention_days_sets_an_expiry_and_is_enforced(self, member, outsider, sweep):
        setting_set(actor=system_identity(member.org), key="files.retention_days", value=7)
        body = jpeg_bytes()
        data = upload_file(member.client(), body)
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.expires_at is not None
        assert abs(stored.expires_at - (stored.confirmed_at + timedelta(days=7))) < timedelta(seconds=5)
        theirs = upload_file(outsider.client(), body)["id"]
        assert StoredFile.objects.get(pk=theirs).expires_at is None

        assert sweep(now=timezone.now() + timedelta(days=6)) == 0
        assert stored_bytes(stored.storage_key) == body

        assert sweep(now=timezone.now() + timedelta(days=8)) == 1
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
        assert stored_bytes(stored.storage_key) is None
        assert media_paths_mentioning(stored.pk) == []
        other = StoredFile.objects.get(pk=theirs)
        assert stored_bytes(other.storage_key) == body

    def test_non_expired_files_are_untouched(self, member, anon_client, sweep):
        client = member.client()
        pending = init_upload(client, "fresh.jpg")["file_id"]
        done = upload_file(client, jpeg_bytes())["id"]
        anon_file = upload_file(anon_client, png_bytes())["id"]
        snapshot = {f.pk: (f.status, f.expires_at, f.storage_key) for f in StoredFile.objects.all()}
        assert sweep() == 0
        assert sweep(now=timezone.now() + PENDING_TTL - timedelta(seconds=30)) == 0
        assert {f.pk: (f.status, f.expires_at, f.storage_key) for f in StoredFile.objects.all()} == snapshot
        for file_id in (done, anon_file):
            assert stored_bytes(StoredFile.objects.get(pk=file_id).storage_key) is not None
        assert StoredFile.objects.get(pk=pending).status == FileStatus.PENDING

    def test_derived_files_go_with_their_parent(self, anon_client, sweep):
        message = upload_file(anon_client, eml_bytes(attachments=2), "mail.eml")["id"]
        assert file_process(file_id=message) == "active"
        children = list(StoredFile.objects.filter(parent_id=message))
        assert len(children) == 2
        for child in children:
            assert file_process(file_id=child.pk) == "active"
        family = [StoredFile.objects.get(pk=message), *StoredFile.objects.filter(parent_id=message)]
        keys = [k for f in family for k in all_keys(f)]
        assert len(keys) == 5  # the message, two attachments and their thumbnails
        assert all(stored_bytes(k) is not None for k in keys)
        upload_id = family[0].upload_id

        # Every member of the family expires together; only the root is a candidate.
        assert sweep(now=family[0].expires_at + timedelta(seconds=1)) == 1
        assert not StoredFile.objects.filter(pk__in=[f.pk for f in family]).exists()
        assert not Task.objects.filter(upload_id=upload_id).exists()
        assert not Upload.objects.filter(pk=upload_id).exists()
        assert all(stored_bytes(k) is None for k in keys)
        assert media_paths_mentioning(*[f.pk for f in family]) == []
        assert media_dirs_mentioning(*[f.pk for f in family]) == []

    def test_nothing_is_orphaned_in_storage(self, member, anon_client, sweep):
        setting_set(actor=system_identity(member.org), key="files.retention_days", value=1)
        client = member.client()
        removed = [
            init_upload(client, "pending.jpg")["file_id"],
            upload_file(client, jpeg_bytes(), "kept-a-day.jpg")["id"],
            upload_file(anon_client, png_bytes(), "anon.png")["id"],
        ]
        file_process(file_id=removed[1])
        file_process(file_id=removed[2])
        assert sweep(now=timezone.now() + timedelta(days=2)) == 3
        assert not StoredFile.objects.filter(pk__in=removed).exists()
        assert media_paths_mentioning(*removed) == []
        # No per-file directory is left behind for them either.
        assert media_dirs_mentioning(*removed) == []

    def test_batches_cover_everything(self, member, sweep):
        client = member.client()
        ids = [init_upload(client, f"p{i}.jpg")["file_id"] for i in range(5)]
        assert sweep(now=timezone.now() + PENDING_TTL + timedelta(seconds=1), batch=2) == 5
        assert not StoredFile.objects.filter(pk__in=ids).exists()

    def test_stale_partial_files_are_removed(self, sweep):
        partial = Path(settings.MEDIA_ROOT) / ".partial"
        partial.mkdir(parents=True, exist_ok=True)
        stale, fresh = partial / "up-stale-test", partial / "up-fresh-test"
        stale.write_bytes(b"half a file")
        fresh.write_bytes(b"still streaming")
        old = time.time() - PARTIAL_MAX_AGE_SECONDS - 60
        os.utime(stale, (old, old))
        try:
            sweep()
            assert not stale.exists()
            assert fresh.exists()
        finally:
            fresh.unlink(missing_ok=True)
            stale.unlink(missing_ok=True)
