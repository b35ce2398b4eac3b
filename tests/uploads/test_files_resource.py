"""The ``file`` auto-CRUD resource: /api/files and /api/files/{org_id}/{id}, plus /api/usage."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.identity import system_identity
from accounts.models import Organization
from accounts.services import setting_set
from tests.conftest import assert_error, data_of
from tests.uploads.filebytes import (
    init_upload,
    jpeg_bytes,
    media_paths_mentioning,
    noise_png,
    partial_files,
    png_bytes,
    sha256_of,
    stored_bytes,
)
from uploads.models import Dataset, FileStatus, StoredFile, Task, Upload, Visibility
from uploads.processing import file_process
from uploads.services import dataset_resolve


def post_file(client, body: bytes, filename: str = "photo.png", content_type: str = "image/png", **fields):
    return client.post(
        "/api/files", {**fields, "file": SimpleUploadedFile(filename, body, content_type=content_type)}, format="multipart"
    )


def create_file(client, body: bytes, filename: str = "photo.png", **fields) -> dict:
    return data_of(post_file(client, body, filename, **fields), 201)


def detail(persona_or_org_id, file_id: str) -> str:
    org_id = getattr(getattr(persona_or_org_id, "org", None), "pk", persona_or_org_id)
    return f"/api/files/{org_id}/{file_id}"


def usage(client) -> dict:
    return data_of(client.get("/api/usage"))


def dataset_named(org: Organization, name: str) -> Dataset:
    return dataset_resolve(actor=system_identity(org), name=name)


@pytest.mark.django_db
class TestCreate:
    def test_multipart_file_is_streamed_to_storage(self, member):
        body = png_bytes()
        data = create_file(member.client(), body, "holiday.png")
        assert data["name"] == "holiday.png"
        assert data["organization_id"] == member.org.pk
        assert data["size"] == len(body)
        assert data["sha256"] == sha256_of(body)
        assert data["status"] == FileStatus.PROCESSING
        assert data["claimed_content_type"] == "image/png"
        assert data["uploaded_by"] == member.user.pk
        assert data["visibility"] == Visibility.PRIVATE

        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.storage_key.startswith(f"{member.org.pk}/{stored.pk}/")
        assert stored.confirmed_at is not None
        assert stored_bytes(stored.storage_key) == body
        assert Upload.objects.get(pk=stored.upload_id).source == Upload.SOURCE_API
        assert Task.objects.filter(file=stored).count() == 1
        assert partial_files() == []

    def test_hostile_name_field_and_filename_are_sanitised(self, member):
        data = create_file(member.client(), png_bytes(), "../../etc/passwd", name="..\\..\\a\u202egnp.exe")
        stored = StoredFile.objects.get(pk=data["id"])
        assert stored.name == "agnp.exe"
        assert stored.storage_key.startswith(f"{member.org.pk}/{stored.pk}/")
        assert ".." not in stored.storage_key

    def test_dataset_and_visibility_on_create(self, member):
        dataset = dataset_named(member.org, "Holiday")
        data = create_file(member.client(), png_bytes(), dataset_id=dataset.pk, visibility="org")
        assert data["dataset_id"] == dataset.pk and data["visibility"] == "org"

    def test_dataset_of_another_org_is_404_and_nothing_is_stored(self, member, outsider):
        theirs = dataset_named(outsider.org, "Theirs")
        assert_error(post_file(member.client(), png_bytes(), dataset_id=theirs.pk), 404, "NOT_FOUND")
        assert not StoredFile.objects.exists()
        assert media_paths_mentioning(member.org.pk) == []
        assert partial_files() == []

    def test_without_a_file_is_400(self, member):
        assert_error(member.client().post("/api/files", {"name": "x"}, format="multipart"), 400)
        assert_error(member.client().post("/api/files", {"name": "x"}, format="json"), 400)
        assert not StoredFile.objects.exists()

    def test_empty_file_is_refused_and_not_kept(self, member):
        assert_error(post_file(member.client(), b""), 400)
        assert not StoredFile.objects.exists()
        assert media_paths_mentioning(member.org.pk) == []

    def test_two_files_are_refused(self, member):
        client = member.client()
        response = client.post(
            "/api/files",
            {"file": [SimpleUploadedFile("a.png", png_bytes()), SimpleUploadedFile("b.png", png_bytes())]},
            format="multipart",
        )
        assert_error(response, 413, "TOO_MANY_FILES")
        assert not StoredFile.objects.exists()
        assert media_paths_mentioning(member.org.pk) == []

    def test_quota_is_enforced_and_nothing_is_kept(self, member):
        client = member.client()
        Organization.objects.filter(pk=member.org.pk).update(storage_quota_bytes=500)
        assert_error(post_file(client, noise_png()), 413)
        Organization.objects.filter(pk=member.org.pk).update(storage_quota_bytes=10**9, file_quota=0)
        assert_error(post_file(client, png_bytes()), 413, "QUOTA_EXCEEDED")
        assert not StoredFile.objects.exists()
        assert media_paths_mentioning(member.org.pk) == []
        assert partial_files() == []

    def test_viewer_cannot_create(self, viewer):
        assert_error(post_file(viewer.client(), png_bytes()), 403, "INSUFFICIENT_SCOPE")
        assert not StoredFile.objects.exists()


@pytest.mark.django_db
class TestListAndRetrieve:
    def test_list_and_filters(self, member, outsider):
        client = member.client()
        holiday = dataset_named(member.org, "Holiday")
        first = create_file(client, png_bytes(), "a.png")
        second = create_file(client, jpeg_bytes(), "b.jpg", dataset_id=holiday.pk)
        pending = init_upload(client, "c.jpg")["file_id"]
        create_file(outsider.client(), png_bytes(), "theirs.png")
        assert file_process(file_id=first["id"]) == "staged"

        def ids(**params):
            return [f["id"] for f in data_of(client.get("/api/files", params))["items"]]

        page = data_of(client.get("/api/files"))
        assert set(page) == {"items", "next_cursor", "has_more"}
        assert [f["id"] for f in page["items"]] == [pending, second["id"], first["id"]]
        assert ids(status="processing") == [second["id"]]
        assert ids(status="staged") == [first["id"]]
        assert ids(status="pending") == [pending]
        assert ids(status="active") == []
        assert ids(kind="png") == [first["id"]]
        assert ids(dataset_id=holiday.pk) == [second["id"]]
        cutoff = StoredFile.objects.get(pk=second["id"]).created_at
        assert ids(created_after=cutoff.isoformat()) == [pending, second["id"]]
        assert ids(created_before=cutoff.isoformat()) == [first["id"]]
        assert_error(client.get("/api/files", {"status": "bogus"}), 400)

        assert ids(limit=2) == [pending, second["id"]]
        cursor = data_of(client.get("/api/files", {"limit": 2}))["next_cursor"]
        assert ids(limit=2, cursor=cursor) == [first["id"]]

    def test_retrieve(self, member, viewer):
        body = png_bytes()
        created = create_file(member.client(), body)
        got = data_of(viewer.client().get(detail(member, created["id"])))
        assert got == created

    def test_meta_describes_the_resource(self, member, viewer):
        meta = data_of(member.client().get("/api/_meta/file"))
        assert meta["name"] == "file" and meta["path"] == "/api/files"
        names = {f["name"] for f in meta["fields"]}
        assert {"id", "name", "size", "sha256", "status", "visibility", "file"} <= names
        actions = {a["name"]: a for a in meta["actions"]}
        assert {"list", "create", "retrieve", "update", "delete"} <= set(actions)
        assert actions["list"]["allowed"] is True
        viewer_meta = data_of(viewer.client().get("/api/_meta/file"))
        assert {a["name"]: a["allowed"] for a in viewer_meta["actions"]}["delete"] is False
        assert data_of(member.client().get("/api/_meta/files"))["name"] == "file"


@pytest.mark.django_db
class TestUpdate:
    def test_patch_name_is_sanitised(self, member):
        client = member.client()
        created = create_file(client, png_bytes(), "a.png")
        key = StoredFile.objects.get(pk=created["id"]).storage_key
        data = data_of(client.patch(detail(member, created["id"]), {"name": "．．／secret\u202e.png"}, format="json"))
        assert data["name"] == "secret.png"
        stored = StoredFile.objects.get(pk=created["id"])
        assert stored.name == "secret.png" and stored.storage_key == key

    def test_public_needs_an_active_file(self, member):
        client = member.client()
        created = create_file(client, png_bytes())
        url = detail(member, created["id"])
        assert_error(client.patch(url, {"visibility": "public"}, format="json"), 409, "NOT_SHAREABLE")
        file_process(file_id=created["id"])
        assert StoredFile.objects.get(pk=created["id"]).status == FileStatus.STAGED
        assert_error(client.patch(url, {"visibility": "public"}, format="json"), 409, "NOT_SHAREABLE")
        assert StoredFile.objects.get(pk=created["id"]).visibility == Visibility.PRIVATE
        assert data_of(client.patch(url, {"visibility": "org"}, format="json"))["visibility"] == "org"
        assert_error(client.patch(url, {"visibility": "everyone"}, format="json"), 400)

    def test_active_file_can_be_made_public(self, member):
        setting_set(actor=system_identity(member.org), key="review.required", value=False)
        client = member.client()
        created = create_file(client, png_bytes())
        assert file_process(file_id=created["id"]) == "active"
        data = data_of(client.patch(detail(member, created["id"]), {"visibility": "public"}, format="json"))
        assert data["visibility"] == "public"

    def test_patch_dataset(self, member, outsider):
        client = member.client()
        created = create_file(client, png_bytes())
        url = detail(member, created["id"])
        holiday = dataset_named(member.org, "Holiday")
        assert data_of(client.patch(url, {"dataset_id": holiday.pk}, format="json"))["dataset_id"] == holiday.pk
        assert StoredFile.objects.get(pk=created["id"]).dataset_id == holiday.pk
        theirs = dataset_named(outsider.org, "Theirs")
        assert_error(client.patch(url, {"dataset_id": theirs.pk}, format="json"), 404, "NOT_FOUND")
        assert StoredFile.objects.get(pk=created["id"]).dataset_id == holiday.pk
        assert data_of(client.patch(url, {"dataset_id": None}, format="json"))["dataset_id"] is None

    def test_viewer_cannot_patch(self, member, viewer):
        created = create_file(member.client(), png_bytes(), "a.png")
        response = viewer.client().patch(detail(member, created["id"]), {"name": "b.png"}, format="json")
        assert_error(response, 403, "INSUFFICIENT_SCOPE")
        assert StoredFile.objects.get(pk=created["id"]).name == "a.png"


@pytest.mark.django_db
class TestDeleteAndUsage:
    def test_usage_is_exact_and_delete_removes_bytes_and_thumbnail(self, member, django_capture_on_commit_callbacks):
        client = member.client()
        assert usage(client)["storage_bytes"] == 0 and usage(client)["file_count"] == 0
        one, two = png_bytes(), jpeg_bytes()
        first = create_file(client, one, "one.png")
        second = create_file(client, two, "two.jpg")
        init_upload(client, "pending.jpg", size=10_000)  # not confirmed: not counted
        file_process(file_id=first["id"])
        before = usage(client)
        assert before["storage_bytes"] == len(one) + len(two)
        assert before["file_count"] == 2
        assert before["remaining_bytes"] == before["quota_bytes"] - len(one) - len(two)

        stored = StoredFile.objects.get(pk=first["id"])
        assert stored.thumbnail_key and stored_bytes(stored.thumbnail_key) is not None
        with django_capture_on_commit_callbacks(execute=True):
            response = client.delete(detail(member, stored.pk))
        assert response.status_code == 204, response.content
        assert not StoredFile.objects.filter(pk=stored.pk).exists()
        assert not Task.objects.filter(file_id=stored.pk).exists()
        assert not Upload.objects.filter(pk=stored.upload_id).exists()
        assert stored_bytes(stored.storage_key) is None
        assert stored_bytes(stored.thumbnail_key) is None
        assert media_paths_mentioning(stored.pk) == []
        after = usage(client)
        assert after["storage_bytes"] == len(two) and after["file_count"] == 1
        assert StoredFile.objects.get(pk=second["id"]).size == len(two)
        assert_error(client.get(detail(member, stored.pk)), 404, "NOT_FOUND")
        assert_error(client.delete(detail(member, stored.pk)), 404, "NOT_FOUND")

    def test_cross_org_get_patch_delete_are_404_and_change_nothing(self, member, outsider, django_capture_on_commit_callbacks):
        body = png_bytes()
        created = create_file(member.client(), body, "mine.png")
        stored = StoredFile.objects.get(pk=created["id"])
        theirs = outsider.client()
        with django_capture_on_commit_callbacks(execute=True):
            for org_id in (member.org.pk, outsider.org.pk):
                url = detail(org_id, stored.pk)
                assert_error(theirs.get(url), 404, "NOT_FOUND")
                assert_error(theirs.patch(url, {"name": "pwned.png", "visibility": "org"}, format="json"), 404, "NOT_FOUND")
                assert_error(theirs.delete(url), 404, "NOT_FOUND")
        assert data_of(theirs.get("/api/files"))["items"] == []
        # The owner's org id in the path with the owner's own key is the only way in.
        assert_error(member.client().get(detail(outsider.org.pk, stored.pk)), 404, "NOT_FOUND")
        after = StoredFile.objects.get(pk=stored.pk)
        assert (after.name, after.visibility, after.status) == ("mine.png", Visibility.PRIVATE, FileStatus.PROCESSING)
        assert stored_bytes(stored.storage_key) == body
        assert usage(member.client())["storage_bytes"] == len(body)
        assert usage(theirs)["storage_bytes"] == 0

    def test_viewer_cannot_delete(self, member, viewer):
        created = create_file(member.client(), png_bytes())
        assert_error(viewer.client().delete(detail(member, created["id"])), 403, "INSUFFICIENT_SCOPE")
        assert StoredFile.objects.filter(pk=created["id"]).exists()
