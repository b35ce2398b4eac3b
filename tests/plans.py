"""Query plans in tests (PostgreSQL)."""

from django.db import connection


def plan_of(queryset) -> str:
    """PostgreSQL's plan for ``queryset`` with sequential scans discouraged, since a test's
    tiny table would always be scanned: shows which index the query can use. Call it inside
    a test's transaction (``SET LOCAL`` ends with it)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(line for (line,) in cursor.fetchall())
