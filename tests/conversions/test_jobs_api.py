"""Jobs through the API: one-shot convert, conversion-jobs resource, retry, cancel, the
seed 000 status API, a file's conversions, isolation and auth. Jobs are run by calling
the engine directly (what the Celery task does); test_worker.py runs a real worker."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from conversions import engine
from conversions.models import ConversionJob, JobStatus
from fileconvert.signed import file_token_check
from tests.conftest import assert_error, data_of, record_published
from tests.conversions import samples
from tests.uploads.filebytes import media_paths_mentioning, stored_bytes, upload_file
from uploads.models import StoredFile

pytestmark = pytest.mark.django_db


def convert(client, body: bytes, name: str, target: str, options=None, status: int = 202, **fields):
    form = {"file": SimpleUploadedFile(name, body), "target_format": target, **fields}
    if options is not None:
        form["options"] = json.dumps(options)
    response = client.post("/api/convert", form, format="multipart")
    return data_of(response, status) if status < 400 else response


def run(job_id: str) -> ConversionJob:
    engine.job_run(job_id=job_id)
    return ConversionJob.objects.select_related("result", "source").get(pk=job_id)


def status_api(client, job_id: str):
    return client.get(f"/status-api/{job_id}")


class TestOneShot:
    def test_png_to_jpeg_end_to_end(self, member):
        client = member.client()
        body = samples.png_rgba((120, 80))
        job = convert(client, body, "picture.png", "jpg", {"width": 60, "quality": 70}, visibility="org")
        assert job["status"] == "queued" and job["progress"] == 0
        assert (job["source_format"], job["target_format"]) == ("png", "jpeg")
        assert job["options"]["width"] == 60 and job["options"]["quality"] == 70 and job["options"]["fit"] == "contain"
        source = StoredFile.objects.get(pk=job["source_file_id"])
        assert stored_bytes(source.storage_key) == body

        done = run(job["id"])

        assert done.status == JobStatus.SUCCEEDED and done.progress == 100 and done.attempts == 1
        assert done.started_at and done.finished_at and done.finished_at >= done.started_at
        result = done.result
        assert result.parent_id == source.pk and result.organization_id == member.org.pk
        assert result.visibility == "org" and result.name == "picture.jpg"
        assert result.metadata["conversion"]["job_id"] == done.pk
        image = Image.open(io.BytesIO(stored_bytes(result.storage_key)))
        assert image.format == "JPEG" and image.size == (60, 40)
        assert result.size == len(stored_bytes(result.storage_key))

        shown = data_of(client.get(f"/api/conversion-jobs/{member.org.pk}/{done.pk}"))
        assert shown["status"] == "succeeded" and shown["result_file_id"] == result.pk
        assert shown["error"] is None
        assert set(AuditEvent.objects.filter(target_id=done.pk).values_list("action", flat=True)) == {
            "conversion.create",
            "conversion.succeed",
        }

    def test_status_api_shape_and_download_link(self, member):
        client = member.client()
        job = convert(client, samples.image_bytes("gif"), "anim.gif", "png")
        queued = data_of(status_api(client, job["id"]))
        assert queued["status"] == "queued" and queued["result"] is None and queued["error"] is None
        assert queued["details"] is None
        assert set(queued) == {
            "job_id",
            "status",
            "progress",
            "source_file_id",
            "target_format",
            "attempts",
            "result",
            "error",
            "details",
            "created_at",
            "started_at",
            "finished_at",
        }
        done = run(job["id"])
        body = data_of(status_api(client, job["id"]))
        assert body["status"] == "succeeded" and body["progress"] == 100
        url = urlparse(body["result"]["download_url"])
        assert url.path == f"/api/files/{member.org.pk}/{done.result_id}/download"
        token = parse_qs(url.query)["dl"][0]
        signed = file_token_check(token, purpose="download", current_sha256=lambda fid: StoredFile.objects.get(pk=fid).sha256)
        assert signed.file_id == done.result_id
        assert body["result"]["file_id"] == done.result_id and body["result"]["name"] == "anim.png"

    def test_failed_job_status_in_seed_shape(self, member):
        client = member.client()
        job = convert(client, samples.pixel_flood_png(20000), "bomb.png", "jpeg")
        done = run(job["id"])
        assert done.status == JobStatus.FAILED and done.error_code == "IMAGE_TOO_LARGE"
        assert done.result is None
        body = data_of(status_api(client, job["id"]))
        # seed 000's error vocabulary: the code as `error`, the human message as `details.message`
        assert body["status"] == "failed" and body["error"] == "IMAGE_TOO_LARGE" and body["result"] is None
        assert body["details"] == {"message": done.error_message} and "pixels" in body["details"]["message"].lower()
        assert not StoredFile.objects.filter(parent_id=job["source_file_id"]).exists()

    def test_a_multi_page_pdf_to_png_gives_a_zip_of_its_pages(self, member):
        import zipfile

        from uploads.processing import file_process

        client = member.client()
        job = convert(client, samples.pdf_bytes(pages=3), "Annual report.pdf", "png", {"dpi": 72})
        done = run(job["id"])
        assert done.status == JobStatus.SUCCEEDED and done.result.name == "Annual report-pages.zip"
        assert done.facts["archive"] == "zip" and done.facts["rendered"] == 3
        with zipfile.ZipFile(io.BytesIO(stored_bytes(done.result.storage_key))) as archive:
            assert archive.namelist() == ["page-001.png", "page-002.png", "page-003.png"]
        file_process(file_id=done.result_id)  # the output goes through the uploads pipeline like any file
        done.result.refresh_from_db()
        assert (done.result.kind, done.result.content_type) == ("zip", "application/zip")
        body = data_of(status_api(client, job["id"]))
        assert body["result"]["name"] == "Annual report-pages.zip"

    def test_titles_come_from_the_users_file_name_not_the_storage_key(self, member):
        from pypdf import PdfReader

        client = member.client()
        pdf = run(convert(client, samples.image_bytes("png"), "Holiday photo.png", "pdf")["id"])
        assert PdfReader(io.BytesIO(stored_bytes(pdf.result.storage_key))).metadata.title == "Holiday photo"
        page = run(convert(client, b"No heading here, just *text*.\n", "Meeting notes.md", "html")["id"])
        assert "<title>Meeting notes</title>" in stored_bytes(page.result.storage_key).decode()

    def test_unsupported_pair_is_422_listing_targets_and_stores_nothing(self, member):
        before = StoredFile.objects.count()
        response = convert(member.client(), samples.image_bytes("png"), "a.png", "mp3", status=422)
        body = assert_error(response, 422, "UNSUPPORTED_CONVERSION")
        assert "jpeg" in body["details"]["supported_targets"] and "webp" in body["details"]["message"]
        assert StoredFile.objects.count() == before
        assert media_paths_mentioning(member.org.pk) == []

    @pytest.mark.parametrize(
        ("options", "bad"),
        [
            ({"quality": 0}, "quality"),
            ({"quality": "high"}, "quality"),
            ({"width": -5}, "width"),
            ({"fit": "squash"}, "fit"),
            ({"background": "red; x"}, "background"),
            ({"sharpen": 3}, "sharpen"),
        ],
    )
    def test_invalid_option_is_422_naming_it(self, member, options, bad):
        before = StoredFile.objects.count()
        response = convert(member.client(), samples.image_bytes("png"), "a.png", "jpeg", options, status=422)
        body = assert_error(response, 422, "INVALID_OPTION")
        assert body["details"]["option"] == bad and bad in body["details"]["message"]
        assert StoredFile.objects.count() == before

    @pytest.mark.parametrize(
        ("source", "name", "target", "options", "bad"),
        [
            ("pdf", "a.pdf", "png", {"pages": "0"}, "pages"),
            ("pdf", "a.pdf", "png", {"pages": "5-2"}, "pages"),
            ("pdf", "a.pdf", "text", {"pages": "1,3-1"}, "pages"),
            ("pdf", "a.pdf", "png", {"page": 0}, "page"),
            ("pdf", "a.pdf", "gif", {"quality": 80}, "quality"),  # lossy targets only (JPEG, WebP)
            ("csv", "a.csv", "json", {"delimiter": ";;"}, "delimiter"),
            ("csv", "a.csv", "json", {"delimiter": ""}, "delimiter"),
            ("csv", "a.csv", "json", {"delimiter": '"'}, "delimiter"),
        ],
    )
    def test_options_the_converter_would_refuse_are_422_at_submit(self, member, source, name, target, options, bad):
        body = samples.pdf_bytes(pages=2) if source == "pdf" else b"a,b\n1,2\n"
        before = StoredFile.objects.count()
        response = convert(member.client(), body, name, target, options, status=422)
        error = assert_error(response, 422, "INVALID_OPTION")
        assert error["details"]["option"] == bad
        assert StoredFile.objects.count() == before

    @pytest.mark.parametrize(("given", "stored"), [(";", ";"), (" ", " "), ("\t", "\t"), ("\\t", "\t")])
    def test_a_delimiter_is_kept_as_given_and_backslash_t_is_a_tab(self, member, given, stored):
        job = convert(member.client(), b"a,b\n", "a.csv", "json", {"delimiter": given})
        assert job["options"]["delimiter"] == stored

    def test_options_must_be_json_object(self, member):
        client = member.client()
        form = {"file": SimpleUploadedFile("a.png", samples.image_bytes("png")), "target_format": "jpeg", "options": "[1,2"}
        assert_error(client.post("/api/convert", form, format="multipart"), 400, "VALIDATION_ERROR")

    def test_needs_a_file(self, member):
        response = member.client().post("/api/convert", {"target_format": "jpeg"}, format="multipart")
        assert_error(response, 400)

    def test_auth_failures(self, viewer, member):
        anon = APIClient()
        assert_error(anon.post("/api/convert", {"target_format": "png"}, format="multipart"), 401)
        bad = APIClient()
        bad.credentials(HTTP_X_API_KEY="fck_nothing_here")
        assert_error(bad.get("/status-api/job_123"), 401)
        response = convert(viewer.client(), samples.image_bytes("png"), "a.png", "jpeg", status=403)
        assert_error(response, 403, "INSUFFICIENT_SCOPE")


class TestResource:
    def test_create_from_existing_file_list_filter_fetch(self, member):
        client = member.client()
        uploaded = upload_file(client, b"id,name\n1,Ada\n2,Alan\n", filename="people.csv")
        created = data_of(
            client.post(
                "/api/conversion-jobs",
                {"file_id": uploaded["id"], "target_format": "json", "options": {"pretty": False}},
                format="json",
            ),
            202,
        )
        assert created["source_format"] == "csv" and created["options"]["pretty"] is False
        done = run(created["id"])
        assert json.loads(stored_bytes(done.result.storage_key)) == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Alan"}]
        assert done.facts["rows"] == 2
        listed = data_of(client.get("/api/conversion-jobs?status=succeeded"))["items"]
        assert [j["id"] for j in listed] == [created["id"]]
        assert data_of(client.get("/api/conversion-jobs?status=failed"))["items"] == []

    def test_listed_in_meta(self, member):
        meta = data_of(member.client().get("/api/_meta"))
        text = json.dumps(meta)
        assert "/api/conversion-jobs" in text

    def test_cancel_queued_job_then_delivery_does_nothing(self, member):
        client = member.client()
        job = convert(client, samples.image_bytes("png"), "a.png", "webp")
        canceled = data_of(client.post(f"/api/conversion-jobs/{member.org.pk}/{job['id']}/cancel"))
        assert canceled["status"] == "canceled"
        assert engine.job_run(job_id=job["id"]) == "skipped"
        assert ConversionJob.objects.get(pk=job["id"]).result_id is None
        assert_error(client.post(f"/api/conversion-jobs/{member.org.pk}/{job['id']}/cancel"), 409, "INVALID_TRANSITION")
        assert AuditEvent.objects.filter(target_id=job["id"], action="conversion.cancel").count() == 1

    def test_delete_removes_the_record_and_keeps_the_result_file(self, member):
        client = member.client()
        job = convert(client, samples.image_bytes("png"), "a.png", "webp")
        done = run(job["id"])
        path = f"/api/conversion-jobs/{member.org.pk}/{job['id']}"
        response = client.delete(path)
        assert response.status_code == 204 and not response.content
        assert not ConversionJob.objects.filter(pk=job["id"]).exists()
        assert_error(client.get(path), 404)
        result = StoredFile.objects.get(pk=done.result_id)  # the output is a file of its own
        assert stored_bytes(result.storage_key) is not None
        event = AuditEvent.objects.get(target_id=job["id"], action="conversion.delete")
        assert event.details["status"] == "succeeded" and event.details["result_id"] == done.result_id
        assert_error(client.delete(path), 404)

    def test_delete_a_queued_job_then_its_delivery_does_nothing(self, member):
        client = member.client()
        job = convert(client, samples.image_bytes("png"), "a.png", "webp")
        assert client.delete(f"/api/conversion-jobs/{member.org.pk}/{job['id']}").status_code == 204
        assert engine.job_run(job_id=job["id"]) == "skipped"
        assert not StoredFile.objects.filter(parent_id=job["source_file_id"]).exists()

    def test_delete_of_a_retried_job_keeps_the_retry(self, member):
        client = member.client()
        job = convert(client, samples.pixel_flood_png(20000), "bomb.png", "webp")
        run(job["id"])
        retried = data_of(client.post(f"/api/conversion-jobs/{member.org.pk}/{job['id']}/retry"), 202)
        assert client.delete(f"/api/conversion-jobs/{member.org.pk}/{job['id']}").status_code == 204
        assert ConversionJob.objects.get(pk=retried["id"]).retry_of_id is None

    def test_retry_failed_job_links_new_attempt(self, member):
        client = member.client()
        job = convert(client, samples.pixel_flood_png(20000), "bomb.png", "webp")
        run(job["id"])
        retried = data_of(client.post(f"/api/conversion-jobs/{member.org.pk}/{job['id']}/retry"), 202)
        assert retried["retry_of_id"] == job["id"] and retried["status"] == "queued" and retried["id"] != job["id"]
        assert retried["source_file_id"] == job["source_file_id"] and retried["target_format"] == "webp"
        assert AuditEvent.objects.filter(target_id=retried["id"], action="conversion.retry").exists()

    def test_retry_of_succeeded_job_is_409(self, member):
        client = member.client()
        job = convert(client, samples.image_bytes("png"), "a.png", "bmp")
        run(job["id"])
        assert_error(client.post(f"/api/conversion-jobs/{member.org.pk}/{job['id']}/retry"), 409, "INVALID_TRANSITION")

    def test_viewer_reads_but_cannot_create_retry_or_cancel(self, member, viewer):
        job = convert(member.client(), samples.image_bytes("png"), "a.png", "bmp")
        client = viewer.client()
        assert data_of(client.get(f"/api/conversion-jobs/{viewer.org.pk}/{job['id']}"))["id"] == job["id"]
        assert data_of(status_api(client, job["id"]))["job_id"] == job["id"]
        for response in (
            client.post("/api/conversion-jobs", {"file_id": job["source_file_id"], "target_format": "png"}, format="json"),
            client.post(f"/api/conversion-jobs/{viewer.org.pk}/{job['id']}/retry"),
            client.delete(f"/api/conversion-jobs/{viewer.org.pk}/{job['id']}"),
        ):
            assert_error(response, 403, "INSUFFICIENT_SCOPE")


class TestIsolation:
    def test_other_organization_gets_404_everywhere(self, member, outsider):
        job = convert(member.client(), samples.image_bytes("png"), "a.png", "jpeg")
        org, job_id, file_id = member.org.pk, job["id"], job["source_file_id"]
        client = outsider.client()
        for response in (
            client.get(f"/api/conversion-jobs/{org}/{job_id}"),
            client.get(f"/api/conversion-jobs/{outsider.org.pk}/{job_id}"),
            client.post(f"/api/conversion-jobs/{org}/{job_id}/retry"),
            client.post(f"/api/conversion-jobs/{outsider.org.pk}/{job_id}/cancel"),
            client.delete(f"/api/conversion-jobs/{org}/{job_id}"),
            status_api(client, job_id),
            client.post("/api/conversion-jobs", {"file_id": file_id, "target_format": "png"}, format="json"),
            client.get(f"/api/files/{org}/{file_id}/conversions"),
            client.get(f"/api/files/{outsider.org.pk}/{file_id}/conversions"),
            client.post("/api/convert", {"upload_id": file_id, "target_format": "png"}, format="json", HTTP_X_SOURCE_TYPE="file"),
        ):
            assert_error(response, 404, "NOT_FOUND")
        assert data_of(client.get("/api/conversion-jobs"))["items"] == []
        assert ConversionJob.objects.get(pk=job_id).status == JobStatus.QUEUED
        assert ConversionJob.objects.count() == 1

    def test_merge_with_another_orgs_pdf_is_refused(self, member, outsider):
        theirs = upload_file(outsider.client(), samples.pdf_bytes(pages=1), filename="theirs.pdf")
        response = convert(
            member.client(), samples.pdf_bytes(pages=2), "mine.pdf", "pdf", {"merge_with": [theirs["id"]]}, status=422
        )
        assert assert_error(response, 422, "INVALID_OPTION")["details"]["option"] == "merge_with"


class TestExecution:
    def test_double_delivery_is_idempotent(self, member):
        job = convert(member.client(), samples.image_bytes("png"), "a.png", "gif")
        assert engine.job_run(job_id=job["id"]) == "succeeded"
        assert engine.job_run(job_id=job["id"]) == "skipped"
        row = ConversionJob.objects.get(pk=job["id"])
        assert row.attempts == 1
        assert StoredFile.objects.filter(parent_id=job["source_file_id"]).count() == 1

    def test_running_job_of_a_live_worker_is_not_taken(self, member):
        job = convert(member.client(), samples.image_bytes("png"), "a.png", "gif")
        ConversionJob.objects.filter(pk=job["id"]).update(status=JobStatus.RUNNING, claimed_by=engine.worker_token() + "0")
        # Same host, a pid that does not exist: the worker died; the redelivery takes over.
        ConversionJob.objects.filter(pk=job["id"]).update(claimed_by=f"{engine.worker_token().rsplit(':', 1)[0]}:999999")
        assert engine.job_run(job_id=job["id"]) == "succeeded"
        import os

        ConversionJob.objects.filter(pk=job["id"]).update(status=JobStatus.RUNNING, claimed_by=f"other-host:{os.getpid()}")
        assert engine.job_run(job_id=job["id"]) == "skipped"

    def test_poison_job_ends_failed_after_max_attempts(self, member, settings):
        settings.FILECONVERT = {**settings.FILECONVERT, "CONVERT_MAX_ATTEMPTS": 2}
        job = convert(member.client(), samples.image_bytes("png"), "a.png", "gif")
        ConversionJob.objects.filter(pk=job["id"]).update(attempts=2)
        assert engine.job_run(job_id=job["id"]) == "failed"
        row = ConversionJob.objects.get(pk=job["id"])
        assert (row.status, row.error_code, row.attempts) == (JobStatus.FAILED, "POISON_JOB", 3)

    def test_timeout_fails_the_job(self, member, settings, monkeypatch):
        from conversions.converters.images import ImageConverter

        def hang(*_args, **_kwargs):
            import time

            time.sleep(30)

        monkeypatch.setattr(ImageConverter, "convert", hang)
        settings.FILECONVERT = {**settings.FILECONVERT, "CONVERT_TIMEOUT_SECONDS": 1}
        job = convert(member.client(), samples.image_bytes("png"), "a.png", "gif")
        assert engine.job_run(job_id=job["id"]) == "failed"
        assert ConversionJob.objects.get(pk=job["id"]).error_code == "TIMEOUT"

    def test_sweeper_republishes_lost_and_frees_dead_running_jobs(self, member, monkeypatch):
        from datetime import timedelta

        from django.utils import timezone

        from conversions import services

        published = record_published(monkeypatch, "conversions.tasks.run_job")
        lost = convert(member.client(), samples.image_bytes("png"), "a.png", "gif")
        dead = convert(member.client(), samples.image_bytes("png"), "b.png", "gif")
        fresh = convert(member.client(), samples.image_bytes("png"), "c.png", "gif")
        old = timezone.now() - timedelta(hours=2)
        ConversionJob.objects.filter(pk=lost["id"]).update(enqueued_at=old)
        ConversionJob.objects.filter(pk=dead["id"]).update(
            status=JobStatus.RUNNING, started_at=old, enqueued_at=old, claimed_by="x:1"
        )
        ConversionJob.objects.filter(pk=fresh["id"]).update(enqueued_at=timezone.now())
        assert services.job_requeue_stuck() == 2
        assert sorted(published) == sorted([lost["id"], dead["id"]])
        assert ConversionJob.objects.get(pk=dead["id"]).status == JobStatus.QUEUED


class TestSeed000SourceTypeFile:
    def test_uploaded_file_spawns_job(self, member):
        client = member.client()
        uploaded = upload_file(client, samples.image_bytes("png"), filename="up.png")
        job = data_of(
            client.post(
                "/api/convert", {"upload_id": uploaded["id"], "target_format": "webp"}, format="json", HTTP_X_SOURCE_TYPE="file"
            ),
            202,
        )
        assert job["source_file_id"] == uploaded["id"]
        assert run(job["id"]).status == JobStatus.SUCCEEDED

    def test_presigned_upload_is_confirmed_first(self, member):
        client = member.client()
        created = data_of(client.post("/upload-api", {"filename": "photo.png"}, format="json"), 201)
        response = client.post(
            "/api/convert", {"upload_id": created["upload_id"], "target_format": "jpeg"}, format="json", HTTP_X_SOURCE_TYPE="file"
        )
        assert_error(response, 409, "NOT_UPLOADED")
        form = {**created["fields"], "file": SimpleUploadedFile("photo.png", samples.image_bytes("png"))}
        assert APIClient().post(created["url"], form, format="multipart").status_code == 204
        job = data_of(
            client.post(
                "/api/convert",
                {"upload_id": created["upload_id"], "target_format": "jpeg"},
                format="json",
                HTTP_X_SOURCE_TYPE="file",
            ),
            202,
        )
        assert StoredFile.objects.get(pk=created["upload_id"]).confirmed_at is not None
        assert run(job["id"]).status == JobStatus.SUCCEEDED

    def test_missing_upload_id_is_400(self, member):
        response = member.client().post("/api/convert", {"target_format": "jpeg"}, format="json", HTTP_X_SOURCE_TYPE="file")
        assert_error(response, 400, "VALIDATION_ERROR")


class TestFileConversions:
    def test_targets_with_descriptors_and_prefilled_size(self, member):
        client = member.client()
        uploaded = upload_file(client, samples.image_bytes("png", (321, 123)), filename="a.png")
        body = data_of(client.get(f"/api/files/{member.org.pk}/{uploaded['id']}/conversions"))
        assert body["source_format"] == "png" and body["source"] == {"width": 321, "height": 123}
        targets = {t["format"]: t for t in body["targets"]}
        assert {"jpeg", "webp", "pdf", "ico"} <= set(targets)
        options = {o["name"]: o for o in targets["jpeg"]["options"]}
        assert options["width"]["value"] == 321 and options["height"]["value"] == 123
        assert options["quality"] == {
            "name": "quality",
            "type": "int",
            "default": 85,
            "help": options["quality"]["help"],
            "min": 1,
            "max": 100,
        }
        assert options["fit"]["choices"] == ["contain", "cover", "fill", "inside"]

    @pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")
    def test_docx_offers_chained_targets(self, member):
        client = member.client()
        uploaded = upload_file(client, samples.docx_bytes(), filename="r.docx")
        body = data_of(client.get(f"/api/files/{member.org.pk}/{uploaded['id']}/conversions"))
        targets = {t["format"]: t for t in body["targets"]}
        assert targets["pdf"]["via"] is None and targets["png"]["via"] == "pdf"

    def test_graph_is_public(self):
        body = data_of(APIClient().get("/api/convert/formats"))
        assert "webp" in body["graph"]["jpeg"]
        assert {"source": "csv", "target": "xlsx", "via": None, "converter": "data"} in body["pairs"]
        names = {c["name"]: c for c in body["converters"]}
        assert names["pillow-image"]["available"] is True
        assert "ffmpeg" in names["ffmpeg-audio"]["requires"]["binaries"]


def test_seed_004_quick_example_with_an_anonymous_token():
    client = APIClient()
    token = data_of(client.post("/api/anon/session"), 201)["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    form = {"file": SimpleUploadedFile("data.csv", b"a,b\n1,x\n"), "target_format": "json", "visibility": "private"}
    job = data_of(client.post("/api/convert", form, format="multipart"), 202)
    done = run(job["id"])
    assert done.status == JobStatus.SUCCEEDED and json.loads(stored_bytes(done.result.storage_key)) == [{"a": 1, "b": "x"}]
    assert done.result.visibility == "private"


@pytest.mark.skipif(not samples.HAS_FFMPEG, reason="ffmpeg is not installed")
def test_video_conversions_prefill_size(member, tmp_path):
    client = member.client()
    uploaded = upload_file(client, samples.video_bytes(tmp_path, "mp4", seconds=1.0, size="160x120"), filename="clip.mp4")
    body = data_of(client.get(f"/api/files/{member.org.pk}/{uploaded['id']}/conversions"))
    assert body["source_format"] == "mp4" and body["source"] == {"width": 160, "height": 120}
    targets = {t["format"]: t for t in body["targets"]}
    assert {"webm", "gif", "mp3"} <= set(targets)
    assert {o["name"]: o.get("value") for o in targets["webm"]["options"]}["width"] == 160


def test_meta_schema_of_conversion_jobs(member):
    body = data_of(member.client().get("/api/_meta/conversion-job"))
    text = json.dumps(body)
    assert "target_format" in text and "retry" in text


def test_patch_visibility_while_queued_only(member, outsider):
    client = member.client()
    job = convert(client, samples.image_bytes("png"), "a.png", "jpeg", visibility="private")
    path = f"/api/conversion-jobs/{member.org.pk}/{job['id']}"
    assert data_of(client.patch(path, {"visibility": "org"}, format="json"))["visibility"] == "org"
    assert_error(outsider.client().patch(path, {"visibility": "public"}, format="json"), 404)
    assert_error(client.patch(path, {"visibility": "everyone"}, format="json"), 400, "VALIDATION_ERROR")
    done = run(job["id"])
    assert done.result.visibility == "org"
    assert_error(client.patch(path, {"visibility": "private"}, format="json"), 409, "INVALID_TRANSITION")
    assert AuditEvent.objects.filter(target_id=job["id"], action="conversion.update").count() == 1
