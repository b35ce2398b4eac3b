"""The admin's substring search on file names can use the trigram index on PostgreSQL."""

import pytest
from django.db import connection

from tests.plans import plan_of
from uploads.models import StoredFile

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's")
def test_icontains_on_name_can_use_the_trigram_index(org_a):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'file_name_trgm_idx'")
        row = cursor.fetchone()
    assert row and "gin_trgm_ops" in row[0]
    plan = plan_of(StoredFile.objects.filter(name__icontains="document-0420").values("pk"))
    assert "file_name_trgm_idx" in plan, plan
