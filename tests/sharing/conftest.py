"""Fixtures of the sharing tests: stored files with real bytes (made by Pillow, pypdf …)
written through ``fileconvert.storage`` to local disk or, with ``s3_storage``, to moto."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from django.utils import timezone

from fileconvert import storage
from tests.s3 import moto_server, s3_storage  # noqa: F401
from uploads.models import FileStatus, ReviewState, StoredFile, Visibility
from uploads.services import storage_key_for

FileMaker = Callable[..., StoredFile]


@pytest.fixture
def make_file(db) -> FileMaker:
    def make(
        org,
        data: bytes,
        *,
        name: str = "file.bin",
        content_type: str = "application/octet-stream",
        status: str = FileStatus.ACTIVE,
        review_state: str = ReviewState.NOT_REQUIRED,
        visibility: str = Visibility.PRIVATE,
        confirmed: bool = True,
    ) -> StoredFile:
        stored = StoredFile(
            organization=org,
            name=name,
            content_type=content_type,
            status=status,
            review_state=review_state,
            visibility=visibility,
        )
        stored.storage_key = storage_key_for(org.pk, stored.pk, name)
        if confirmed:
            storage.save_bytes(stored.storage_key, data, content_type)
            stored.size = len(data)
            stored.sha256 = hashlib.sha256(data).hexdigest()
            stored.confirmed_at = timezone.now().replace(microsecond=0)
        stored.save()
        return stored

    return make
