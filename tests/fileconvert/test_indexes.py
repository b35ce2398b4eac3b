"""The hot tables' indexes (decision 0014): no varchar_pattern_ops twins, every foreign key
still indexed, and the status index partial (files not active)."""

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.state import ProjectState

from accounts.models import AuditEvent
from conversions.models import ConversionJob
from fileconvert.migrationops import DropPatternIndex
from tests.plans import plan_of
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
@pytest.mark.parametrize("status", [FileStatus.PROCESSING, FileStatus.FAILED, FileStatus.PENDING])
def test_queries_on_a_status_other_than_active_use_the_partial_index(status):
    # The processing sweeper (processing, oldest message first) and the admin's status
    # filter across organizations; the index holds no active file.
    assert "WHERE" in _indexdefs(StoredFile._meta.db_table)["file_not_active_idx"]
    assert "file_not_active_idx" in plan_of(StoredFile.objects.filter(status=status).order_by("process_enqueued_at").values("pk"))


@postgresql_only
def test_drop_pattern_index_drops_and_recreates_the_twin():
    operation = DropPatternIndex(model_name="conversionjob", field_name="id")
    state = ProjectState.from_apps(apps)
    table = ConversionJob._meta.db_table

    def twins() -> list[str]:
        return sorted(name for name, definition in _indexdefs(table).items() if "pattern_ops" in definition)

    with connection.schema_editor(atomic=False) as editor:
        operation.database_backwards("conversions", editor, state, state)
        operation.database_backwards("conversions", editor, state, state)  # one twin, not two
    assert len(twins()) == 1 and twins()[0].endswith("_like")
    with connection.cursor() as cursor:  # a twin under another name (a renamed table keeps its index names)
        cursor.execute(f"CREATE INDEX renamed_twin ON {table} (id varchar_pattern_ops)")
        cursor.execute(f"CREATE INDEX composite_kept ON {table} (id varchar_pattern_ops, status)")
    assert len(twins()) == 3
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("conversions", editor, state, state)
        operation.database_forwards("conversions", editor, state, state)  # a second run finds none
    assert twins() == ["composite_kept"]  # only the column's own twins go
    assert operation.describe().startswith("Drop the varchar_pattern_ops index of conversionjob.id")
