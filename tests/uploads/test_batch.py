"""Seed 002: batches (POST /upload), their derived status, tasks, and moving uploads.

Processing is driven by calling ``uploads.processing.file_process`` directly: the
request's ``on_commit`` callbacks never run inside a test transaction.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image

from accounts import services as account_services
from accounts.models import AuditEvent, Membership, OrgSetting
from fileconvert import storage
from tests.conftest import assert_error, data_of
from uploads.models import Dataset, FileStatus, StoredFile, Task, TaskStatus, Upload
from uploads.processing import file_process

# --- helpers ---------------------------------------------------------------------------------


def png_bytes(size=(24, 16), color=(10, 120, 220)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def broken_png() -> bytes:
    """A PNG signature followed by garbage: sniffed as PNG, unreadable by Pillow."""
    return b"\x89PNG\r\n\x1a\n" + b"\x00garbage, not an IHDR chunk" * 8


def text_file(name: str, body: str | bytes) -> tuple[str, bytes]:
    return name, body.encode() if isinstance(body, str) else body


def post_upload(client, files: list[tuple[str, bytes]], **fields):
    payload = {"files": [SimpleUploadedFile(name, data, content_type="application/octet-stream") for name, data in files]}
    payload.update(fields)
    return client.post("/upload", payload, format="multipart")


def media_files() -> set[str]:
    """Every object under MEDIA_ROOT (the per-worker storage), as relative paths."""
    root = Path(settings.MEDIA_ROOT)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def row_counts() -> tuple[int, int, int]:
    return Upload.objects.count(), StoredFile.objects.count(), Task.objects.count()


def set_review(org, required: bool) -> None:
    OrgSetting.objects.update_or_create(organization=org, key="review.required", defaults={"value": required})


def process_all(upload_id: str) -> list[str]:
    return [file_process(file_id=fid) for fid in Task.objects.filter(upload_id=upload_id).values_list("file_id", flat=True)]


def get_upload(client, upload_id: str) -> dict:
    return data_of(client.get(f"/upload/{upload_id}"))


def tasks_by_name(upload: dict) -> dict[str, dict]:
    return {t["filename"]: t for t in upload["tasks"]}


THREE = [
    text_file("a.txt", "first file\n"),
    text_file("b.csv", "x,y\n1,2\n"),
    text_file("c.txt", "third file\n"),
]


# --- creating a batch ------------------------------------------------------------------------


@pytest.mark.django_db
class TestCreate:
    def test_batch_creates_one_task_per_file(self, member):
        response = post_upload(member.client(), THREE, name="March invoices", project="Q1 Invoices")
        body = data_of(response, 201)
        assert {"id", "name", "status", "dataset_id", "dataset_name", "task_counts", "tasks"} <= set(body)
        assert body["id"].startswith("upl")
        assert body["name"] == "March invoices"
        assert body["status"] == "PROCESSING"
        assert body["task_counts"] == {"PROCESSING": 3}
        assert body["dataset_name"] == "Q1 Invoices"
        dataset = Dataset.objects.get(pk=body["dataset_id"])
        assert dataset.organization_id == member.org.pk and dataset.name == "Q1 Invoices"
        assert len(body["tasks"]) == 3
        assert sorted(t["filename"] for t in body["tasks"]) == ["a.txt", "b.csv", "c.txt"]
        for task in body["tasks"]:
            assert task["status"] == "PROCESSING"
            assert task["kind"] == "file"
            assert task["upload_id"] == body["id"]
            assert task["id"].startswith("tsk")
        upload = Upload.objects.get(pk=body["id"])
        assert upload.organization_id == member.org.pk and upload.source == Upload.SOURCE_BATCH
        assert upload.files.count() == 3 and upload.tasks.count() == 3
        assert set(upload.files.values_list("dataset_id", flat=True)) == {dataset.pk}
        assert AuditEvent.objects.filter(organization=member.org, action="upload.create", target_id=upload.pk).exists()

    def test_project_is_reused_by_name(self, member):
        first = data_of(post_upload(member.client(), THREE[:1], project="Contracts"), 201)
        second = data_of(post_upload(member.client(), THREE[1:2], project="Contracts"), 201)
        assert first["dataset_id"] == second["dataset_id"]
        assert Dataset.objects.filter(organization=member.org, name="Contracts").count() == 1

    def test_without_a_project_there_is_no_dataset(self, member):
        body = data_of(post_upload(member.client(), THREE[:1]), 201)
        assert body["dataset_id"] is None and body["dataset_name"] is None
        assert body["name"] == "a.txt"  # defaults to the first file's name

    def test_stored_bytes_equal_the_uploaded_bytes(self, member):
        files = [("pic.png", png_bytes()), ("notes.txt", b"hello\x00world" * 1000), ("../../evil.txt", b"evil")]
        body = data_of(post_upload(member.client(), files), 201)
        by_name = {f.name: f for f in StoredFile.objects.filter(upload_id=body["id"])}
        assert set(by_name) == {"pic.png", "notes.txt", "evil.txt"}
        for name, data in files:
            stored = by_name[name.rsplit("/", 1)[-1]]
            assert stored.size == len(data)
            assert stored.sha256 == hashlib.sha256(data).hexdigest()
            assert stored.status == FileStatus.PROCESSING and stored.confirmed_at is not None
            # The key is ours: organization / file id / ASCII slug, never the client's path.
            assert stored.storage_key == f"{member.org.pk}/{stored.pk}/{name.rsplit('/', 1)[-1]}"
            assert storage.local_path(stored.storage_key).read_bytes() == data
            assert b"".join(storage.iter_chunks(stored.storage_key)) == data

    def test_get_upload_returns_the_same_shape(self, member, viewer):
        created = data_of(post_upload(member.client(), THREE, name="Batch"), 201)
        fetched = get_upload(viewer.client(), created["id"])  # upload.read is enough
        assert fetched["id"] == created["id"]
        assert fetched["status"] == "PROCESSING"
        assert [t["id"] for t in fetched["tasks"]] == sorted(t["id"] for t in created["tasks"])

    def test_get_task(self, member):
        created = data_of(post_upload(member.client(), THREE[:1]), 201)
        task_id = created["tasks"][0]["id"]
        task = data_of(member.client().get(f"/task/{task_id}"))
        assert task["id"] == task_id
        assert task["upload_id"] == created["id"]
        assert task["status"] == "PROCESSING"
        assert task["filename"] == "a.txt"
        assert task["size"] == len(THREE[0][1])
        assert task["error"] is None

    def test_unknown_ids_are_404(self, member):
        client = member.client()
        assert_error(client.get("/upload/upl_doesnotexist"), 404, "NOT_FOUND")
        assert_error(client.get("/task/tsk_doesnotexist"), 404, "NOT_FOUND")
        assert_error(client.post("/task/tsk_doesnotexist/complete"), 404, "NOT_FOUND")
        assert_error(client.put("/upload/upl_doesnotexist/move", {"dataset": "x"}, format="json"), 404, "NOT_FOUND")


# --- rejected batches leave nothing behind ---------------------------------------------------------


@pytest.mark.django_db
class TestRejected:
    def test_empty_file_part_is_400_and_nothing_is_kept(self, member):
        before_files, before_rows = media_files(), row_counts()
        response = post_upload(member.client(), [("ok.txt", b"some bytes"), ("empty.txt", b""), ("ok2.txt", b"more")])
        body = assert_error(response, 400, "VALIDATION_ERROR")
        assert "empty.txt" in body["details"]["message"]
        assert media_files() == before_files
        assert row_counts() == before_rows

    def test_no_files_is_400(self, member):
        before_rows = row_counts()
        assert_error(member.client().post("/upload", {"name": "nothing"}, format="multipart"), 400, "VALIDATION_ERROR")
        assert row_counts() == before_rows

    def test_not_multipart_is_400(self, member):
        response = member.client().post("/upload", {"name": "x"}, format="json")
        assert response.status_code in (400, 415)
        assert_error(response, response.status_code)

    def test_more_files_than_allowed_is_400_and_nothing_is_kept(self, member):
        before_files, before_rows = media_files(), row_counts()
        with override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=3):
            files = [(f"f{i}.txt", f"file {i}".encode()) for i in range(4)]
            body = assert_error(post_upload(member.client(), files), 400, "MALFORMED_REQUEST")
            assert "DATA_UPLOAD_MAX_NUMBER_FILES" in body["details"]["message"]
            # At the limit is fine.
            data_of(post_upload(member.client(), files[:3]), 201)
        assert row_counts()[0] == before_rows[0] + 1
        assert len(media_files() - before_files) == 3

    def test_bytes_quota_exceeded_is_413_and_nothing_is_kept(self, member):
        org = member.org
        org.storage_quota_bytes = 1000
        org.save()
        before_files, before_rows = media_files(), row_counts()
        files = [("small.txt", b"s" * 400), ("big.bin", b"\x01" * 900)]
        assert_error(post_upload(member.client(), files), 413, "PAYLOAD_TOO_LARGE")
        assert media_files() == before_files
        assert row_counts() == before_rows
        # Within the quota it works.
        data_of(post_upload(member.client(), files[:1]), 201)

    def test_file_quota_exceeded_is_413_and_nothing_is_kept(self, member):
        org = member.org
        org.file_quota = 2
        org.save()
        before_files, before_rows = media_files(), row_counts()
        assert_error(post_upload(member.client(), THREE), 413, "QUOTA_EXCEEDED")
        assert media_files() == before_files
        assert row_counts() == before_rows

    def test_viewer_cannot_upload(self, viewer):
        before_files, before_rows = media_files(), row_counts()
        assert_error(post_upload(viewer.client(), THREE), 403)
        assert media_files() == before_files
        assert row_counts() == before_rows

    def test_anonymous_is_401(self, anon):
        assert_error(post_upload(anon, THREE), 401)


# --- derived status ----------------------------------------------------------------------------


@pytest.mark.django_db
class TestDerivedStatus:
    def test_processing_while_any_task_processes_then_reviewing(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE), 201)
        files = list(Task.objects.filter(upload_id=body["id"]).order_by("id").values_list("file_id", flat=True))
        assert file_process(file_id=files[0]) == "staged"  # review is required by default
        upload = get_upload(client, body["id"])
        assert upload["status"] == "PROCESSING"
        assert upload["task_counts"] == {"PROCESSING": 2, "REVIEWING": 1}
        file_process(file_id=files[1])
        assert get_upload(client, body["id"])["status"] == "PROCESSING"
        file_process(file_id=files[2])
        upload = get_upload(client, body["id"])
        assert upload["status"] == "REVIEWING"
        assert upload["task_counts"] == {"REVIEWING": 3}
        assert {t["review_state"] for t in upload["tasks"]} == {"pending"}

    def test_reviewing_then_completed(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE), 201)
        process_all(body["id"])
        tasks = get_upload(client, body["id"])["tasks"]
        for index, task in enumerate(tasks):
            done = data_of(client.post(f"/task/{task['id']}/complete"))
            assert done["status"] == "COMPLETED"
            expected = "COMPLETED" if index == len(tasks) - 1 else "REVIEWING"
            assert get_upload(client, body["id"])["status"] == expected
        upload = get_upload(client, body["id"])
        assert upload["task_counts"] == {"COMPLETED": 3}
        assert AuditEvent.objects.filter(organization=member.org, action="task.completed").count() == 3

    def test_completed_directly_when_review_is_not_required(self, member):
        set_review(member.org, False)
        client = member.client()
        body = data_of(post_upload(client, THREE), 201)
        assert process_all(body["id"]) == ["active"] * 3
        upload = get_upload(client, body["id"])
        assert upload["status"] == "COMPLETED"
        assert upload["task_counts"] == {"COMPLETED": 3}
        assert set(StoredFile.objects.filter(upload_id=body["id"]).values_list("status", flat=True)) == {"active"}

    def test_partial_when_some_fail_and_some_complete(self, member):
        set_review(member.org, False)
        client = member.client()
        body = data_of(post_upload(client, [*THREE[:2], ("broken.png", broken_png())]), 201)
        outcomes = process_all(body["id"])
        assert sorted(outcomes) == ["active", "active", "failed"]
        upload = get_upload(client, body["id"])
        assert upload["status"] == "PARTIAL"
        assert upload["task_counts"] == {"COMPLETED": 2, "FAILED": 1}
        failed = tasks_by_name(upload)["broken.png"]
        assert failed["status"] == "FAILED"
        assert failed["error"]["code"] == "UNREADABLE_CONTENT"
        assert data_of(client.get(f"/task/{failed['id']}"))["error"]["code"] == "UNREADABLE_CONTENT"
        # Discarding the failed task leaves only successes.
        assert data_of(client.post(f"/task/{failed['id']}/discard"))["status"] == "DISCARDED"
        upload = get_upload(client, body["id"])
        assert upload["status"] == "COMPLETED"
        assert upload["task_counts"] == {"COMPLETED": 2, "DISCARDED": 1}

    def test_failed_when_nothing_succeeds(self, member):
        client = member.client()
        body = data_of(post_upload(client, [("one.png", broken_png()), ("two.txt", b"will lose its bytes")]), 201)
        two = StoredFile.objects.get(upload_id=body["id"], name="two.txt")
        storage.delete(two.storage_key)
        assert process_all(body["id"]) == ["failed", "failed"]
        upload = get_upload(client, body["id"])
        assert upload["status"] == "FAILED"
        assert upload["task_counts"] == {"FAILED": 2}
        codes = {t["filename"]: t["error"]["code"] for t in upload["tasks"]}
        assert codes == {"one.png": "UNREADABLE_CONTENT", "two.txt": "MISSING_BYTES"}

    def test_reviewing_wins_over_failed(self, member):
        client = member.client()
        body = data_of(post_upload(client, [THREE[0], ("broken.png", broken_png())]), 201)
        process_all(body["id"])
        upload = get_upload(client, body["id"])
        assert upload["task_counts"] == {"REVIEWING": 1, "FAILED": 1}
        assert upload["status"] == "REVIEWING"

    def test_processing_wins_over_everything(self, member):
        client = member.client()
        files = [*THREE, ("broken.png", broken_png())]
        body = data_of(post_upload(client, files), 201)
        ids = {f.name: f.pk for f in StoredFile.objects.filter(upload_id=body["id"])}
        file_process(file_id=ids["broken.png"])
        file_process(file_id=ids["a.txt"])
        set_review(member.org, False)
        file_process(file_id=ids["b.csv"])
        upload = get_upload(client, body["id"])
        assert upload["task_counts"] == {"PROCESSING": 1, "REVIEWING": 1, "COMPLETED": 1, "FAILED": 1}
        assert upload["status"] == "PROCESSING"


# --- task transitions --------------------------------------------------------------------------


@pytest.mark.django_db
class TestTaskTransitions:
    def test_complete_while_processing_is_409(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE[:1]), 201)
        task_id = body["tasks"][0]["id"]
        assert_error(client.post(f"/task/{task_id}/complete"), 409, "INVALID_TRANSITION")
        assert Task.objects.get(pk=task_id).status == TaskStatus.PROCESSING

    def test_discarded_task_cannot_be_completed(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE[:1]), 201)
        process_all(body["id"])
        task_id = body["tasks"][0]["id"]
        assert data_of(client.post(f"/task/{task_id}/discard"))["status"] == "DISCARDED"
        assert_error(client.post(f"/task/{task_id}/complete"), 409, "INVALID_TRANSITION")
        # Discarding again is a no-op, not an error.
        assert data_of(client.post(f"/task/{task_id}/discard"))["status"] == "DISCARDED"
        assert Task.objects.get(pk=task_id).status == TaskStatus.DISCARDED

    def test_complete_is_idempotent(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE[:1]), 201)
        process_all(body["id"])
        task_id = body["tasks"][0]["id"]
        assert data_of(client.post(f"/task/{task_id}/complete"))["status"] == "COMPLETED"
        assert data_of(client.post(f"/task/{task_id}/complete"))["status"] == "COMPLETED"
        assert AuditEvent.objects.filter(action="task.completed", target_id=task_id).count() == 1

    def test_discard_during_processing_sticks(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE[:1]), 201)
        task_id = body["tasks"][0]["id"]
        assert data_of(client.post(f"/task/{task_id}/discard"))["status"] == "DISCARDED"
        process_all(body["id"])  # the pipeline finishing later must not resurrect it
        assert Task.objects.get(pk=task_id).status == TaskStatus.DISCARDED

    def test_viewer_cannot_complete_or_discard(self, member, viewer):
        body = data_of(post_upload(member.client(), THREE[:1]), 201)
        process_all(body["id"])
        task_id = body["tasks"][0]["id"]
        assert_error(viewer.client().post(f"/task/{task_id}/complete"), 403)
        assert_error(viewer.client().post(f"/task/{task_id}/discard"), 403)
        assert Task.objects.get(pk=task_id).status == TaskStatus.REVIEWING


# --- moving ------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestMove:
    def test_move_to_another_dataset_by_name(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE, project="Inbox"), 201)
        moved = data_of(client.put(f"/upload/{body['id']}/move", {"project": "Archive"}, format="json"))
        archive = Dataset.objects.get(organization=member.org, name="Archive")
        assert moved["dataset_id"] == archive.pk and moved["dataset_name"] == "Archive"
        assert set(StoredFile.objects.filter(upload_id=body["id"]).values_list("dataset_id", flat=True)) == {archive.pk}
        event = AuditEvent.objects.get(organization=member.org, action="upload.move", target_id=body["id"])
        assert event.details["to_dataset"] == archive.pk

    def test_move_to_another_dataset_by_id(self, member):
        client = member.client()
        body = data_of(post_upload(client, THREE, project="Inbox"), 201)
        target = Dataset.objects.create(organization=member.org, name="Target")
        moved = data_of(client.put(f"/upload/{body['id']}/move", {"dataset_id": target.pk}, format="json"))
        assert moved["dataset_id"] == target.pk
        assert get_upload(client, body["id"])["dataset_name"] == "Target"
        assert set(StoredFile.objects.filter(upload_id=body["id"]).values_list("dataset_id", flat=True)) == {target.pk}

    def test_move_needs_a_destination(self, member):
        body = data_of(post_upload(member.client(), THREE[:1]), 201)
        assert_error(member.client().put(f"/upload/{body['id']}/move", {}, format="json"), 400, "VALIDATION_ERROR")

    def test_another_orgs_dataset_id_is_404_without_side_effect(self, member, outsider):
        client = member.client()
        body = data_of(post_upload(client, THREE[:1], project="Inbox"), 201)
        foreign = Dataset.objects.create(organization=outsider.org, name="Theirs")
        assert_error(client.put(f"/upload/{body['id']}/move", {"dataset_id": foreign.pk}, format="json"), 404)
        assert Upload.objects.get(pk=body["id"]).dataset_id == body["dataset_id"]
        assert not StoredFile.objects.filter(dataset=foreign).exists()

    @pytest.mark.parametrize("role", ["admin", "owner"])
    def test_move_to_an_org_where_the_caller_is_admin(self, owner, outsider, role):
        Membership.objects.create(user=owner.user, organization=outsider.org, role=role)
        client = owner.client()
        body = data_of(post_upload(client, THREE, project="Inbox"), 201)
        process_all(body["id"])
        moved = data_of(
            client.put(f"/upload/{body['id']}/move", {"organization_id": outsider.org.pk, "project": "Imported"}, format="json")
        )
        assert moved["organization_id"] == outsider.org.pk
        imported = Dataset.objects.get(organization=outsider.org, name="Imported")
        assert moved["dataset_id"] == imported.pk
        assert set(StoredFile.objects.filter(upload_id=body["id"]).values_list("organization_id", flat=True)) == {outsider.org.pk}
        assert set(StoredFile.objects.filter(upload_id=body["id"]).values_list("dataset_id", flat=True)) == {imported.pk}
        assert set(Task.objects.filter(upload_id=body["id"]).values_list("organization_id", flat=True)) == {outsider.org.pk}
        assert AuditEvent.objects.filter(organization=owner.org, action="upload.move", target_id=body["id"]).exists()
        assert AuditEvent.objects.filter(organization=outsider.org, action="upload.move_in", target_id=body["id"]).exists()
        # Gone from org A (404 like any other tenant's id), visible in org B.
        assert_error(client.get(f"/upload/{body['id']}"), 404, "NOT_FOUND")
        for task in body["tasks"]:
            assert_error(client.get(f"/task/{task['id']}"), 404)
        seen = get_upload(outsider.client(), body["id"])
        assert seen["task_counts"] == {"REVIEWING": 3}
        assert data_of(outsider.client().post(f"/task/{body['tasks'][0]['id']}/complete"))["status"] == "COMPLETED"

    @pytest.mark.parametrize("role", ["member", "viewer", None])
    def test_move_to_an_org_where_the_caller_is_not_admin_is_404(self, owner, outsider, role):
        if role:
            Membership.objects.create(user=owner.user, organization=outsider.org, role=role)
        client = owner.client()
        body = data_of(post_upload(client, THREE[:1], project="Inbox"), 201)
        before_audit = AuditEvent.objects.count()
        response = client.put(f"/upload/{body['id']}/move", {"organization_id": outsider.org.pk}, format="json")
        assert_error(response, 404, "NOT_FOUND")
        upload = Upload.objects.get(pk=body["id"])
        assert upload.organization_id == owner.org.pk and upload.dataset_id == body["dataset_id"]
        assert set(StoredFile.objects.filter(upload_id=body["id"]).values_list("organization_id", flat=True)) == {owner.org.pk}
        assert AuditEvent.objects.count() == before_audit
        assert not Dataset.objects.filter(organization=outsider.org).exists()

    def test_move_to_an_unknown_org_is_404(self, owner):
        body = data_of(post_upload(owner.client(), THREE[:1]), 201)
        response = owner.client().put(f"/upload/{body['id']}/move", {"organization_id": "org_nope"}, format="json")
        assert_error(response, 404, "NOT_FOUND")

    def test_move_to_an_org_over_quota_is_refused(self, owner, outsider):
        Membership.objects.create(user=owner.user, organization=outsider.org, role="admin")
        outsider.org.file_quota = 1
        outsider.org.save()
        body = data_of(post_upload(owner.client(), THREE), 201)
        response = owner.client().put(f"/upload/{body['id']}/move", {"organization_id": outsider.org.pk}, format="json")
        assert_error(response, 413, "QUOTA_EXCEEDED")
        assert Upload.objects.get(pk=body["id"]).organization_id == owner.org.pk
        assert set(Task.objects.filter(upload_id=body["id"]).values_list("organization_id", flat=True)) == {owner.org.pk}

    def test_read_only_key_cannot_move(self, member):
        _key, raw = account_services.api_key_issue_for(org=member.org, user=member.user, name="read only", scopes=["upload.read"])
        body = data_of(post_upload(member.client(), THREE[:1], project="Inbox"), 201)
        client = member.client()
        client.credentials(HTTP_X_API_KEY=raw)
        data_of(client.get(f"/upload/{body['id']}"))  # reading is fine
        assert_error(client.put(f"/upload/{body['id']}/move", {"project": "Elsewhere"}, format="json"), 403)
        assert_error(post_upload(client, THREE[:1]), 403)
        assert not Dataset.objects.filter(name="Elsewhere").exists()

    def test_viewer_cannot_move(self, member, viewer):
        body = data_of(post_upload(member.client(), THREE[:1]), 201)
        assert_error(viewer.client().put(f"/upload/{body['id']}/move", {"project": "X"}, format="json"), 403)


# --- other tenants --------------------------------------------------------------------------


@pytest.mark.django_db
class TestIsolation:
    def test_outsider_gets_404_everywhere_with_no_side_effect(self, member, outsider):
        body = data_of(post_upload(member.client(), THREE[:2], project="Inbox"), 201)
        process_all(body["id"])
        task_id = body["tasks"][0]["id"]
        client = outsider.client()
        before_audit = AuditEvent.objects.count()
        assert_error(client.get(f"/upload/{body['id']}"), 404, "NOT_FOUND")
        assert_error(client.put(f"/upload/{body['id']}/move", {"project": "Stolen"}, format="json"), 404, "NOT_FOUND")
        assert_error(
            client.put(f"/upload/{body['id']}/move", {"organization_id": outsider.org.pk}, format="json"), 404, "NOT_FOUND"
        )
        assert_error(client.get(f"/task/{task_id}"), 404, "NOT_FOUND")
        assert_error(client.post(f"/task/{task_id}/complete"), 404, "NOT_FOUND")
        assert_error(client.post(f"/task/{task_id}/discard"), 404, "NOT_FOUND")
        # Same answer as for an id that never existed.
        missing = client.get("/upload/upl_00000000000000000000000000")
        assert missing.json()["error"] == client.get(f"/upload/{body['id']}").json()["error"]
        assert AuditEvent.objects.count() == before_audit
        assert Task.objects.get(pk=task_id).status == TaskStatus.REVIEWING
        upload = Upload.objects.get(pk=body["id"])
        assert upload.organization_id == member.org.pk and upload.dataset.name == "Inbox"
        assert not Dataset.objects.filter(organization=outsider.org).exists()

    def test_outsider_cannot_pull_an_upload_into_org_a(self, member, outsider):
        body = data_of(post_upload(outsider.client(), THREE[:1]), 201)
        response = outsider.client().put(f"/upload/{body['id']}/move", {"organization_id": member.org.pk}, format="json")
        assert_error(response, 404, "NOT_FOUND")
        assert Upload.objects.get(pk=body["id"]).organization_id == outsider.org.pk


@pytest.mark.django_db(transaction=True)
def test_a_move_does_not_block_a_file_being_added_to_the_upload(member, monkeypatch):
    # upload_move locks the upload row FOR NO KEY UPDATE: a transaction committing a file that
    # points at the upload (a conversion's output: its deferred foreign key is checked with
    # FOR KEY SHARE at COMMIT) goes ahead instead of waiting for the move. With FOR UPDATE it
    # waited, and could deadlock with the move over the storage-usage counter row.
    import threading

    from django.db import connection, connections

    from uploads import services as upload_services

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    body = data_of(post_upload(member.client(), THREE[:1]), 201)
    locked, release, answers = threading.Event(), threading.Event(), []
    real_audit = upload_services.audit_record

    def hold_the_move_open(**kwargs):
        if kwargs.get("action") == "upload.move":  # inside the move's transaction, the upload locked
            locked.set()
            release.wait(10)
        return real_audit(**kwargs)

    monkeypatch.setattr(upload_services, "audit_record", hold_the_move_open)

    def move() -> None:
        try:
            answers.append(member.client().put(f"/upload/{body['id']}/move", {"project": "Archive"}, format="json"))
        finally:
            connections.close_all()

    mover = threading.Thread(target=move)
    mover.start()
    try:
        assert locked.wait(10), "the move should be inside its transaction"
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        added = StoredFile(organization=member.org, upload_id=body["id"], name="output.txt", storage_key="k/output.txt")
        added.save()  # autocommit: the foreign key to the upload is checked at this COMMIT
    finally:
        release.set()
        mover.join(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert answers and answers[0].status_code == 200
    assert StoredFile.objects.filter(pk=added.pk, upload_id=body["id"]).exists()
