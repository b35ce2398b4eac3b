"""``uploads.processing.file_process``: type from the bytes, sandboxed inspection,
thumbnails, failures with a code, idempotency, poison files, review (SECURITY #6, #7, #9, #13, F1, F2)."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image, PngImagePlugin
from pypdf import PdfWriter

from accounts.models import OrgSetting
from fileconvert import storage
from tests.conftest import data_of
from uploads.models import FileStatus, ReviewState, StoredFile, Task, TaskStatus
from uploads.processing import file_process

# --- real files ----------------------------------------------------------------------------------


def image_bytes(fmt: str, size=(64, 40), color=(220, 40, 40), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt, **save)
    return out.getvalue()


def pdf_bytes(pages: int = 1, width: float = 300, height: float = 400) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=height)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pixel_flood_png(width: int = 65535, height: int = 65535) -> bytes:
    """A real (tiny) PNG whose IHDR is patched to claim ``width`` x ``height``, CRC fixed."""
    data = bytearray(image_bytes("PNG", size=(8, 8)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def text_chunk_bomb_png() -> bytes:
    """A small PNG with a zTXt chunk that inflates to 8 MB."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "A" * (8 * 1024 * 1024), zip=True)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script>'
    b'<rect width="10" height="10" onclick="alert(2)"/></svg>'
)


# --- helpers -------------------------------------------------------------------------------------


def upload_one(persona, name: str, data: bytes) -> StoredFile:
    response = persona.client().post(
        "/upload", {"files": [SimpleUploadedFile(name, data, content_type="image/png")]}, format="multipart"
    )
    body = data_of(response, 201)
    return StoredFile.objects.get(pk=body["tasks"][0]["file_id"])


def processed(persona, name: str, data: bytes) -> tuple[str, StoredFile]:
    stored = upload_one(persona, name, data)
    outcome = file_process(file_id=stored.pk)
    stored.refresh_from_db()
    return outcome, stored


def set_review(org, required: bool) -> None:
    OrgSetting.objects.update_or_create(organization=org, key="review.required", defaults={"value": required})


def temp_entries() -> set[str]:
    return set(os.listdir(settings.FILE_UPLOAD_TEMP_DIR))


def thumbnail_of(stored: StoredFile) -> Image.Image:
    assert stored.thumbnail_key == f"{stored.organization_id}/{stored.pk}/.thumbnail.png"
    assert storage.object_size(stored.thumbnail_key)
    image = Image.open(io.BytesIO(b"".join(storage.iter_chunks(stored.thumbnail_key))))
    image.load()
    return image


def assert_failed(stored: StoredFile, *codes: str) -> None:
    assert stored.status == FileStatus.FAILED
    assert stored.error_code in codes, (stored.error_code, stored.error_message)
    assert stored.error_message
    task = Task.objects.get(file=stored)
    assert task.status == TaskStatus.FAILED
    assert task.error_code == stored.error_code


# --- type from the bytes ----------------------------------------------------------------------------


@pytest.mark.django_db
class TestDetection:
    def test_png_named_jpg_is_png(self, member):
        outcome, stored = processed(member, "photo.jpg", image_bytes("PNG"))
        assert outcome == "staged"
        assert stored.content_type == "image/png" and stored.kind == "png"
        assert stored.claimed_content_type == "image/png"  # what the client said is kept, not used
        assert stored.name == "photo.jpg"

    def test_html_named_png_is_active_html(self, member):
        outcome, stored = processed(member, "x.png", HTML)
        assert outcome == "staged"
        assert stored.kind == "html" and stored.content_type == "text/html"
        assert stored.thumbnail_key == ""
        assert "width" not in stored.metadata

    def test_php_named_png(self, member):
        _outcome, stored = processed(member, "shell.png", b"<?php system($_GET['c']); ?>\n")
        assert stored.kind == "php" and stored.content_type == "text/x-php"

    def test_svg_with_script_is_svg(self, member):
        outcome, stored = processed(member, "logo.png", SVG)
        assert outcome == "staged"
        assert stored.kind == "svg" and stored.content_type == "image/svg+xml"

    def test_svg_with_doctype_and_event_handler_is_svg(self, member):
        svg = (
            b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
        )
        _outcome, stored = processed(member, "logo.svg", svg)
        assert stored.kind == "svg"

    def test_jpeg_html_polyglot_is_jpeg(self, member):
        payload = b"<html><body><script>alert(1)</script></body></html>"
        polyglot = image_bytes("JPEG", comment=payload) + payload
        assert polyglot.startswith(b"\xff\xd8\xff") and payload in polyglot
        outcome, stored = processed(member, "cat.html", polyglot)
        assert outcome == "staged"
        assert stored.content_type == "image/jpeg" and stored.kind == "jpeg"
        assert stored.metadata["width"] == 64 and stored.metadata["height"] == 40

    def test_pdf_zip_polyglot_is_pdf(self, member):
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("evil.html", HTML)
        outcome, stored = processed(member, "doc.zip", pdf_bytes(1) + archive.getvalue())
        assert outcome == "staged"
        assert stored.kind == "pdf" and stored.content_type == "application/pdf"
        assert stored.metadata["pages"] == 1


# --- summaries and thumbnails ----------------------------------------------------------------------


@pytest.mark.django_db
class TestInspection:
    @pytest.mark.parametrize("fmt,kind", [("PNG", "png"), ("JPEG", "jpeg")])
    def test_image_summary_and_thumbnail(self, member, fmt, kind):
        outcome, stored = processed(member, f"big.{kind}", image_bytes(fmt, size=(600, 300)))
        assert outcome == "staged"
        assert stored.kind == kind
        assert stored.metadata["width"] == 600 and stored.metadata["height"] == 300
        assert stored.metadata["format"] == fmt
        thumb = thumbnail_of(stored)
        assert thumb.format == "PNG"
        assert max(thumb.size) <= 256
        assert thumb.size == (256, 128)

    def test_small_image_thumbnail_is_not_enlarged(self, member):
        _outcome, stored = processed(member, "small.png", image_bytes("PNG", size=(30, 20)))
        assert thumbnail_of(stored).size == (30, 20)

    def test_pdf_summary_and_first_page_thumbnail(self, member):
        outcome, stored = processed(member, "report.pdf", pdf_bytes(3, width=300, height=600))
        assert outcome == "staged"
        assert stored.kind == "pdf" and stored.content_type == "application/pdf"
        assert stored.metadata["pages"] == 3
        assert stored.metadata["encrypted"] is False
        assert stored.metadata["page_width_pt"] == 300 and stored.metadata["page_height_pt"] == 600
        thumb = thumbnail_of(stored)
        assert thumb.format == "PNG"
        assert max(thumb.size) <= 256 and thumb.size[1] == 256

    def test_text_has_no_thumbnail(self, member):
        _outcome, stored = processed(member, "notes.txt", b"just words\n")
        assert stored.kind == "text" and stored.thumbnail_key == ""

    def test_temporary_files_are_removed(self, member):
        before = temp_entries()
        processed(member, "a.png", image_bytes("PNG"))
        processed(member, "b.pdf", pdf_bytes(1))
        processed(member, "c.png", pixel_flood_png())
        assert temp_entries() == before


# --- hostile content fails with a code; the worker survives --------------------------------------------


@pytest.mark.django_db
class TestHostile:
    def test_pixel_flood_fails_and_the_worker_survives(self, member):
        flood = pixel_flood_png()
        assert len(flood) < 1024
        assert struct.unpack(">II", flood[16:24]) == (65535, 65535)
        with pytest.raises(Image.DecompressionBombError):  # a real PNG header Pillow parses
            Image.open(io.BytesIO(flood))
        outcome, stored = processed(member, "flood.png", flood)
        assert outcome == "failed"
        assert_failed(stored, "IMAGE_TOO_LARGE")
        assert stored.thumbnail_key == ""
        assert not storage.object_size(f"{stored.organization_id}/{stored.pk}/.thumbnail.png")
        # The next file is processed normally.
        outcome, fine = processed(member, "fine.png", image_bytes("PNG"))
        assert outcome == "staged" and fine.metadata["width"] == 64

    def test_pixel_limit_comes_from_settings(self, member):
        with override_settings(FILECONVERT={**settings.FILECONVERT, "MAX_IMAGE_PIXELS": 1000}):
            outcome, stored = processed(member, "medium.png", image_bytes("PNG", size=(100, 100)))
        assert outcome == "failed"
        assert_failed(stored, "IMAGE_TOO_LARGE")

    def test_png_text_chunk_bomb_fails(self, member):
        bomb = text_chunk_bomb_png()
        assert len(bomb) < 64 * 1024
        outcome, stored = processed(member, "bomb.png", bomb)
        assert outcome == "failed"
        assert_failed(stored, "UNREADABLE_CONTENT", "IMAGE_TOO_LARGE")

    def test_unreadable_png(self, member):
        outcome, stored = processed(member, "broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        assert outcome == "failed"
        assert_failed(stored, "UNREADABLE_CONTENT")

    def test_truncated_pdf_never_raises(self, member):
        whole = pdf_bytes(2)
        outcome, stored = processed(member, "cut.pdf", whole[: len(whole) // 2])
        assert outcome in ("staged", "failed")
        if outcome == "failed":
            assert_failed(stored, "UNREADABLE_CONTENT")  # pypdf: "Stream has ended unexpectedly"
        else:
            assert stored.kind == "pdf" and "pages" in stored.metadata

    def test_garbage_pdf_fails(self, member):
        outcome, stored = processed(member, "junk.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 2)
        assert outcome == "failed"
        assert_failed(stored, "UNREADABLE_CONTENT")


# --- idempotency, poison, missing bytes ----------------------------------------------------------------


@pytest.mark.django_db
class TestPipeline:
    def test_second_call_is_skipped(self, member):
        stored = upload_one(member, "a.txt", b"hello")
        assert file_process(file_id=stored.pk) == "staged"
        assert file_process(file_id=stored.pk) == "skipped"
        stored.refresh_from_db()
        assert stored.process_attempts == 1
        assert stored.status == FileStatus.STAGED

    def test_the_claim_is_one_statement_returning_the_row_as_stored(self, member, django_assert_max_num_queries):
        from django.db import connection
        from django.forms.models import model_to_dict

        from fileconvert import fastsql
        from uploads.processing import _claim

        stored = upload_one(member, "a.txt", b"hello")
        if not fastsql.supports_update_returning(connection.alias):
            pytest.skip(f"{connection.vendor}: UPDATE ... RETURNING is not available")
        with django_assert_max_num_queries(1):
            claimed = _claim(stored.pk)
        assert claimed is not None and claimed.process_attempts == 1
        assert model_to_dict(claimed) == model_to_dict(StoredFile.objects.get(pk=stored.pk))
        StoredFile.objects.filter(pk=stored.pk).update(status=FileStatus.ACTIVE)
        assert _claim(stored.pk) is None
        assert StoredFile.objects.get(pk=stored.pk).process_attempts == 1  # not counted: not processing

    def test_unknown_file_is_skipped(self, db):
        assert file_process(file_id="fil_doesnotexist") == "skipped"

    def test_failed_file_is_not_retried(self, member):
        stored = upload_one(member, "broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        assert file_process(file_id=stored.pk) == "failed"
        assert file_process(file_id=stored.pk) == "skipped"

    def test_poison_file_fails_after_max_attempts(self, member):
        stored = upload_one(member, "poison.png", image_bytes("PNG"))
        limit = settings.FILECONVERT["PROCESS_MAX_ATTEMPTS"]
        # Earlier deliveries died mid-job (the row still says processing).
        StoredFile.objects.filter(pk=stored.pk).update(process_attempts=limit, status=FileStatus.PROCESSING)
        assert file_process(file_id=stored.pk) == "failed"
        stored.refresh_from_db()
        assert_failed(stored, "POISON_FILE")
        assert stored.process_attempts == limit + 1
        assert file_process(file_id=stored.pk) == "skipped"

    def test_last_allowed_attempt_still_runs(self, member):
        stored = upload_one(member, "ok.png", image_bytes("PNG"))
        limit = settings.FILECONVERT["PROCESS_MAX_ATTEMPTS"]
        StoredFile.objects.filter(pk=stored.pk).update(process_attempts=limit - 1)
        assert file_process(file_id=stored.pk) == "staged"

    def test_missing_bytes(self, member):
        stored = upload_one(member, "gone.png", image_bytes("PNG"))
        storage.delete(stored.storage_key)
        assert file_process(file_id=stored.pk) == "failed"
        stored.refresh_from_db()
        assert_failed(stored, "MISSING_BYTES")

    def test_changed_bytes_fail_the_checksum(self, member):
        stored = upload_one(member, "swapped.txt", b"original bytes")
        Path(storage.local_path(stored.storage_key)).write_bytes(b"tampered bytes")  # same size
        assert file_process(file_id=stored.pk) == "failed"
        stored.refresh_from_db()
        assert_failed(stored, "CHECKSUM_MISMATCH")

    def test_changed_size_fails(self, member):
        stored = upload_one(member, "grown.txt", b"original bytes")
        Path(storage.local_path(stored.storage_key)).write_bytes(b"original bytes and more")
        assert file_process(file_id=stored.pk) == "failed"
        stored.refresh_from_db()
        assert_failed(stored, "SIZE_MISMATCH")

    def test_outputs_recorded_on_success(self, member):
        data = image_bytes("PNG")
        _outcome, stored = processed(member, "pic.png", data)
        assert stored.size == len(data)
        assert stored.error_code == "" and stored.error_message == ""
        assert stored.process_attempts == 1


# --- review --------------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestReview:
    def test_review_required_by_default(self, member):
        outcome, stored = processed(member, "a.png", image_bytes("PNG"))
        assert outcome == "staged"
        assert stored.status == FileStatus.STAGED and stored.review_state == ReviewState.PENDING
        assert Task.objects.get(file=stored).status == TaskStatus.REVIEWING

    def test_review_required_explicitly(self, member):
        set_review(member.org, True)
        outcome, stored = processed(member, "a.txt", b"x")
        assert outcome == "staged"
        assert Task.objects.get(file=stored).status == TaskStatus.REVIEWING

    def test_no_review_means_completed(self, member):
        set_review(member.org, False)
        outcome, stored = processed(member, "a.png", image_bytes("PNG"))
        assert outcome == "active"
        assert stored.status == FileStatus.ACTIVE and stored.review_state == ReviewState.NOT_REQUIRED
        assert Task.objects.get(file=stored).status == TaskStatus.COMPLETED

    def test_failure_is_failed_whatever_the_review_setting(self, member):
        set_review(member.org, False)
        outcome, stored = processed(member, "flood.png", pixel_flood_png())
        assert outcome == "failed"
        assert Task.objects.get(file=stored).status == TaskStatus.FAILED


# --- small raster images are inspected in the worker (fileconvert.imagebounds, decision 0013) ----------


def gif_frames(count: int, size=(40, 30)) -> bytes:
    frames = [Image.new("RGB", size, (i * 80, 0, 0)) for i in range(count)]  # distinct, or Pillow merges them
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


@pytest.fixture
def sandboxed(monkeypatch):
    """Calls of the sandboxed inspection, which still runs."""
    from fileconvert import sandbox

    calls: list[list[str]] = []
    real = sandbox.run_python_module

    def run(module, args, **kwargs):
        calls.append(args)
        return real(module, args, **kwargs)

    monkeypatch.setattr(sandbox, "run_python_module", run)
    return calls


@pytest.mark.django_db
class TestInspectedInTheWorker:
    @pytest.mark.parametrize(
        "fmt,kind,extra",
        [("PNG", "png", {}), ("JPEG", "jpeg", {"quality": 90}), ("GIF", "gif", {}), ("WEBP", "webp", {}), ("BMP", "bmp", {})],
    )
    def test_a_small_image_gets_the_summary_and_thumbnail_the_sandbox_gives(
        self, member, sandboxed, monkeypatch, fmt, kind, extra
    ):
        from fileconvert import imagebounds

        body = image_bytes(fmt, size=(600, 300), **extra)
        _outcome, here = processed(member, f"a.{kind}", body)
        assert sandboxed == []  # no child
        monkeypatch.setattr(imagebounds, "small_raster", lambda *a, **k: False)
        _outcome, there = processed(member, f"b.{kind}", body)
        assert len(sandboxed) == 1
        assert here.status == there.status and here.kind == there.kind == kind
        assert here.metadata == there.metadata and here.metadata["width"] == 600
        mine, theirs = thumbnail_of(here), thumbnail_of(there)
        assert mine.size == theirs.size == (256, 128) and mine.mode == theirs.mode
        assert mine.tobytes() == theirs.tobytes()  # the same code made both

    @pytest.mark.parametrize(
        "name,body,why",
        [
            ("wide.png", image_bytes("PNG", size=(1200, 1000)), "over INLINE_MAX_PIXELS"),
            ("moving.gif", gif_frames(3), "more than one frame"),
            ("prog.jpg", image_bytes("JPEG", size=(300, 200), progressive=True), "progressive: one pass per scan"),
            ("scan.tiff", image_bytes("TIFF", size=(60, 40)), "not an inline format"),
            ("noise.png", None, "over INLINE_MAX_BYTES"),
        ],
    )
    def test_anything_else_is_still_inspected_in_the_sandbox(self, member, sandboxed, name, body, why):
        if body is None:
            body = image_bytes("PNG", size=(700, 700), color=(1, 2, 3), pnginfo=_padding(1100 * 1024))
        outcome, stored = processed(member, name, body)
        assert outcome == "staged", (why, stored.error_code, stored.error_message)
        assert len(sandboxed) == 1, why

    def test_an_unreadable_small_image_fails_as_it_does_in_the_sandbox(self, member, sandboxed):
        whole = image_bytes("PNG", size=(300, 200), color=(9, 9, 9))
        cut = whole[: len(whole) // 2]
        outcome, stored = processed(member, "cut.png", cut)
        assert sandboxed == [] and outcome == "failed"
        assert_failed(stored, "UNREADABLE_CONTENT")

    def test_the_workers_warning_filters_and_pixel_limit_are_left_alone(self, member, sandboxed):
        import warnings

        filters, pixel_limit = list(warnings.filters), Image.MAX_IMAGE_PIXELS
        processed(member, "a.png", image_bytes("PNG", size=(200, 100)))
        assert sandboxed == []
        assert warnings.filters == filters
        assert pixel_limit == Image.MAX_IMAGE_PIXELS

    def test_an_image_over_the_operators_pixel_limit_goes_to_the_sandbox_and_fails(self, member, sandboxed):
        with override_settings(FILECONVERT={**settings.FILECONVERT, "MAX_IMAGE_PIXELS": 1000}):
            outcome, stored = processed(member, "medium.png", image_bytes("PNG", size=(100, 100)))
        assert len(sandboxed) == 1 and outcome == "failed"
        assert_failed(stored, "IMAGE_TOO_LARGE")


def _big_exif_png() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 100_000  # ImageDescription: 100 KB of EXIF on 40x30 pixels
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "PNG", exif=exif.tobytes())
    return out.getvalue()


def _inflating_text_png() -> bytes:
    """Four compressed text chunks of 200 KB each: a few KB of file, 800 KB once inflated
    (within Pillow's own limits, over the worker's)."""
    info = PngImagePlugin.PngInfo()
    for index in range(4):
        info.add_text(f"Comment{index}", "A" * 200_000, zip=True)
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _big_xmp_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + "x" * 100_000 + "</x:xmpmeta>")
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _big_icc_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (10, 200, 10)).save(out, "JPEG", icc_profile=b"\0" * 100_000)
    return out.getvalue()


def _corrupt_exif_png() -> bytes:
    """An eXIf chunk whose one tag points past the end: Pillow warns and skips it."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 270, 2, 1000, 5000)
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "PNG", exif=b"Exif\x00\x00" + tiff + struct.pack("<I", 0))
    return out.getvalue()


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


@pytest.mark.django_db
class TestInspectedInTheWorkerWithinBounds:
    """What the header bound leaves to the child besides pixels: metadata (review of 0013)."""

    @pytest.mark.parametrize(
        "name,make,why",
        [
            ("exif.png", _big_exif_png, "100 KB of EXIF (exif_transpose parses every IFD)"),
            ("texts.png", _inflating_text_png, "800 KB of text once inflated"),
            ("xmp.png", _big_xmp_png, "100 KB of XMP"),
        ],
    )
    def test_heavy_metadata_goes_to_the_sandbox(self, member, sandboxed, name, make, why):
        outcome, stored = processed(member, name, make())
        assert outcome == "staged", (why, stored.error_code, stored.error_message)
        assert len(sandboxed) == 1, why

    def test_a_large_icc_profile_is_carried_not_parsed_and_stays_in_the_worker(self, member, sandboxed):
        outcome, stored = processed(member, "icc.jpg", _big_icc_jpeg())
        assert outcome == "staged" and sandboxed == [] and stored.metadata["width"] == 60

    def test_a_rotated_jpeg_gets_the_same_turned_thumbnail_both_ways(self, member, sandboxed, monkeypatch):
        from fileconvert import imagebounds

        _outcome, here = processed(member, "turn.jpg", _rotated_jpeg())
        assert sandboxed == []
        monkeypatch.setattr(imagebounds, "small_raster", lambda *a, **k: False)
        _outcome, there = processed(member, "turn2.jpg", _rotated_jpeg())
        assert len(sandboxed) == 1
        assert here.metadata == there.metadata and here.metadata["has_exif"] is True
        mine, theirs = thumbnail_of(here), thumbnail_of(there)
        assert mine.size == theirs.size == (171, 256)  # portrait: turned before the thumbnail
        assert mine.tobytes() == theirs.tobytes()

    def test_warnings_of_a_malformed_file_are_not_printed_by_the_worker(self, member, sandboxed):
        import warnings

        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            outcome, stored = processed(member, "tags.png", _corrupt_exif_png())
        assert sandboxed == [] and outcome == "staged", (stored.error_code, stored.error_message)
        assert [str(w.message) for w in seen if "Tag data" in str(w.message)] == []

    def test_the_tasks_soft_time_limit_ends_an_inspection_as_a_timeout(self, member, sandboxed, monkeypatch):
        from celery.exceptions import SoftTimeLimitExceeded

        from uploads import inspect_worker
        from uploads.tasks import process_file

        assert process_file.soft_time_limit == settings.FILECONVERT["PROCESS_TIMEOUT_SECONDS"]
        assert process_file.time_limit == process_file.soft_time_limit + 60

        def overran(*_args):
            raise SoftTimeLimitExceeded()

        monkeypatch.setattr(inspect_worker, "image_summary_of", overran)
        outcome, stored = processed(member, "slow.png", image_bytes("PNG"))
        assert sandboxed == [] and outcome == "failed"
        assert_failed(stored, "PROCESSING_TIMEOUT")


def _padding(size: int) -> PngImagePlugin.PngInfo:
    """A PNG text chunk of ``size`` random-looking bytes stored uncompressed (a big file of few pixels)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Padding", os.urandom(size // 2).hex()[:size], zip=False)
    return info
