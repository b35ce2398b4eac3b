"""Fixtures for the metadata tests: files made from real bytes, uploaded and processed
through the real API and pipeline."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from uploads.models import StoredFile
from uploads.processing import file_process


def upload(persona, body: bytes, name: str, *, may_fail: bool = False) -> StoredFile:
    response = persona.client().post("/api/files", {"file": SimpleUploadedFile(name, body)}, format="multipart")
    assert response.status_code == 201, response.content
    file_id = response.json()["data"]["id"]
    outcome = file_process(file_id=file_id)
    assert outcome in ("active", "staged", *(("failed",) if may_fail else ())), StoredFile.objects.get(pk=file_id).error_message
    return StoredFile.objects.get(pk=file_id)


@pytest.fixture
def stored_file():
    """``stored_file(persona, body, name)`` → a processed StoredFile holding ``body``."""
    return upload
