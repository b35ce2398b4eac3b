"""The admin's substring search on file names can use the trigram index on PostgreSQL."""

import pytest
from django.db import connection

from uploads.models import StoredFile

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's")
def test_icontains_on_name_can_use_the_trigram_index(org_a):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'file_name_trgm_idx'")
        row = cursor.fetchone()
    assert row and "gin_trgm_ops" in row[0]
    query = StoredFile.objects.filter(name__icontains="document-0420").values("pk")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "file_name_trgm_idx" in plan, plan
