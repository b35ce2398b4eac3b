from __future__ import annotations

from typing import Any

from django.apps import AppConfig

from fileconvert import broker


def _enqueue_index(sender: Any, *, file_id: str, **_kwargs: Any) -> None:
    from search.tasks import index_file

    broker.publish(index_file, file_id)


def _enqueue_remove(sender: Any, *, file_id: str, **_kwargs: Any) -> None:
    from search.tasks import remove_file

    broker.publish(remove_file, file_id)


class SearchConfig(AppConfig):
    name = "search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The signals are sent after commit (uploads/signals.py): the task sees the new state.
        from uploads.signals import file_activated, file_content_changed, file_withdrawn

        file_activated.connect(_enqueue_index, dispatch_uid="search.index_on_activated")
        file_content_changed.connect(_enqueue_index, dispatch_uid="search.index_on_content_changed")
        file_withdrawn.connect(_enqueue_remove, dispatch_uid="search.remove_on_withdrawn")
