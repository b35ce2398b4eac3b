"""The whole path through a real Celery worker: upload API -> on_commit -> broker ->
processing task -> file_activated (on commit) -> index task -> GET /api/search."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import data_of
from tests.search.conftest import set_review
from tests.uploads.filebytes import upload_file
from tests.uploads.test_worker_pipeline import _wait_for, celery_worker_thread  # noqa: F401 - the fixture


@pytest.mark.django_db(transaction=True)
def test_uploaded_text_is_found_after_a_real_worker_indexed_it(owner, celery_worker_thread):  # noqa: F811
    set_review(owner.org, False)
    client = owner.client()
    uploaded = upload_file(client, b"Field report: a colony of puffins nests on the cliff.\n", filename="report.txt")

    def found() -> list[dict] | None:
        items = data_of(client.get("/api/search", {"q": "puffins"}))["items"]
        return items or None

    items = _wait_for(found, timeout=60)

    assert items, "the file never showed up in search"
    assert [hit["id"] for hit in items] == [uploaded["id"]]
    assert "<mark>puffins</mark>" in items[0]["snippet"]
    ran = {(name, args): thread for name, args, thread in celery_worker_thread}
    assert ("uploads.tasks.process_file", (uploaded["id"],)) in ran
    index_thread = ran[("search.tasks.index_file", (uploaded["id"],))]
    assert index_thread != threading.current_thread().name  # indexed by the worker, not inline
