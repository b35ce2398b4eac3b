"""Extraction reads the bytes through fileconvert.storage: here from a real S3 API (moto's server)."""

from __future__ import annotations

import pytest

from search.models import SearchDocument
from tests.conftest import data_of
from tests.search import documents as d

pytestmark = pytest.mark.django_db


def test_pdf_stored_in_s3_is_extracted_and_found(member, no_review, put, s3_storage):
    stored = put(member, "s3-report.pdf", d.pdf_with_text(["The okapi census, stored in a bucket."]))
    assert s3_storage.head(stored.storage_key) is not None  # the bytes are in S3, not on disk
    document = SearchDocument.objects.get(file=stored)
    assert document.error_code == "" and "okapi" in document.body
    items = data_of(member.client().get("/api/search", {"q": "okapi census"}))["items"]
    assert [hit["id"] for hit in items] == [stored.pk]


def test_missing_object_indexes_the_name_only(member, no_review, put, s3_storage):
    from search.services import document_index

    stored = put(member, "vanished-okapi.txt", b"the okapi text\n")
    s3_storage.client.delete_object(Bucket=s3_storage.bucket, Key=stored.storage_key)
    assert document_index(file_id=stored.pk) == "indexed_name_only:MISSING_BYTES"
    assert SearchDocument.objects.get(file=stored).body == ""
