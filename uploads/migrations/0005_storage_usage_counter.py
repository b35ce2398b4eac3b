"""The storage usage counter (accounts.StorageUsage) kept by the database: triggers on
uploads_storedfile add and subtract the bytes and the count of confirmed files, and the
counter starts from the sum of what is stored now. Written out here (not generated from
code) so the migration stays what it was when it ran.

PostgreSQL: statement-level triggers with transition tables, so a statement touching
10,000 files updates each organization's row once (a row-level trigger would update the
same row 10,000 times in one transaction). SQLite has no statement-level triggers: row
level, which is cheap there (one process writes at a time, rows are updated in place).
The trigger creation locks the table against writes until this migration commits, so
nothing is written between the triggers and the backfill."""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE FUNCTION fileconvert_storedfile_usage() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO accounts_storageusage AS u (organization_id, bytes, files)
            SELECT organization_id, SUM(COALESCE(size, 0)), COUNT(*) FROM new_rows
            WHERE confirmed_at IS NOT NULL GROUP BY organization_id
            ON CONFLICT (organization_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes, files = u.files + EXCLUDED.files;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE accounts_storageusage u SET bytes = u.bytes - d.b, files = u.files - d.n
            FROM (SELECT organization_id, SUM(COALESCE(size, 0)) AS b, COUNT(*) AS n FROM old_rows
                  WHERE confirmed_at IS NOT NULL GROUP BY organization_id) d
            WHERE u.organization_id = d.organization_id;
        ELSE
            INSERT INTO accounts_storageusage AS u (organization_id, bytes, files)
            SELECT organization_id, SUM(b), SUM(n) FROM (
                SELECT organization_id, COALESCE(size, 0) AS b, 1 AS n FROM new_rows WHERE confirmed_at IS NOT NULL
                UNION ALL
                SELECT organization_id, -COALESCE(size, 0), -1 FROM old_rows WHERE confirmed_at IS NOT NULL
            ) d
            GROUP BY organization_id HAVING SUM(b) <> 0 OR SUM(n) <> 0
            ON CONFLICT (organization_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes, files = u.files + EXCLUDED.files;
        END IF;
        RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER storedfile_usage_insert AFTER INSERT ON uploads_storedfile
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fileconvert_storedfile_usage()""",
    """CREATE TRIGGER storedfile_usage_update AFTER UPDATE ON uploads_storedfile
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fileconvert_storedfile_usage()""",
    """CREATE TRIGGER storedfile_usage_delete AFTER DELETE ON uploads_storedfile
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fileconvert_storedfile_usage()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS storedfile_usage_insert ON uploads_storedfile",
    "DROP TRIGGER IF EXISTS storedfile_usage_update ON uploads_storedfile",
    "DROP TRIGGER IF EXISTS storedfile_usage_delete ON uploads_storedfile",
    "DROP FUNCTION IF EXISTS fileconvert_storedfile_usage()",
]

SQLITE = [
    """CREATE TRIGGER storedfile_usage_insert AFTER INSERT ON uploads_storedfile WHEN NEW.confirmed_at IS NOT NULL
       BEGIN
           INSERT INTO accounts_storageusage (organization_id, bytes, files) VALUES (NEW.organization_id, COALESCE(NEW.size, 0), 1)
           ON CONFLICT (organization_id) DO UPDATE SET bytes = bytes + excluded.bytes, files = files + excluded.files;
       END""",
    """CREATE TRIGGER storedfile_usage_update AFTER UPDATE ON uploads_storedfile
       WHEN (OLD.confirmed_at IS NULL) <> (NEW.confirmed_at IS NULL)
         OR COALESCE(OLD.size, 0) <> COALESCE(NEW.size, 0)
         OR OLD.organization_id <> NEW.organization_id
       BEGIN
           UPDATE accounts_storageusage SET bytes = bytes - COALESCE(OLD.size, 0), files = files - 1
           WHERE OLD.confirmed_at IS NOT NULL AND organization_id = OLD.organization_id;
           INSERT INTO accounts_storageusage (organization_id, bytes, files)
           SELECT NEW.organization_id, COALESCE(NEW.size, 0), 1 WHERE NEW.confirmed_at IS NOT NULL
           ON CONFLICT (organization_id) DO UPDATE SET bytes = bytes + excluded.bytes, files = files + excluded.files;
       END""",
    """CREATE TRIGGER storedfile_usage_delete AFTER DELETE ON uploads_storedfile WHEN OLD.confirmed_at IS NOT NULL
       BEGIN
           UPDATE accounts_storageusage SET bytes = bytes - COALESCE(OLD.size, 0), files = files - 1
           WHERE organization_id = OLD.organization_id;
       END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS storedfile_usage_insert",
    "DROP TRIGGER IF EXISTS storedfile_usage_update",
    "DROP TRIGGER IF EXISTS storedfile_usage_delete",
]

BACKFILL = """
    INSERT INTO accounts_storageusage (organization_id, bytes, files)
    SELECT organization_id, SUM(COALESCE(size, 0)), COUNT(*) FROM uploads_storedfile
    WHERE confirmed_at IS NOT NULL GROUP BY organization_id
"""


def _statements(vendor: str, create: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL if create else POSTGRESQL_DROP
    if vendor == "sqlite":
        return SQLITE if create else SQLITE_DROP
    raise RuntimeError(f"the storage usage counter has no triggers for {vendor}")


def forwards(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, create=True):
        schema_editor.execute(sql)
    schema_editor.execute("DELETE FROM accounts_storageusage")
    schema_editor.execute(BACKFILL)


def backwards(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, create=False):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_storage_usage"),
        ("uploads", "0004_sha256_index"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
