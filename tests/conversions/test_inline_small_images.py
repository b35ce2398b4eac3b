"""Small raster jobs run without the fork only when bounded before decoding
(conversions.engine.INLINE_*); everything else still goes through the sandbox."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from conversions import engine
from conversions.models import JobStatus
from fileconvert import sandbox
from tests.conversions import samples
from tests.conversions.test_hostile import assert_failed_cleanly, run, start_job

pytestmark = pytest.mark.django_db


def png(size: tuple[int, int], frames: int = 1) -> bytes:
    out = io.BytesIO()
    images = [Image.new("RGB", size, (10 * i, 40, 40)) for i in range(frames)]
    images[0].save(out, "PNG", save_all=frames > 1, append_images=images[1:])
    return out.getvalue()


@pytest.fixture
def forks(monkeypatch):
    calls = []
    real = sandbox.run_forked

    def counting(*args, **kwargs):
        calls.append(kwargs.get("memory_bytes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox, "run_forked", counting)
    return calls


def test_tiny_png_to_jpeg_runs_inline(member, forks):
    job = run(start_job(member.client(), png((32, 32)), "tiny.png", "jpeg")["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert forks == [] and job.facts == {"width": 32, "height": 32, "frames": 1}


@pytest.mark.parametrize(
    ("body", "target", "options"),
    [
        (png((2000, 1000)), "jpeg", None),  # more pixels than INLINE_MAX_PIXELS (the file is small)
        (png((32, 32)), "jpeg", '{"width": 5000}'),  # the output box would be large
        (png((32, 32), frames=3), "png", None),  # animation: one frame only inline
        (png((32, 32)), "tiff", None),  # target outside the inline formats
        (samples.pixel_flood_png(30000), "webp", None),  # a bomb header: the sandbox reports it
    ],
)
def test_unbounded_jobs_still_fork(member, forks, body, target, options):
    form = {"target_format": target} | ({"options": options} if options else {})
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import data_of

    response = member.client().post("/api/convert", {"file": SimpleUploadedFile("in.png", body), **form}, format="multipart")
    run(data_of(response, 202)["id"])
    assert len(forks) == 1


def test_replaced_converter_forks(member, forks, monkeypatch):
    """The bound is argued on the real converter's code: anything else gets the sandbox."""
    from conversions.converters.images import ImageConverter

    real = ImageConverter.convert
    monkeypatch.setattr(ImageConverter, "convert", lambda self, *args: real(self, *args))
    job = run(start_job(member.client(), png((32, 32)), "tiny.png", "jpeg")["id"])
    assert job.status == JobStatus.SUCCEEDED and len(forks) == 1


def test_large_file_forks(member, forks, monkeypatch):
    monkeypatch.setattr(engine, "INLINE_MAX_BYTES", 64)
    job = run(start_job(member.client(), png((32, 32)), "tiny.png", "jpeg")["id"])
    assert job.status == JobStatus.SUCCEEDED and len(forks) == 1


def test_inline_failure_is_reported_like_the_sandbox(member, forks, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr("conversions.converters.images.prepare_frame", broken)
    job = run(start_job(member.client(), png((32, 32)), "tiny.png", "jpeg")["id"])
    assert forks == []
    assert_failed_cleanly(job, "CONVERSION_FAILED")
    assert "decoder exploded" in job.error_message


# --- Baseline JPEGs bounded by their draft-mode decode (thumbnails) ---------------------------


def camera_jpeg(size: tuple[int, int] = (3000, 2000), *, progressive: bool = False, orientation: int | None = None) -> bytes:
    """A noisy photo-like JPEG (so it is not tiny): upscaled noise, as bench/convert_images.py makes."""
    small = Image.merge("RGB", [Image.effect_noise((size[0] // 8, size[1] // 8), 60) for _ in range(3)])
    photo = small.resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    photo.save(out, "JPEG", quality=90, progressive=progressive, exif=exif.tobytes())
    return out.getvalue()


def convert_with(member, body: bytes, target: str, options: str | None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import data_of

    form = {"target_format": target} | ({"options": options} if options else {})
    response = member.client().post("/api/convert", {"file": SimpleUploadedFile("in.jpg", body), **form}, format="multipart")
    return run(data_of(response, 202)["id"])


def test_camera_jpeg_thumbnail_runs_inline_at_draft_scale(member, forks):
    body = camera_jpeg()
    assert engine.INLINE_MAX_BYTES < len(body) <= engine.INLINE_JPEG_MAX_BYTES  # over the small-file bound
    job = convert_with(member, body, "jpeg", '{"width": 1024}')
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert forks == []
    assert (job.facts["width"], job.facts["height"]) == (1024, 683)
    from fileconvert import storage

    with storage.open_reader(job.result.storage_key) as fh, Image.open(fh) as out:
        assert out.format == "JPEG" and out.size == (1024, 683)


def test_rotated_camera_jpeg_is_bounded_on_its_upright_box(member, forks):
    job = convert_with(member, camera_jpeg(orientation=6), "webp", '{"width": 512}')
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert forks == []
    assert (job.facts["width"], job.facts["height"]) == (512, 768)  # 2000x3000 upright


@pytest.mark.parametrize(
    ("body_args", "options", "why"),
    [
        ({"progressive": True}, '{"width": 1024}', "progressive: one decoding pass per scan"),
        ({}, '{"width": 2000}', "draft cannot reduce: 3000x2000 decoded in full"),
        ({}, None, "no resize: decoded in full"),
        ({"size": (4000, 3000)}, '{"width": 1800}', "output 1800x1350 and a 2000x1500 decode: over 2 MP"),
    ],
)
def test_jpegs_whose_decode_is_not_bounded_still_fork(member, forks, body_args, options, why):
    job = convert_with(member, camera_jpeg(**body_args), "jpeg", options)
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert len(forks) == 1, why


def test_jpeg_over_the_byte_bound_forks(member, forks, monkeypatch):
    monkeypatch.setattr(engine, "INLINE_JPEG_MAX_BYTES", 100_000)
    job = convert_with(member, camera_jpeg(), "jpeg", '{"width": 1024}')
    assert job.status == JobStatus.SUCCEEDED and len(forks) == 1
