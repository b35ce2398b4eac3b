"""Hot-path statements whose SQL is compiled once, not once per call.

Django's ORM compiles every query from scratch: about 0.35 ms of CPU per statement on
this project's 2-core machines, several times what the database spends on a one-row
INSERT or UPDATE (``bench/job_overhead.py``). The job pipeline runs a handful of these
per job, so the statements it runs for every job (a job's audit row, its INSERT, its
conditional transitions, the output file's INSERT, a row by primary key) are built here
once per model and field list from the model's own meta, and executed with parameters
prepared by the fields themselves (``get_db_prep_save``: JSON, datetimes, foreign keys
exactly as the ORM would send them). Instances are rebuilt with the ORM's own
converters (``Model.from_db``).

What this does not do, so keep it to models where it is true: no ``pre_save`` /
``post_save`` signals are sent (no receivers exist for the models that use it:
``tests/fileconvert/test_fastsql.py`` checks), no query expressions as values, and the
primary key must be set before the INSERT (our ids are client-side ``IdFactory``
values). Everything else uses the ORM.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)
_SQL: dict[tuple[Any, ...], Any] = {}  # (what, model, vendor, ...) -> SQL text (and its fields)


class Statement(NamedTuple):
    """One statement: SQL with ``%s`` placeholders, its parameters, the connection alias."""

    sql: str
    params: list[Any]
    alias: str = "default"


class Result(NamedTuple):
    rowcount: int
    rows: list[tuple[Any, ...]]
    alias: str

    def first(self, model: type[M]) -> M | None:
        """The first row as a ``model`` instance (every concrete column, ``from_row``)."""
        return from_row(model, self.rows[0], connections[self.alias]) if self.rows else None


def run(statements: Sequence[Statement]) -> list[Result]:
    """Execute ``statements`` in order on their (one) connection, in the caller's transaction;
    one ``Result`` each (its row count, and its rows when it returns any).

    On PostgreSQL (psycopg 3) each statement is prepared once per connection and they all go
    in one pipeline: one round trip to the server however many there are (every round trip
    costs the worker a wait and PostgreSQL a wake-up), and no planning after the first call
    (a one-row UPDATE's plan costs PostgreSQL more CPU than running it). Each statement still
    takes its own snapshot (READ COMMITTED), so a ``SELECT`` after a ``FOR UPDATE`` in the
    same batch sees what the lock's previous holder committed. The first failing statement
    raises (the ones after it do not run); a batch of several is all or nothing (it runs in
    a transaction: the caller's, or its own, which outside an atomic block on PostgreSQL
    begins and commits in the batch's own round trip). psycopg forgets prepared statements at every
    rollback (and tells the server, ``DEALLOCATE ALL``): they are prepared again. Elsewhere
    (SQLite, or ``DATABASE_PREPARED_STATEMENTS = False`` for a transaction-pooling PgBouncer
    older than 1.22, or with ``max_prepared_statements = 0``) they run one by one through Django's cursor."""
    if not statements:
        return []
    alias = statements[0].alias
    if any(s.alias != alias for s in statements):
        raise ValueError("fastsql.run: statements for more than one database")
    connection = connections[alias]
    if _prepares(connection):
        # Outside a transaction the batch brings its own BEGIN and COMMIT in its pipeline: one
        # round trip, where an atomic block costs three (psycopg's BEGIN is one of its own).
        return _run_prepared(connection, statements, alias)
    if len(statements) > 1 and not connection.in_atomic_block:
        # Elsewhere a batch is made all or nothing by a transaction (one by one, each commits).
        with transaction.atomic(using=alias):
            return run(statements)
    out: list[Result] = []
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.params)
            out.append(Result(cursor.rowcount, cursor.fetchall() if cursor.description else [], alias))
    return out


def _prepares(connection: Any) -> bool:
    return connection.vendor == "postgresql" and getattr(settings, "DATABASE_PREPARED_STATEMENTS", True)


def _run_prepared(connection: Any, statements: Sequence[Statement], alias: str) -> list[Result]:
    """PostgreSQL (psycopg 3): each statement prepared once per connection (the server
    plans it once, not on every call: for a one-row UPDATE planning is most of its cost)
    and executed by name after, all of them sent in one pipeline (one round trip). Django's
    execute wrappers and query log see the batch as one query (``assertNumQueries`` counts it)."""
    import psycopg

    sql = ";\n".join(s.sql for s in statements)
    params = [p for s in statements for p in s.params]
    out: list[Result] = []

    # Several statements outside a transaction: BEGIN and COMMIT go in the same pipeline (one
    # round trip; in an atomic block psycopg's BEGIN waits for its reply, and the COMMIT is
    # another). Explicit, not the pipeline's implicit transaction: a deferred constraint then
    # fails the COMMIT statement, which psycopg reports like any statement, where a failure
    # at the Sync itself left its pipeline unusable ("cannot exit pipeline mode while busy").
    own = len(statements) > 1 and not connection.in_atomic_block

    def execute(_sql: str, _params: Any, _many: bool, _context: Any) -> None:
        connection.validate_no_broken_transaction()  # as Django's own cursor does
        raw = connection.connection
        cursors = [psycopg.Cursor(raw) for _ in statements]
        control = [psycopg.Cursor(raw), psycopg.Cursor(raw)] if own else []
        try:
            with connection.wrap_database_errors:
                try:
                    with raw.pipeline() if len(statements) > 1 else contextlib.nullcontext():
                        if own:
                            control[0].execute("BEGIN")
                        for cursor, statement in zip(cursors, statements, strict=True):
                            cursor.execute(statement.sql, statement.params, prepare=True)
                        if own:
                            control[1].execute("COMMIT")
                except psycopg.Error:
                    # A statement failed inside the BEGIN: the transaction stays aborted until a
                    # ROLLBACK (a refused COMMIT has ended it already: then this sends nothing).
                    if own and not raw.closed:
                        raw.rollback()
                    raise
                # ``pgresult.nfields``, not ``description``: that builds a Column per column on
                # every access (the claim returns about 50).
                out.extend(Result(c.rowcount, c.fetchall() if c.pgresult and c.pgresult.nfields else [], alias) for c in cursors)
        finally:
            for cursor in cursors + control:
                cursor.close()

    with (
        connection.cursor() as wrapper,  # opens the connection, and the transaction as Django would
        wrapper.debug_sql(sql, params) if connection.queries_logged else contextlib.nullcontext(),
    ):
        wrapper._execute_with_wrappers(sql, params, many=False, executor=execute)
    return out


def _connection(model: type[Model], *, write: bool) -> Any:
    return connections[router.db_for_write(model) if write else router.db_for_read(model)]


def once(key: tuple[Any, ...], build: Any) -> Any:
    """``build()`` the first time ``key`` is asked for, the cached result after: the one
    cache of compiled statements (this module's, and hand-written ones like the claim's)."""
    found = _SQL.get(key)
    if found is None:
        found = _SQL[key] = build()
    return found


def _columns(model: type[Model], names: Iterable[str]) -> tuple[Field, ...]:
    meta = model._meta
    return tuple(meta.pk if name == "pk" else meta.get_field(name) for name in names)  # type: ignore[misc]


def insert_statement(obj: Model) -> Statement:
    """The INSERT of ``obj`` (every concrete field, defaults already applied by ``__init__``)
    as ``obj.save(force_insert=True)`` would send it; marks ``obj`` saved (run it in the
    same transaction)."""
    model = type(obj)
    connection = _connection(model, write=True)
    qn = connection.ops.quote_name

    def build() -> tuple[str, tuple[Field, ...]]:
        fields = tuple(model._meta.local_concrete_fields)
        columns = ", ".join(qn(f.column) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({placeholders})", fields  # noqa: S608

    sql, fields = once(("insert", model, connection.vendor), build)
    if obj.pk is None:
        raise ValueError(f"{model.__name__} needs its primary key set before fastsql.insert")
    params = []
    for field in fields:
        value = field.pre_save(obj, True)  # auto_now_add and friends, as the ORM does
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"{model.__name__}.{field.name}: fastsql takes values, not expressions")
        params.append(field.get_db_prep_save(value, connection))
    obj._state.adding = False
    obj._state.db = connection.alias
    return Statement(sql, params, connection.alias)


def supports_update_returning(alias: str = "default") -> bool:
    """UPDATE ... RETURNING: PostgreSQL, SQLite >= 3.35 (not MariaDB, whose RETURNING is
    INSERT/DELETE only)."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and connection.Database.sqlite_version_info >= (3, 35)


def supports_insert_after_update(alias: str = "default") -> bool:
    """``insert_after_update_statement`` runs here: PostgreSQL (a data-modifying WITH).
    SQLite has no UPDATE inside a WITH."""
    return connections[alias].vendor == "postgresql"


def insert_after_update_statement(update: Statement, obj: Model) -> Statement:
    """One statement: ``update`` (an ``update_where_statement``), then the INSERT of ``obj``
    (``insert_statement``) only if the UPDATE changed a row; its row count is the number of
    rows the UPDATE changed (one row per changed row is inserted, so give it a one-row
    condition). A conditional transition and its audit row then need no transaction of
    their own: outside one it is a single round trip with its commit in it, where the
    UPDATE and the INSERT in an atomic block took three (BEGIN, the batch, COMMIT). PostgreSQL only
    (``supports_insert_after_update``).

    The values are cast to their columns' types without a length or precision
    (``varchar``, ``numeric``): an INSERT ... SELECT has no VALUES row to infer them from,
    and a cast to ``varchar(n)`` would cut a long value where the INSERT's own assignment
    refuses it, as the ORM's INSERT does."""
    insert = insert_statement(obj)
    model = type(obj)
    connection = connections[insert.alias]
    if connection.vendor != "postgresql":
        raise NotImplementedError("insert_after_update_statement needs PostgreSQL")
    if update.alias != insert.alias:
        raise ValueError("insert_after_update_statement: statements for more than one database")

    def build() -> str:
        return f"WITH moved AS ({update.sql} RETURNING 1) {_insert_select(model, connection)} FROM moved"

    sql = once(("insert after update", model, connection.vendor, update.sql), build)
    return Statement(sql, update.params + insert.params, insert.alias)


def insert_where_exists_statement(obj: Model, model: type[Model], **where: Any) -> Statement:
    """The INSERT of ``obj`` (``insert_statement``) made only if a row of ``model`` whose
    where-fields equal their values exists when it runs: ``INSERT ... SELECT ... WHERE
    EXISTS (...)``. Put after a conditional UPDATE in the same batch and transaction, with
    a condition only that UPDATE can have made true (a value it wrote), the INSERT happens
    exactly when the UPDATE moved, and both go in one round trip with whatever is read
    between them. Its row count is the number of rows inserted (0 or 1). Like
    ``insert_statement``, it marks ``obj`` saved, whether or not the row is then inserted."""
    names = tuple(where)
    if not names:
        raise ValueError("insert_where_exists needs a condition")
    target = type(obj)
    connection = _connection(target, write=True)
    if _connection(model, write=True).alias != connection.alias:
        raise ValueError("insert_where_exists_statement: statements for more than one database")
    insert = insert_statement(obj)

    def build() -> tuple[str, tuple[Field, ...]]:
        qn = connection.ops.quote_name
        where_fields = _columns(model, names)
        exists = f"SELECT 1 FROM {qn(model._meta.db_table)} WHERE {_conditions(where_fields, qn)}"  # noqa: S608 - names from the meta
        return f"{_insert_select(target, connection)} WHERE EXISTS ({exists})", where_fields

    sql, where_fields = once(("insert where exists", target, model, connection.vendor, names), build)
    return Statement(sql, insert.params + _where_params(model, where_fields, where.values(), connection), insert.alias)


def _insert_select(model: type[Model], connection: Any) -> str:
    """``INSERT INTO <table> (<every column>) SELECT <a parameter each>``, the parameters in
    ``insert_statement``'s order; the caller adds a FROM or a WHERE. PostgreSQL infers no
    type for a parameter in a SELECT list: each is cast to its column's type, unsized (see
    ``insert_after_update_statement``). SQLite applies the column's affinity on INSERT, and
    a CAST there would change the value (a datetime cast to NUMERIC is its year)."""
    qn = connection.ops.quote_name
    fields = model._meta.local_concrete_fields
    columns = ", ".join(qn(f.column) for f in fields)
    if connection.vendor == "postgresql":
        values = ", ".join(f"%s::{_unsized(f.db_type(connection))}" for f in fields)
    else:
        values = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) SELECT {values}"


def _unsized(db_type: str | None) -> str:
    """``varchar(26)`` -> ``varchar``; ``numeric(10, 2)`` -> ``numeric``; others unchanged."""
    if not db_type:
        raise TypeError("fastsql: a field without a database type")
    head, _, rest = db_type.partition("(")
    return head.strip() + (rest.partition(")")[2] if rest else "")


def insert(obj: M) -> M:
    """INSERT ``obj`` (``insert_statement``) now."""
    run([insert_statement(obj)])
    return obj


def update_where_statement(model: type[Model], values: dict[str, Any], **where: Any) -> Statement:
    """``UPDATE ... SET values WHERE each where-field = its value``. Equality on plain
    values only: a conditional transition (``status`` and ``claimed_by`` still what the
    caller holds) is one statement, and its row count says whether it happened."""
    connection = _connection(model, write=True)
    qn = connection.ops.quote_name
    set_names, where_names = tuple(values), tuple(where)

    def build() -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
        set_fields, where_fields = _columns(model, set_names), _columns(model, where_names)
        sets = ", ".join(f"{qn(f.column)} = %s" for f in set_fields)
        return f"UPDATE {qn(model._meta.db_table)} SET {sets} WHERE {_conditions(where_fields, qn)}", set_fields, where_fields  # noqa: S608

    if not where_names:
        raise ValueError("update_where needs a condition")
    sql, set_fields, where_fields = once(("update", model, connection.vendor, set_names, where_names), build)
    params = [
        f.get_db_prep_save(v, connection) for f, v in zip(set_fields, _values(model, set_fields, values.values()), strict=True)
    ]
    params += _where_params(model, where_fields, where.values(), connection)
    return Statement(sql, params, connection.alias)


def update_where(model: type[Model], values: dict[str, Any], **where: Any) -> int:
    """``update_where_statement`` now: the number of rows changed."""
    return run([update_where_statement(model, values, **where)])[0].rowcount


def _conditions(fields: Sequence[Field], qn: Any) -> str:
    return " AND ".join(f"{qn(f.column)} = %s" for f in fields)


def _where_params(model: type[Model], fields: Sequence[Field], values: Iterable[Any], connection: Any) -> list[Any]:
    """The where-values prepared as the ORM prepares a lookup's (``get_db_prep_value``)."""
    return [
        f.get_db_prep_value(v, connection, prepared=False) for f, v in zip(fields, _values(model, fields, values), strict=True)
    ]


def _values(model: type[Model], fields: Sequence[Field], values: Iterable[Any]) -> list[Any]:
    """Plain values (a model instance stands for its primary key); expressions refused."""
    out = []
    for field, value in zip(fields, values, strict=True):
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"{model.__name__}.{field.name}: fastsql takes values, not expressions")
        out.append(value.pk if isinstance(value, Model) else value)
    return out


def get_statement(model: type[Model], pk: Any, *, for_update: bool = False) -> Statement:
    """The row with this primary key, every concrete column (``from_row`` reads it); with
    ``for_update`` it is locked until the transaction ends (SQLite has no row locks: its
    writers take the whole database, IMMEDIATE).

    The lock is PostgreSQL's ``FOR NO KEY UPDATE`` (``select_for_update(no_key=True)``):
    it excludes the other lockers, but not the ``FOR KEY SHARE`` with which a commit checks
    a deferred foreign key to the row. A plain ``FOR UPDATE`` of an organization deadlocked
    a transaction that had written a row pointing at it and waited at COMMIT for that check
    while the locker waited on a row the first one held (decision 0010)."""
    connection = _connection(model, write=for_update)
    qn = connection.ops.quote_name
    lock = ""
    if for_update and connection.features.has_select_for_update:
        lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else " FOR UPDATE"

    def build() -> str:
        meta = model._meta
        return f"SELECT {returning_columns(model, connection)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s{lock}"  # noqa: S608

    sql = once(("get", model, connection.vendor, lock), build)
    return Statement(sql, [model._meta.pk.get_db_prep_value(pk, connection, prepared=False)], connection.alias)


def select_where_statement(model: type[Model], **where: Any) -> Statement:
    """Every concrete column of the rows whose where-fields equal their values (plain values,
    as ``update_where_statement`` takes them); ``Result.first(model)`` reads the first."""
    connection = _connection(model, write=False)
    qn = connection.ops.quote_name
    names = tuple(where)
    if not names:
        raise ValueError("select_where needs a condition")

    def build() -> tuple[str, tuple[Field, ...]]:
        fields = _columns(model, names)
        sql = f"SELECT {returning_columns(model, connection)} FROM {qn(model._meta.db_table)} WHERE {_conditions(fields, qn)}"  # noqa: S608
        return sql, fields

    sql, fields = once(("select", model, connection.vendor, names), build)
    return Statement(sql, _where_params(model, fields, where.values(), connection), connection.alias)


def get(model: type[M], pk: Any, *, for_update: bool = False) -> M | None:
    """``get_statement`` now: the instance, or ``None`` if there is no such row."""
    result = run([get_statement(model, pk, for_update=for_update)])[0]
    return result.first(model)


def returning_columns(model: type[Model], connection: Any) -> str:
    """Every concrete column, quoted, in the order ``from_row`` reads them."""
    qn = connection.ops.quote_name
    return once(("columns", model, connection.vendor), lambda: ", ".join(qn(f.column) for f in model._meta.concrete_fields))


def from_row(model: type[M], row: Sequence[Any], connection: Any) -> M:
    """An instance from a row of every concrete column in ``_meta.concrete_fields``
    order (``RETURNING`` or ``SELECT``), converted as the ORM converts what it reads."""
    fields = model._meta.concrete_fields

    def build() -> tuple[list[str], tuple[tuple[Any, list], ...]]:
        out = []
        for field in fields:
            expression = field.get_col(model._meta.db_table)
            out.append((expression, connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)))
        return [f.attname for f in fields], tuple(out)

    attnames, converters = once(("converters", model, connection.vendor), build)
    values = []
    for (expression, convert_all), value in zip(converters, row, strict=True):
        for convert in convert_all:
            value = convert(value, expression, connection)
        values.append(value)
    return model.from_db(connection.alias, attnames, values)
