"""Lifecycle signals of a stored file, for apps that react to it without uploads knowing them.

Every signal is sent *after the transaction commits* (``send_on_commit``), with
``file_id`` (and ``organization_id``) as keyword arguments, so a receiver may enqueue a
Celery task or touch other tables without seeing a state that could still roll back.

- ``file_activated``: the file became ``active`` (processed with no review required, or
  approved by a platform admin). Search indexes it.
- ``file_withdrawn``: the file left the searchable/shareable set (rejected, or about to be
  deleted; sent before the rows are gone is not guaranteed: receivers must tolerate a
  missing row). Search drops it; sharing revokes its links.
- ``file_content_changed``: the bytes of an existing file were replaced (metadata edit);
  signed links bound to the old content stop working, search re-indexes it.
- ``file_visibility_changed``: the file's visibility changed (``visibility`` is the new
  one); sharing ends the links wider than it (private ends them all).
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

file_activated = Signal()
file_withdrawn = Signal()
file_content_changed = Signal()
file_visibility_changed = Signal()


def send_on_commit(signal: Signal, *, file_id: str, organization_id: str, **extra: object) -> None:
    transaction.on_commit(lambda: signal.send_robust(sender="uploads", file_id=file_id, organization_id=organization_id, **extra))
