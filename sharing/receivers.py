"""Share links follow the file's lifecycle (signals from ``uploads.signals``, sent on commit)."""

from __future__ import annotations

from typing import Any

from sharing.services import links_revoke


def on_file_withdrawn(*, file_id: str, **_: Any) -> None:
    links_revoke(file_id=file_id, reason="withdrawn")


def on_file_content_changed(*, file_id: str, **_: Any) -> None:
    # A link shares the content it was made for; ``?dl=`` tokens stop by their SHA-256 binding.
    links_revoke(file_id=file_id, reason="content_changed")


def on_file_visibility_changed(*, file_id: str, visibility: str, **_: Any) -> None:
    links_revoke(file_id=file_id, reason="private" if visibility == "private" else "narrowed", wider_than=visibility)
