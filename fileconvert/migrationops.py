"""Migration operations of our own (decision 0014).

``DropPatternIndex``: on PostgreSQL, Django gives every indexed or unique ``varchar``
column a second index, ``<name>_like`` with ``varchar_pattern_ops``, so that
``LIKE 'prefix%'`` can use an index outside the C locale. Our ids and storage keys are
never searched by prefix, and on the tables every job and every file writes several
times (jobs, files, audit events) each extra index is one more entry written by every
INSERT and by every UPDATE that changes an indexed column. Foreign keys get no such
twin when their index is declared in ``Meta.indexes`` instead of ``db_index``; a primary
key or a ``unique=True`` field cannot avoid it, and this operation drops it.

Django recreates the index if a later migration alters the field so that it is indexed
anew (a changed ``max_length`` of a primary key, say): such a migration adds this
operation again after it. ``tests/test_indexes.py`` fails if one is left.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation


class DropPatternIndex(Operation):
    """Drop the ``_like`` (``varchar_pattern_ops``) index PostgreSQL's schema editor
    made for ``model_name.field_name``; recreate it when migrating backwards. A no-op on
    other databases, which never had one."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, field_name: str) -> None:
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return self.__class__.__qualname__, [], {"model_name": self.model_name, "field_name": self.field_name}

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass  # the models do not change: only an index Django does not track

    def _model_field(self, app_label: str, state: Any) -> tuple[Any, Any]:
        model = state.apps.get_model(app_label, self.model_name)
        return model, model._meta.get_field(self.field_name)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model, field = self._model_field(app_label, to_state)
        name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
        schema_editor.execute(schema_editor._delete_index_sql(model, name))  # DROP INDEX IF EXISTS

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model, field = self._model_field(app_label, to_state)
        statement = schema_editor._create_like_index_sql(model, field)
        if statement is not None:
            schema_editor.execute(statement)

    def describe(self) -> str:
        return f"Drop the varchar_pattern_ops index of {self.model_name}.{self.field_name} (PostgreSQL)"

    @property
    def migration_name_fragment(self) -> str:
        return f"drop_{self.model_name.lower()}_{self.field_name.lower()}_like"
