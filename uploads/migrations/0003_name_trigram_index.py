"""A trigram index for substring search on file names (the admin's "search by filename",
``name__icontains`` → ``UPPER(name::text) LIKE UPPER('%…%')``), PostgreSQL only.

pg_trgm ships with PostgreSQL but creating an extension needs the privilege to; where the
database user lacks it, the index is skipped with a warning and search still works, by a
scan. SQLite has no equivalent and gets nothing.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

INDEX = "file_name_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        logger.warning("pg_trgm is not available: file name search will scan (no %s)", INDEX)
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON uploads_storedfile USING gin ((UPPER(name::text)) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("uploads", "0002_review_fields")]

    operations = [migrations.RunPython(create, drop)]
