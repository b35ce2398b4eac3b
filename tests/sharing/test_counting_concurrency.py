"""Link downloads counted from many threads at once lose no increment (an F() UPDATE, not a
read-modify-write). Needs real concurrent connections: PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from accounts.models import AuditEvent
from sharing.models import ShareLink
from sharing.services import share_create, share_download_record
from tests.conftest import make_persona
from tests.factories import OrganizationFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"),
]
THREADS, EACH = 8, 25


def test_concurrent_downloads_are_all_counted(make_file):
    from accounts.identity import Identity

    owner = make_persona(OrganizationFactory(name="Counting"), "owner")
    stored = make_file(owner.org, b"counted bytes")
    actor = Identity(org=owner.org, user=owner.user, role="owner", mode="api_key", scopes=frozenset({"upload.edit"}))
    link = share_create(actor=actor, file=stored, visibility="org").link
    assert link is not None
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            start.wait()
            for _ in range(EACH):
                share_download_record(link=link, actor=None, ranged=False)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hammer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ShareLink.objects.get(pk=link.pk).download_count == THREADS * EACH
    assert AuditEvent.objects.filter(action="share.download", target_id=link.pk).count() == THREADS * EACH
