"""PostgreSQL: the tsvector is computed by the database on every insert and on updates of
``title``/``body`` (a BEFORE trigger), like the FTS5 triggers on SQLite: one write per
document, and no code path can store text without its vector. The text search
configuration must match ``search.backends.TEXT_CONFIG``."""

from django.db import migrations

POSTGRES_CREATE = [
    """
    CREATE FUNCTION search_document_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.vector := setweight(to_tsvector('english'::regconfig, coalesce(NEW.title, '')), 'A')
                   || setweight(to_tsvector('english'::regconfig, coalesce(NEW.body, '')), 'B');
        RETURN NEW;
    END
    $$
    """,
    "CREATE TRIGGER search_document_vector_ins BEFORE INSERT ON search_searchdocument "
    "FOR EACH ROW EXECUTE FUNCTION search_document_vector()",
    "CREATE TRIGGER search_document_vector_upd BEFORE UPDATE OF title, body ON search_searchdocument "
    "FOR EACH ROW EXECUTE FUNCTION search_document_vector()",
    # Rows written before this migration get their vector now.
    "UPDATE search_searchdocument SET title = title",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS search_document_vector_upd ON search_searchdocument",
    "DROP TRIGGER IF EXISTS search_document_vector_ins ON search_searchdocument",
    "DROP FUNCTION IF EXISTS search_document_vector()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0002_backend_index")]

    operations = [migrations.RunPython(_run({"postgresql": POSTGRES_CREATE}), _run({"postgresql": POSTGRES_DROP}))]
