"""Hostile inputs through the whole job path: each ends as a failed (or harmless) job in
the documented shape, the worker process survives, nothing half-written stays."""

from __future__ import annotations

import http.server
import io
import threading
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from conversions import engine
from conversions.models import ConversionJob, JobStatus
from tests.conftest import assert_error, data_of
from tests.conversions import samples
from tests.uploads.filebytes import stored_bytes, upload_file
from uploads.models import StoredFile

pytestmark = pytest.mark.django_db


def start_job(client, body: bytes, name: str, target: str, status: int = 202):
    response = client.post("/api/convert", {"file": SimpleUploadedFile(name, body), "target_format": target}, format="multipart")
    return data_of(response, status) if status < 400 else response


def run(job_id: str) -> ConversionJob:
    engine.job_run(job_id=job_id)
    return ConversionJob.objects.select_related("result").get(pk=job_id)


def assert_failed_cleanly(job: ConversionJob, code: str | None = None) -> None:
    assert job.status == JobStatus.FAILED, (job.status, job.error_code, job.error_message)
    if code:
        assert job.error_code == code, job.error_message
    assert job.error_message and job.result_id is None and job.finished_at
    assert not StoredFile.objects.filter(parent_id=job.source_id).exists()


def test_decompression_bomb_fails_job(member):
    job = start_job(member.client(), samples.pixel_flood_png(30000), "bomb.png", "webp")
    assert_failed_cleanly(run(job["id"]), "IMAGE_TOO_LARGE")


def test_malformed_pdf_fails_job(member):
    broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\nxref\n0 1\ntrailer << /Root 1 0 R /Prev 7 >>\n%%EOF"
    for target in ("text", "png"):
        job = start_job(member.client(), broken, "broken.pdf", target)
        assert_failed_cleanly(run(job["id"]))


def test_flate_bomb_pdf_is_bounded(member):
    """A page whose content stream inflates to far more than pypdf's limit."""
    import zlib

    from pypdf import PdfWriter
    from pypdf.generic import NameObject, StreamObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=100, height=100)
    stream = StreamObject()
    stream._data = zlib.compress(b" " * (200 * 1024**2), 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    assert len(out.getvalue()) < 2 * 1024**2
    job = start_job(member.client(), out.getvalue(), "bomb.pdf", "text")
    done = run(job["id"])
    # Either pypdf's own limit refuses it or the page yields no text; never a hang or a crash.
    assert done.status in (JobStatus.FAILED, JobStatus.SUCCEEDED)
    if done.status == JobStatus.SUCCEEDED:
        assert len(stored_bytes(done.result.storage_key)) < 1024


def test_hls_playlist_named_mp4_is_not_a_video(member, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    playlist = f"#EXTM3U\n#EXTINF:10,\nfile://{secret}\n#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data\n#EXT-X-ENDLIST\n"
    # The type comes from the bytes (text), so no video converter is even offered.
    response = start_job(member.client(), playlist.encode(), "movie.mp4", "webm", status=422)
    body = assert_error(response, 422, "UNSUPPORTED_CONVERSION")
    assert body["details"]["source_format"] == "text"


@pytest.mark.skipif(not samples.HAS_FFMPEG, reason="ffmpeg is not installed")
def test_hls_playlist_smuggled_as_mp4_job_fails_without_reading_links(member, tmp_path):
    """Even if a job names mp4 for a playlist, ffmpeg's demuxer is pinned and protocols limited."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    playlist = f"#EXTM3U\n#EXTINF:10,\nfile://{secret}\n#EXT-X-ENDLIST\n".encode()
    uploaded = upload_file(member.client(), samples.image_bytes("png"), filename="a.png")
    stored = StoredFile.objects.get(pk=uploaded["id"])
    Path(__import__("fileconvert.storage", fromlist=["x"]).local_path(stored.storage_key)).write_bytes(playlist)
    StoredFile.objects.filter(pk=stored.pk).update(size=len(playlist), sha256="")
    job = ConversionJob.objects.create(
        organization=member.org, source=stored, source_format="mp4", target_format="webm", options={}, created_by=member.user
    )
    assert_failed_cleanly(run(job.pk), "UNREADABLE_CONTENT")


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        _Recorder.hits.append(self.path)
        body = io.BytesIO()
        Image.new("RGB", (8, 8), (255, 0, 0)).save(body, "PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(body.getvalue())

    def log_message(self, *_args):
        pass


@pytest.mark.slow
@pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")
def test_docx_with_external_image_link_is_not_fetched(member, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits = []
    try:
        url = f"http://127.0.0.1:{server.server_port}/tracker.png"
        job = start_job(member.client(), samples.docx_with_external_image(url), "report.docx", "pdf")
        done = run(job["id"])
    finally:
        server.shutdown()
    assert _Recorder.hits == [], "LibreOffice fetched the external image"
    assert done.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), done.status
    if done.status == JobStatus.SUCCEEDED:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(stored_bytes(done.result.storage_key)))
        assert "External image inside" in reader.pages[0].extract_text()
        assert all(not page.images for page in reader.pages)


@pytest.mark.slow
@pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")
def test_docx_linking_a_local_file_does_not_embed_it(member, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(secret, "PNG")
    job = start_job(member.client(), samples.docx_with_external_image(secret.as_uri()), "report.docx", "pdf")
    done = run(job["id"])
    if done.status == JobStatus.SUCCEEDED:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(stored_bytes(done.result.storage_key)))
        assert all(not page.images for page in reader.pages), "a local file was embedded"


@pytest.mark.slow
@pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")
def test_html_to_pdf_loads_nothing_the_page_names(member, tmp_path):
    """Every way an HTML page can make a layout engine load something: a tracker on the web,
    a local image by absolute and by relative path (another tenant's stored image would be
    one), a local text file in a frame, an object or a style sheet. The PDF holds the text,
    the data: image the page carries, and nothing else."""
    import base64

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits = []
    secret_image, secret_text = tmp_path / "secret.png", tmp_path / "secret.txt"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(secret_image, "PNG")
    secret_text.write_text("TOP-SECRET-CONTENT\n")
    climb = "../" * 30 + str(secret_image).lstrip("/")  # relative to wherever the page is laid out
    carried = io.BytesIO()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(carried, "PNG")
    url = f"http://127.0.0.1:{server.server_port}"
    # LibreOffice reads a data: image by its bytes: an SVG naming the secret, a PDF with actions.
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="60" height="60"><image width="50" height="50" href="{secret_image.as_uri()}"/></svg>'.encode()
    active = samples.pdf_with_actions()
    page = f"""<!DOCTYPE html><html><head><title>Hostile page</title>
<link rel="stylesheet" href="{url}/style.css"><link rel="stylesheet" href="{secret_text.as_uri()}">
<style>@import url("{url}/import.css"); body {{ background: url("{url}/bg.png"); }}</style>
<base href="{url}/"><meta http-equiv="refresh" content="0; url={secret_text.as_uri()}"></head>
<body background="{secret_image.as_uri()}"><h1>Visible heading</h1>
<p style="background-image: url('{url}/p.png')">Visible text.</p>
<img src="{url}/tracker.png"><img src="{secret_image.as_uri()}"><img src="{climb}"><img src="secret.png">
<img srcset="{secret_image.as_uri()} 2x" src="data:image/png;base64,{base64.b64encode(carried.getvalue()).decode()}">
<img src="data:image/png;base64,{base64.b64encode(svg).decode()}"><img src="data:image/png;base64,{base64.b64encode(active).decode()}">
<iframe src="{secret_text.as_uri()}"></iframe><object data="{secret_text.as_uri()}"></object>
<embed src="{secret_image.as_uri()}"><svg><image href="{secret_image.as_uri()}"/></svg>
<table background="{url}/table.png"><tr><td>Cell</td></tr></table></body></html>"""
    try:
        job = start_job(member.client(), page.encode(), "page.html", "pdf")
        done = run(job["id"])
    finally:
        server.shutdown()
    assert done.status == JobStatus.SUCCEEDED, (done.error_code, done.error_message)
    assert _Recorder.hits == [], "the layout fetched from the network"
    from pypdf import PdfReader

    pdf = stored_bytes(done.result.storage_key)
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(p.extract_text() for p in reader.pages)
    assert "Visible heading" in text and "Visible text." in text and "Cell" in text
    assert "TOP-SECRET" not in text and b"TOP-SECRET" not in pdf
    images = [image for p in reader.pages for image in p.images]
    assert len(images) == 1, "only the page's own data: image"
    assert images[0].image.convert("RGB").getpixel((5, 5)) == (255, 0, 0) and images[0].image.size == (40, 30)
    assert reader.metadata.title == "Hostile page"
    assert all(not p.get("/Annots") for p in reader.pages) and b"ACTION-MARKER" not in pdf


@pytest.mark.slow
@pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")
def test_a_pdf_inside_a_docx_brings_no_scripts_into_the_converted_pdf(member):
    """LibreOffice reads a picture by its bytes: a PDF stored as a DOCX's image1.png is laid
    out as a PDF, and its link annotations (JavaScript, Launch, a file: URI...) came through
    into the output as they were. The converted PDF keeps only jumps and web links."""
    from pypdf import PdfReader

    docx = samples.docx_with_embedded_image_bytes(samples.pdf_with_actions())
    done = run(start_job(member.client(), docx, "report.docx", "pdf")["id"])
    assert done.status == JobStatus.SUCCEEDED, (done.error_code, done.error_message)
    pdf = stored_bytes(done.result.storage_key)
    reader = PdfReader(io.BytesIO(pdf))
    assert "Text before the picture" in reader.pages[0].extract_text()
    actions = []
    for page in reader.pages:
        assert "/AA" not in page
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            assert "/AA" not in annot and annot.get("/Subtype") == "/Link"
            if "/A" in annot:
                actions.append((annot["/A"].get("/S"), annot["/A"].get("/URI")))
    assert sorted(actions) == [("/URI", "https://example.com/kept"), ("/URI", "https://example.com/safe")]
    for marker in (b"ACTION-MARKER", b"cmd.exe", b"file:///etc/passwd", b"SubmitForm", b"GoToR"):
        assert marker not in pdf, marker
    assert done.facts["active_content_removed"] >= 5


@pytest.mark.slow
@pytest.mark.skipif(not samples.HAS_SOFFICE, reason="LibreOffice is not installed")
def test_an_svg_picture_in_a_docx_draws_no_local_file(member, tmp_path):
    """LibreOffice lays out an SVG picture with what it names: <image href="file:///…"> drew
    a local image (another tenant's, had its path been known) into the PDF. The SVG is kept
    (its own shapes are drawn) but names nothing outside itself."""
    import pypdfium2
    from pypdf import PdfReader

    secret = tmp_path / "secret.png"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(secret, "PNG")
    svg = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' width="200" height="200"><rect width="200" height="100" fill="#ff0000"/>'
        f'<image y="100" width="100" height="100" href="{secret.as_uri()}"/>'
        f'<image x="100" y="100" width="100" height="100" xlink:href="{secret.as_uri()}"/></svg>'
    ).encode()
    done = run(start_job(member.client(), samples.docx_with_embedded_image_bytes(svg), "report.docx", "pdf")["id"])
    assert done.status == JobStatus.SUCCEEDED, (done.error_code, done.error_message)
    pdf = stored_bytes(done.result.storage_key)
    assert all(not page.images for page in PdfReader(io.BytesIO(pdf)).pages), "a local file was drawn"
    page = pypdfium2.PdfDocument(pdf)[0].render(scale=1).to_pil().convert("RGB")
    colours = {rgb: n for n, rgb in page.getcolors(1 << 20)}
    assert sum(n for rgb, n in colours.items() if rgb[0] > 200 and rgb[1] < 60) > 100  # the SVG's own red
    assert (1, 2, 3) not in colours


def test_corrupt_xlsx_fails_job(member):
    job = start_job(member.client(), b"PK\x03\x04" + b"\0" * 200, "sheet.xlsx", "csv", status=422)
    # Not a readable ZIP: sniffed as zip, which converts to nothing.
    assert assert_error(job, 422, "UNSUPPORTED_CONVERSION")["details"]["source_format"] in ("zip", "binary")


@pytest.mark.parametrize("plant", ["symlink", "hardlink"])
def test_an_output_that_is_a_link_fails_the_job_once_and_publishes_nothing(member, tmp_path, monkeypatch, plant):
    # A compromised converter leaves a link to a file it could read (another tenant's bytes,
    # a secret) where its output should be: refused, and not retried (it is no transient fault).
    from conversions.converters.images import ImageConverter

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0")

    def plant_link(self, src, source, dst, target, options, ctx):
        if plant == "symlink":
            dst.symlink_to(secret)
        else:
            import os

            os.link(secret, dst)
        return {}

    monkeypatch.setattr(ImageConverter, "convert", plant_link)
    job = run(start_job(member.client(), samples.image_bytes("png"), "a.png", "webp")["id"])
    assert_failed_cleanly(job, "UNSAFE_OUTPUT")
    assert job.attempts == 1
    assert secret.read_bytes() == b"root:x:0:0"


def test_a_thumbnail_that_is_a_link_is_dropped_and_the_file_still_processes(member, tmp_path, monkeypatch):
    from uploads import processing

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0")
    real_inspect = processing.inspect

    def inspect_then_plant(path, kind, thumb_path, size):
        summary = real_inspect(path, kind, thumb_path, size)
        thumb_path.unlink(missing_ok=True)
        thumb_path.symlink_to(secret)
        return summary

    monkeypatch.setattr(processing, "inspect", inspect_then_plant)
    created = upload_file(member.client(), samples.image_bytes("png"), filename="a.png")
    assert processing.file_process(file_id=created["id"]) in ("active", "staged")
    stored = StoredFile.objects.get(pk=created["id"])
    assert stored.thumbnail_key == "" and stored.metadata.get("width") is not None
