"""``GET|POST /api/files/{org_id}/{id}/metadata`` through the real API, services, sandbox and storage."""

from __future__ import annotations

import hashlib

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, Organization
from metadata.models import MetadataEdit
from tests.conftest import assert_error, data_of
from tests.metadata import samples as s
from tests.uploads.filebytes import stored_bytes
from uploads.models import FileStatus, StoredFile
from uploads.signals import file_activated, file_content_changed


def url(file: StoredFile, org_id: str | None = None) -> str:
    return f"/api/files/{org_id or file.organization_id}/{file.pk}/metadata"


def post(client, file: StoredFile, body: dict, org_id: str | None = None):
    return client.post(url(file, org_id), body, format="json")


@pytest.fixture
def signals():
    received: list[tuple[str, dict]] = []

    def on_changed(sender, **kwargs):
        received.append(("changed", kwargs))

    def on_activated(sender, **kwargs):
        received.append(("activated", kwargs))

    file_content_changed.connect(on_changed, weak=False)
    file_activated.connect(on_activated, weak=False)
    yield received
    file_content_changed.disconnect(on_changed)
    file_activated.disconnect(on_activated)


@pytest.mark.django_db
class TestGet:
    def test_probe_shape(self, member, stored_file):
        f = stored_file(member, s.jpeg_bytes(), "photo.jpg")
        data = data_of(member.client().get(url(f)))
        assert set(data) == {"kind", "containers", "common", "sections", "editable"}
        assert data["common"]["author"] == s.AUTHOR
        assert data["common"]["gps"]["lat"] == pytest.approx(s.GPS[0], abs=1e-5)
        assert {c["name"] for c in data["containers"]} >= {"jpeg", "exif", "xmp", "iptc"}
        assert data["editable"]["sections"]["exif"]["remove"] == "*"

    def test_viewer_may_read(self, member, viewer, stored_file):
        f = stored_file(member, s.png_bytes(), "a.png")
        assert data_of(viewer.client().get(url(f)))["common"]["author"] == s.AUTHOR

    def test_broken_container_is_an_entry_not_a_500(self, member, stored_file):
        f = stored_file(member, s.jpeg_bytes(xmp=s.XMP_BOMB), "bomb.jpg")
        data = data_of(member.client().get(url(f)))
        bad = [c for c in data["containers"] if c["status"] == "error"]
        assert bad == [
            {"name": "xmp", "status": "error", "error": {"code": "XML_FORBIDDEN", "message": bad[0]["error"]["message"]}}
        ]

    def test_office_bomb_and_truncated_pdf(self, member, stored_file):
        bomb = stored_file(member, s.docx_bomb(), "bomb.docx")
        data = data_of(member.client().get(url(bomb)))
        assert {c["name"]: c["status"] for c in data["containers"]}["office_core"] == "error"
        pdf = s.pdf_bytes()
        cut = stored_file(member, pdf[: len(pdf) // 2], "cut.pdf", may_fail=True)
        data = data_of(member.client().get(url(cut)))
        assert [c for c in data["containers"] if c["status"] == "error"]

    def test_other_organization_is_404(self, member, outsider, stored_file):
        theirs = stored_file(outsider, s.jpeg_bytes(), "theirs.jpg")
        assert_error(member.client().get(url(theirs)), 404, "NOT_FOUND")  # their org id in the path
        assert_error(member.client().get(url(theirs, org_id=member.org.pk)), 404, "NOT_FOUND")  # ours
        assert_error(member.client().get(f"/api/files/{member.org.pk}/fil_missing/metadata"), 404, "NOT_FOUND")

    def test_auth_failures(self, anon, member, stored_file):
        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        assert_error(anon.get(url(f)), 401)
        anon.credentials(HTTP_X_API_KEY="fck_000000000000_wrong")
        assert_error(anon.get(url(f)), 401)
        anon.credentials(HTTP_X_API_KEY=member.key[:-3])
        assert_error(anon.post(url(f), {"strip_all": True}, format="json"), 401)
        assert f.storage_key == StoredFile.objects.get(pk=f.pk).storage_key

    def test_revoked_key_bad_bearer_and_read_only_key(self, member, stored_file):
        from accounts.identity import system_identity
        from accounts.models import ApiKey
        from accounts.services import api_key_issue_for, api_key_revoke

        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        client = member.client()
        api_key_revoke(actor=system_identity(member.org), key=ApiKey.objects.get(user=member.user))
        assert_error(client.get(url(f)), 401)
        assert_error(client.post(url(f), {"strip_all": True}, format="json"), 401)
        bearer = type(client)()
        bearer.credentials(HTTP_AUTHORIZATION="Bearer fct_000000000000_nope")
        assert_error(bearer.get(url(f)), 401)
        _key, raw = api_key_issue_for(org=member.org, user=member.user, name="read only", scopes=["upload.read"])
        reader = type(client)()
        reader.credentials(HTTP_X_API_KEY=raw)
        assert data_of(reader.get(url(f)))["kind"] == "jpeg"
        assert_error(reader.post(url(f), {"strip_all": True}, format="json"), 403, "INSUFFICIENT_SCOPE")
        assert StoredFile.objects.get(pk=f.pk).sha256 == f.sha256

    def test_pending_file_is_409(self, member):
        from tests.uploads.filebytes import init_upload

        file_id = init_upload(member.client(), "later.jpg")["file_id"]
        pending = StoredFile.objects.get(pk=file_id)
        assert_error(member.client().get(url(pending)), 409, "FILE_NOT_READY")
        assert_error(post(member.client(), pending, {"strip_all": True}), 409, "FILE_NOT_READY")

    def test_listed_in_meta_with_scopes(self, member):
        actions = data_of(member.client().get("/api/_meta/files"))["actions"]
        found = {a["name"]: a for a in actions}
        assert found["file_metadata"]["path"].endswith("/{id}/metadata")
        assert found["file_metadata"]["scope"] == "upload.read"


@pytest.mark.django_db
class TestEditVersion:
    def test_anonymize_writes_a_new_version(self, member, stored_file, signals, django_capture_on_commit_callbacks):
        f = stored_file(member, s.jpeg_bytes(), "photo.jpg")
        old_key, old_sha = f.storage_key, f.sha256
        with django_capture_on_commit_callbacks(execute=True):
            data = data_of(post(member.client(), f, {"anonymize": True}))
        f.refresh_from_db()
        body = stored_bytes(f.storage_key)
        assert f.storage_key != old_key and stored_bytes(old_key) is None  # old object deleted after commit
        assert f.sha256 == hashlib.sha256(body).hexdigest() != old_sha
        assert f.size == len(body) and f.content_type == "image/jpeg"
        for needle in (s.AUTHOR, s.SERIAL, s.OWNER, s.COMMENT, s.SOFTWARE):
            assert needle.encode() not in body
        assert data["version"] == 1 and data["as_copy"] is False and data["file"]["id"] == f.pk
        assert data["file"]["sha256"] == f.sha256
        assert {"section": "exif", "key": "Artist", "action": "removed", "reason": "anonymize"} in data["changed"]
        edit = MetadataEdit.objects.get(pk=data["edit_id"])
        assert (edit.file_id, edit.version, edit.previous_sha256, edit.sha256) == (f.pk, 1, old_sha, f.sha256)
        assert edit.actor_id == member.user.pk and edit.operations["anonymize"] is True
        audit = AuditEvent.objects.get(action="file.metadata_edit", target_id=f.pk)
        assert audit.actor_id == member.user.pk and audit.details["version"] == 1
        assert ("changed", {"file_id": f.pk, "organization_id": f.organization_id, "sha256": f.sha256}) in [
            (n, {k: v for k, v in kw.items() if k != "signal"}) for n, kw in signals
        ]
        probed = data_of(member.client().get(url(f)))
        assert "gps" not in probed["common"] and "author" not in probed["common"]

    def test_versions_count_up_and_set_remove(self, member, stored_file, django_capture_on_commit_callbacks):
        f = stored_file(member, s.pdf_bytes(), "doc.pdf")
        with django_capture_on_commit_callbacks(execute=True):
            first = data_of(post(member.client(), f, {"set": {"pdf_info": {"Title": "One"}}}))
            second = data_of(
                post(member.client(), f, {"remove": {"pdf_info": ["Author"]}, "set": {"pdf_info": {"Subject": "Two"}}})
            )
        assert (first["version"], second["version"]) == (1, 2)
        probed = data_of(member.client().get(url(f)))
        assert probed["sections"]["pdf_info"] == {
            "Title": "One",
            "Subject": "Two",
            "Creator": s.SOFTWARE,
            "Producer": "pypdf",
            "CreationDate": "D:20230714102030+02'00'",
        }
        f.refresh_from_db()
        assert f.metadata.get("author", "") == ""  # the upload-time summary follows the bytes
        assert f.metadata.get("title") == "One"
        assert StoredFile.objects.filter(organization=member.org).count() == 1

    def test_strip_all_docx_round_trip(self, member, stored_file, django_capture_on_commit_callbacks):
        f = stored_file(member, s.docx_bytes(), "report.docx")
        with django_capture_on_commit_callbacks(execute=True):
            data_of(post(member.client(), f, {"strip_all": True}))
        f.refresh_from_db()
        probed = data_of(member.client().get(url(f)))
        assert "author" not in probed["common"] and f.kind == "docx"

    @pytest.mark.parametrize(("name", "make"), [("a.tif", s.tiff_bytes), ("a.png", s.png_bytes), ("a.pdf", s.pdf_bytes)])
    def test_strip_all_leaves_no_author_in_the_stored_bytes(
        self, member, stored_file, django_capture_on_commit_callbacks, name, make
    ):
        f = stored_file(member, make(), name)
        with django_capture_on_commit_callbacks(execute=True):
            data = data_of(post(member.client(), f, {"strip_all": True}))
        f.refresh_from_db()
        body = stored_bytes(f.storage_key)
        assert s.AUTHOR.encode() not in body and s.SOFTWARE.encode() not in body
        assert data["file"]["size"] == len(body)

    def test_nothing_to_change_makes_no_version(self, member, stored_file):
        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        data = data_of(post(member.client(), f, {"remove": {"exif": ["LensModel"]}}))
        assert data["version"] is None and data["changed"] == []
        assert data["skipped"] == [{"section": "exif", "key": "LensModel", "reason": "not present in the file"}]
        assert StoredFile.objects.get(pk=f.pk).storage_key == f.storage_key
        assert not MetadataEdit.objects.exists()

    def test_viewer_cannot_edit(self, member, viewer, stored_file):
        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        assert_error(post(viewer.client(), f, {"strip_all": True}), 403, "INSUFFICIENT_SCOPE")
        assert StoredFile.objects.get(pk=f.pk).sha256 == f.sha256

    def test_other_organization_is_404_and_untouched(self, member, outsider, stored_file):
        theirs = stored_file(outsider, s.jpeg_bytes(), "theirs.jpg")
        assert_error(post(member.client(), theirs, {"strip_all": True}), 404, "NOT_FOUND")
        assert_error(post(member.client(), theirs, {"strip_all": True, "as_copy": True}, org_id=member.org.pk), 404, "NOT_FOUND")
        assert StoredFile.objects.get(pk=theirs.pk).sha256 == theirs.sha256
        assert not StoredFile.objects.filter(organization=member.org).exists()

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"set": {"exif": "Artist"}},
            {"remove": {"exif": "Artist"}},
            {"set": {"exif": {"Artist": {"nested": 1}}}},
            {"set": {"exif": {"Artist": "x" * 2001}}},
            {"anonymize": "maybe"},
        ],
    )
    def test_bad_bodies_are_400(self, member, stored_file, body):
        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        assert_error(post(member.client(), f, body), 400, "VALIDATION_ERROR")

    def test_unsupported_combinations_are_422(self, member, stored_file):
        jpeg = stored_file(member, s.jpeg_bytes(), "a.jpg")
        body = assert_error(
            post(member.client(), jpeg, {"set": {"pdf_info": {"Title": "x"}, "xmp": {"a": "b"}}}), 422, "UNSUPPORTED_EDIT"
        )
        assert set(body["details"]["sections"]) == {"set.pdf_info", "set.xmp"}
        body = assert_error(post(member.client(), jpeg, {"remove": {"xmp": ["dc:creator"]}}), 422, "UNSUPPORTED_EDIT")
        assert set(body["details"]["sections"]) == {"remove.xmp"}
        gif = stored_file(member, _gif(), "a.gif")
        body = assert_error(post(member.client(), gif, {"strip_all": True}), 422, "UNSUPPORTED_EDIT")
        assert body["details"]["kind"] == "gif"

    def test_bomb_edit_is_422_and_nothing_changes(self, member, stored_file):
        f = stored_file(member, s.docx_bomb(), "bomb.docx")
        assert_error(post(member.client(), f, {"anonymize": True}), 422, "XML_FORBIDDEN")
        f2 = StoredFile.objects.get(pk=f.pk)
        assert (f2.storage_key, f2.sha256) == (f.storage_key, f.sha256)
        assert stored_bytes(f.storage_key) == s.docx_bomb() or stored_bytes(f.storage_key) is not None
        assert not MetadataEdit.objects.exists()

    def test_quota_is_respected(self, member, stored_file):
        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        Organization.objects.filter(pk=member.org.pk).update(storage_quota_bytes=f.size + 10)
        big = "x" * 1500
        assert_error(post(member.client(), f, {"set": {"exif": {"ImageDescription": big}}}), 413, "QUOTA_EXCEEDED")
        assert StoredFile.objects.get(pk=f.pk).sha256 == f.sha256
        Organization.objects.filter(pk=member.org.pk).update(file_quota=1)
        assert_error(post(member.client(), f, {"strip_all": True, "as_copy": True}), 413, "QUOTA_EXCEEDED")
        assert StoredFile.objects.filter(organization=member.org).count() == 1

    def test_quota_is_checked_again_under_the_lock_after_the_bytes_are_written(self, member, stored_file, monkeypatch):
        # Another upload takes the last of the quota while the edited bytes are being stored:
        # the check in the transaction (under the quota lock) refuses, and the new bytes go.
        from metadata import services as metadata_services

        f = stored_file(member, s.jpeg_bytes(), "a.jpg")
        Organization.objects.filter(pk=member.org.pk).update(file_quota=2)
        stored: list[str] = []
        real_upload = metadata_services._upload

        def upload_then_race(written, key):
            real_upload(written, key)
            stored.append(key)
            other = StoredFile(
                organization=member.org, name="other.bin", size=1, confirmed_at=timezone.now(), status=FileStatus.ACTIVE
            )
            other.storage_key = f"{member.org.pk}/{other.pk}/other.bin"
            other.save(force_insert=True)

        monkeypatch.setattr(metadata_services, "_upload", upload_then_race)
        assert_error(post(member.client(), f, {"strip_all": True, "as_copy": True}), 413, "QUOTA_EXCEEDED")
        assert stored and stored_bytes(stored[0]) is None
        assert not StoredFile.objects.filter(parent=f).exists()


@pytest.mark.django_db
class TestEditCopy:
    def test_as_copy_keeps_the_original(self, member, stored_file, signals, django_capture_on_commit_callbacks):
        f = stored_file(member, s.jpeg_bytes(), "photo.jpg")
        original = stored_bytes(f.storage_key)
        with django_capture_on_commit_callbacks(execute=True):
            response = post(member.client(), f, {"strip_all": True, "as_copy": True})
        data = data_of(response, 201)
        copy = StoredFile.objects.get(pk=data["file"]["id"])
        assert copy.pk != f.pk and copy.parent_id == f.pk and copy.organization_id == f.organization_id
        assert copy.status == f.status and copy.visibility == "private" and copy.name == f.name
        assert (copy.review_state, copy.review_expires_at) == (f.review_state, f.review_expires_at)
        assert stored_bytes(f.storage_key) == original  # untouched
        body = stored_bytes(copy.storage_key)
        assert copy.sha256 == hashlib.sha256(body).hexdigest() and copy.size == len(body)
        assert s.AUTHOR.encode() not in body
        assert data["as_copy"] is True and data["version"] == 1
        assert MetadataEdit.objects.get(file=copy).source_id == f.pk
        assert AuditEvent.objects.filter(action="file.metadata_copy", target_id=copy.pk).exists()
        assert not [n for n, _ in signals if n == "changed"]

    def test_copy_of_active_file_is_announced(self, member, stored_file, signals, django_capture_on_commit_callbacks):
        f = stored_file(member, s.png_bytes(), "a.png")
        StoredFile.objects.filter(pk=f.pk).update(status=FileStatus.ACTIVE)
        f.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            data = data_of(post(member.client(), f, {"anonymize": True, "as_copy": True}), 201)
        assert ("activated", data["file"]["id"]) in [(n, kw["file_id"]) for n, kw in signals]


@pytest.mark.skipif(not s.FFMPEG, reason="ffmpeg is not installed")
@pytest.mark.django_db
def test_audio_edit_through_the_api(member, stored_file, tmp_path, django_capture_on_commit_callbacks):
    path = s.ffmpeg_media(tmp_path / "song.mp3", "mp3")
    f = stored_file(member, path.read_bytes(), "song.mp3")
    with django_capture_on_commit_callbacks(execute=True):
        data = data_of(post(member.client(), f, {"set": {"id3": {"TIT2": "Renamed"}}, "remove": {"id3": ["TXXX:comment"]}}))
    assert data["skipped"] == []
    probed = data_of(member.client().get(url(f)))
    assert probed["common"]["title"] == "Renamed"
    assert "TXXX:comment" not in probed["sections"]["id3"]


def _gif() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("P", (4, 4)).save(out, "GIF", comment=b"hi")
    return out.getvalue()


@pytest.mark.django_db
def test_history_in_the_admin_is_read_only(member, platform_admin, stored_file, django_capture_on_commit_callbacks):
    from django.test import Client

    f = stored_file(member, s.jpeg_bytes(), "a.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        edit_id = data_of(post(member.client(), f, {"anonymize": True}))["edit_id"]
    console = Client()
    console.force_login(platform_admin.user)
    page = console.get(f"/admin/metadata/metadataedit/?q={f.pk}")
    assert page.status_code == 200 and edit_id in page.content.decode()
    assert console.get(f"/admin/metadata/metadataedit/{edit_id}/change/").status_code == 200
    assert console.get("/admin/metadata/metadataedit/add/").status_code == 403


@pytest.mark.django_db
def test_probe_query_count_is_fixed(member, stored_file, django_assert_num_queries):
    f = stored_file(member, s.png_bytes(), "a.png")
    client = member.client()
    data_of(client.get(url(f)))  # warm caches (throttle, settings)
    with django_assert_num_queries(3):  # the credential, its membership, the file
        data_of(client.get(url(f)))
