"""Migration operations of our own (decision 0014).

``DropPatternIndex``: on PostgreSQL, Django gives every indexed or unique ``varchar``
column a second index, ``<name>_like`` with ``varchar_pattern_ops``, so that
``LIKE 'prefix%'`` can use an index outside the C locale. Our ids and storage keys are
never searched by prefix, and on the tables every job and every file writes several
times (jobs, files, audit events) each extra index is one more entry written by every
INSERT and by every UPDATE that changes an indexed column. Foreign keys get no such
twin when their index is declared in ``Meta.indexes`` instead of ``db_index``; a primary
key or a ``unique=True`` field cannot avoid it, and this operation drops it.

Django makes the index again when a later migration indexes the field anew (``unique``
turned off and on again, or a change to ``text``): such a migration adds this operation
again after it. ``tests/fileconvert/test_indexes.py`` fails if one is left on a hot table.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.migrations.operations.base import Operation


class DropPatternIndex(Operation):
    """Drop the ``varchar_pattern_ops``/``text_pattern_ops`` index on ``model_name.field_name``
    (PostgreSQL), whatever its name (a renamed table or field keeps the old one); recreate
    Django's when migrating backwards if there is none. A no-op on other databases, which
    never had one."""

    reversible = True
    reduces_to_sql = False  # it reads the catalog to find the index

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

    @staticmethod
    def _pattern_indexes(schema_editor: Any, table: str, column: str) -> list[str]:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(%s)", [column])
            (quoted,) = cursor.fetchone()
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s", [table]
            )
            rows = cursor.fetchall()
        single = re.compile(r"USING btree \(" + re.escape(quoted) + r" (varchar|text)_pattern_ops\)$")
        return [name for name, definition in rows if single.search(definition)]

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model, field = self._model_field(app_label, to_state)
        for name in self._pattern_indexes(schema_editor, model._meta.db_table, field.column):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))  # DROP INDEX IF EXISTS

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model, field = self._model_field(app_label, to_state)
        if self._pattern_indexes(schema_editor, model._meta.db_table, field.column):
            return
        statement = schema_editor._create_like_index_sql(model, field)
        if statement is not None:
            schema_editor.execute(statement)

    def describe(self) -> str:
        return f"Drop the varchar_pattern_ops index of {self.model_name}.{self.field_name} (PostgreSQL)"

    @property
    def migration_name_fragment(self) -> str:
        return f"drop_{self.model_name.lower()}_{self.field_name.lower()}_like"
