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
