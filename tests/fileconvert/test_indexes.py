"""The hot tables' indexes (decision 0014): no varchar_pattern_ops twins, every foreign key
still indexed, and the processing sweeper's index partial."""

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.state import ProjectState

from accounts.models import AuditEvent
from conversions.models import ConversionJob
from fileconvert.migrationops import DropPatternIndex
from uploads.models import FileStatus, StoredFile

pytestmark = pytest.mark.django_db

HOT = (ConversionJob, StoredFile, AuditEvent)
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="varchar_pattern_ops: PostgreSQL")


def _indexdefs(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@postgresql_only
@pytest.mark.parametrize("model", HOT, ids=lambda m: m.__name__)
def test_a_hot_table_has_no_pattern_ops_index(model):
    defs = _indexdefs(model._meta.db_table)
    assert defs, "the table has indexes"
    assert [name for name, definition in defs.items() if "pattern_ops" in definition] == []


@pytest.mark.parametrize("model", HOT, ids=lambda m: m.__name__)
def test_every_foreign_key_of_a_hot_table_leads_an_index(model):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    leading = {c["columns"][0] for c in constraints.values() if c["index"] and c["columns"]}
    foreign = [f.column for f in model._meta.concrete_fields if f.is_relation]
    assert foreign, "the model has foreign keys"
    # A delete of the referenced row (cascade, set null) looks the referencing rows up by it.
    assert [column for column in foreign if column not in leading] == []


@postgresql_only
def test_the_processing_sweepers_query_uses_the_partial_index():
    assert "WHERE" in _indexdefs(StoredFile._meta.db_table)["file_processing_idx"]
    query = StoredFile.objects.filter(status=FileStatus.PROCESSING).order_by("process_enqueued_at").values("pk")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "file_processing_idx" in plan, plan


@postgresql_only
def test_drop_pattern_index_drops_and_recreates_the_twin():
    operation = DropPatternIndex(model_name="conversionjob", field_name="id")
    state = ProjectState.from_apps(apps)
    table = ConversionJob._meta.db_table
    with connection.schema_editor(atomic=False) as editor:
        operation.database_backwards("conversions", editor, state, state)
    twins = [name for name, definition in _indexdefs(table).items() if "varchar_pattern_ops" in definition]
    assert len(twins) == 1 and twins[0].endswith("_like")
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("conversions", editor, state, state)
        operation.database_forwards("conversions", editor, state, state)  # IF EXISTS: a second run is harmless
    assert [name for name, definition in _indexdefs(table).items() if "varchar_pattern_ops" in definition] == []
    assert operation.describe().startswith("Drop the varchar_pattern_ops index of conversionjob.id")
