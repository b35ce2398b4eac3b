"""Staged files for the review tests: real files uploaded through the real API and
processed by the real pipeline (``uploads.processing.file_process``), so each has its
detected type, SHA-256, metadata and thumbnail exactly as in production."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pypdf import PdfWriter
from rest_framework.test import APIClient

from accounts import services as account_services
from tests.conftest import PASSWORD, Persona, data_of
from uploads.models import FileStatus, ReviewState, StoredFile
from uploads.processing import file_process


def png(color=(200, 40, 40), size=(64, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=300, height=400)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A real PCM WAV (stdlib ``wave``): a 440 Hz tone."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return out.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def upload_staged(persona: Persona, name: str = "photo.png", data: bytes | None = None, dataset: str = "") -> StoredFile:
    """Upload through ``POST /upload`` and run the real processing: a staged, pending file."""
    fields: dict = {
        "files": [SimpleUploadedFile(name, data if data is not None else png(), content_type="application/octet-stream")]
    }
    if dataset:
        fields["project"] = dataset
    body = data_of(persona.client().post("/upload", fields, format="multipart"), 201)
    file_id = body["tasks"][0]["file_id"]
    assert file_process(file_id=file_id) == "staged"
    stored = StoredFile.objects.select_related("dataset").get(pk=file_id)
    assert stored.status == FileStatus.STAGED and stored.review_state == ReviewState.PENDING
    assert stored.review_expires_at is not None
    return stored


def bearer_client(persona: Persona) -> APIClient:
    _token, raw = account_services.user_token_create(email=persona.user.email, password=PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def staged(member) -> StoredFile:
    return upload_staged(member, "photo.png", png(), dataset="AP Invoices 2025")


@pytest.fixture
def staged_b(outsider) -> StoredFile:
    return upload_staged(outsider, "other.png", png(color=(10, 200, 10)))
