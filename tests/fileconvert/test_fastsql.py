"""fileconvert.fastsql: statements compiled once must write and read exactly what the ORM
writes and reads (on SQLite and on PostgreSQL: the suite runs on both)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F, signals
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts.models import AuditEvent, Organization, OrgSetting
from conversions.models import ConversionJob, JobStatus
from fileconvert import fastsql
from fileconvert.usage import storage_usage
from uploads.models import FileStatus, StoredFile, Task

pytestmark = pytest.mark.django_db

# The models whose hot-path writes go through fastsql: no signals may be expected of them.
FAST_MODELS = (AuditEvent, ConversionJob, StoredFile, Organization, OrgSetting, Task)


def _file(org: Organization, name: str = "a.png", **extra) -> StoredFile:
    file = StoredFile(organization=org, name=name, **extra)
    file.storage_key = f"{org.pk}/{file.pk}/{name}"
    return file


def test_no_model_signal_receivers_on_the_fast_models():
    for signal in (signals.pre_save, signals.post_save):
        for model in FAST_MODELS:
            assert not signal.has_listeners(model), f"{signal} has receivers for {model.__name__}: fastsql skips them"


def test_insert_stores_what_the_orm_stores(org_a, owner):
    fast = _file(
        org_a,
        size=123,
        metadata={"conversion": {"w": 1024, "name": "ünïcode ✓", "nested": [1, None, True]}},
        uploaded_by=owner.user,
        confirmed_at=timezone.now(),
        status=FileStatus.PROCESSING,
    )
    orm = _file(org_a, name="b.png", size=123, metadata=fast.metadata, uploaded_by=owner.user, confirmed_at=fast.confirmed_at)
    orm.status = FileStatus.PROCESSING
    fastsql.insert(fast)
    orm.save(force_insert=True)
    assert fast._state.adding is False and fast._state.db == "default"
    a, b = StoredFile.objects.get(pk=fast.pk), StoredFile.objects.get(pk=orm.pk)
    ignore = {"id", "name", "storage_key", "created_at"}
    assert {k: v for k, v in model_to_dict(a).items() if k not in ignore} == {
        k: v for k, v in model_to_dict(b).items() if k not in ignore
    }
    assert a.metadata["conversion"]["name"] == "ünïcode ✓" and a.confirmed_at == fast.confirmed_at
    assert a.upload_id is None and a.parent_id is None  # null foreign keys


def test_insert_refuses_expressions_and_keeps_nothing(org_a):
    job_file = _file(org_a)
    job_file.size = F("size") + 1
    with pytest.raises(TypeError, match="values, not expressions"):
        fastsql.insert(job_file)
    assert not StoredFile.objects.filter(pk=job_file.pk).exists()


def test_insert_of_a_duplicate_key_raises_the_orm_error(org_a):
    from django.db import IntegrityError

    first = fastsql.insert(_file(org_a))
    again = _file(org_a, name="other.png")
    again.storage_key = first.storage_key  # unique
    with pytest.raises(IntegrityError), transaction.atomic():
        fastsql.insert(again)


def test_update_where_is_a_conditional_transition(org_a):
    file = fastsql.insert(_file(org_a, status=FileStatus.PROCESSING))
    later = timezone.now() + timedelta(hours=1)
    # The condition does not hold: nothing changes.
    assert fastsql.update_where(StoredFile, {"status": FileStatus.ACTIVE}, pk=file.pk, status=FileStatus.PENDING) == 0
    assert StoredFile.objects.get(pk=file.pk).status == FileStatus.PROCESSING
    changed = fastsql.update_where(
        StoredFile,
        {"status": FileStatus.ACTIVE, "metadata": {"k": [1, 2]}, "expires_at": later, "parent": None},
        pk=file.pk,
        status=FileStatus.PROCESSING,
    )
    assert changed == 1
    stored = StoredFile.objects.get(pk=file.pk)
    assert (stored.status, stored.metadata, stored.expires_at) == (FileStatus.ACTIVE, {"k": [1, 2]}, later)
    with pytest.raises(ValueError, match="condition"):
        fastsql.update_where(StoredFile, {"status": FileStatus.ACTIVE})
    with pytest.raises(TypeError):
        fastsql.update_where(StoredFile, {"size": F("size") + 1}, pk=file.pk)


def test_update_where_takes_a_model_for_a_foreign_key(org_a):
    parent = fastsql.insert(_file(org_a, name="parent.png"))
    child = fastsql.insert(_file(org_a, name="child.png"))
    assert fastsql.update_where(StoredFile, {"parent": parent}, pk=child.pk) == 1
    assert StoredFile.objects.get(pk=child.pk).parent_id == parent.pk


def test_get_reads_what_the_orm_reads(org_a):
    file = fastsql.insert(_file(org_a, metadata={"a": {"b": 1}}, confirmed_at=timezone.now(), size=7))
    got = fastsql.get(StoredFile, file.pk)
    assert model_to_dict(got) == model_to_dict(StoredFile.objects.get(pk=file.pk))
    assert got.confirmed_at.tzinfo is not None and got.metadata == {"a": {"b": 1}}
    assert got._state.adding is False
    assert fastsql.get(StoredFile, "fil_missing") is None
    org = fastsql.get(Organization, org_a.pk, for_update=True)
    assert model_to_dict(org) == model_to_dict(Organization.objects.get(pk=org_a.pk))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_get_for_update_locks_the_row(org_a):
    with transaction.atomic():
        fastsql.get(Organization, org_a.pk, for_update=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = pg_backend_pid() AND c.relname = %s AND l.mode = 'RowShareLock'",
                [Organization._meta.db_table],
            )
            assert cursor.fetchone()[0] == 1


def test_storage_usage_matches_the_orm_aggregate(org_a, org_b):
    assert storage_usage(org_a) == (0, 0)
    for size in (10, 20, None):
        fastsql.insert(_file(org_a, name=f"{size}.bin", size=size, confirmed_at=timezone.now()))
    fastsql.insert(_file(org_a, name="unconfirmed.bin", size=1000))  # not counted until confirmed
    fastsql.insert(_file(org_b, name="other.bin", size=5, confirmed_at=timezone.now()))
    assert storage_usage(org_a) == (30, 3)
    assert storage_usage(org_a.pk) == (30, 3)
    assert storage_usage(org_b) == (5, 1)


def test_a_job_written_by_fastsql_reads_back_through_the_orm(org_a, owner):
    source = fastsql.insert(_file(org_a, confirmed_at=timezone.now(), status=FileStatus.ACTIVE))
    job = fastsql.insert(
        ConversionJob(
            organization=org_a,
            source=source,
            source_format="png",
            target_format="jpeg",
            options={"width": 4},
            created_by=owner.user,
        )
    )
    stored = ConversionJob.objects.get(pk=job.pk)
    assert (stored.status, stored.options, stored.created_by_id, stored.progress) == (
        JobStatus.QUEUED,
        {"width": 4},
        owner.user.pk,
        0,
    )
    assert stored.queued_at == job.queued_at and stored.created_at == job.created_at


def _executes(statements) -> tuple[list, int]:
    """fastsql.run's results and how many times it called the database."""
    calls = []

    def count(execute, sql, params, many, context):
        calls.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        results = fastsql.run(statements)
    return results, len(calls)


def test_run_gives_each_statement_its_result(org_a):
    a, b = _file(org_a, name="a.bin", size=3), _file(org_a, name="b.bin", size=4)
    with transaction.atomic():
        results, calls = _executes(
            [
                fastsql.insert_statement(a),
                fastsql.update_where_statement(StoredFile, {"size": 5}, pk=a.pk),
                fastsql.update_where_statement(StoredFile, {"size": 6}, pk="fil_missing"),
                fastsql.insert_statement(b),
                fastsql.get_statement(StoredFile, a.pk),
                fastsql.get_statement(StoredFile, "fil_missing"),
            ]
        )
    # PostgreSQL: one pipeline for all six (Django's wrappers see one query); SQLite runs them one by one.
    assert calls == (1 if connection.vendor == "postgresql" else 6)
    assert [r.rowcount for r in results[:4]] == [1, 1, 0, 1]
    assert results[4].first(StoredFile).size == 5 and results[5].first(StoredFile) is None
    assert StoredFile.objects.get(pk=b.pk).size == 4
    assert fastsql.run([]) == []


def test_run_stops_at_the_first_failing_statement(org_a):
    from django.db import IntegrityError

    first = fastsql.insert(_file(org_a))
    duplicate = _file(org_a, name="dup.png")
    duplicate.storage_key = first.storage_key  # unique
    after = _file(org_a, name="after.png")
    with pytest.raises(IntegrityError), transaction.atomic():
        fastsql.run(
            [
                fastsql.update_where_statement(StoredFile, {"size": 99}, pk=first.pk),
                fastsql.insert_statement(duplicate),
                fastsql.insert_statement(after),
            ]
        )
    assert StoredFile.objects.get(pk=first.pk).size is None  # rolled back with the failure
    assert not StoredFile.objects.filter(pk__in=[duplicate.pk, after.pk]).exists()


def test_run_refuses_statements_for_two_databases(org_a):
    one = fastsql.get_statement(StoredFile, "x")
    with pytest.raises(ValueError, match="more than one database"):
        fastsql.run([one, one._replace(alias="other")])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_read_after_a_lock_in_one_batch_sees_what_the_previous_holder_committed(org_a):
    # result_record locks the organization and reads its usage in one batch: the read must
    # take its snapshot after the lock is granted, or two finishes could both pass the quota.
    import threading

    from django.db import connections

    from fileconvert.usage import storage_usage_of, storage_usage_statement

    holder_locked, seen = threading.Event(), []

    def holder():
        try:
            with transaction.atomic():
                fastsql.get(Organization, org_a.pk, for_update=True)
                holder_locked.set()
                fastsql.insert(_file(org_a, name="late.bin", size=70, confirmed_at=timezone.now()))
                time.sleep(0.5)  # the batch below is waiting on the lock meanwhile
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    assert holder_locked.wait(10)
    with transaction.atomic():
        locked, usage = fastsql.run(
            [fastsql.get_statement(Organization, org_a.pk, for_update=True), storage_usage_statement(org_a)]
        )
        seen.append(storage_usage_of(usage))
    thread.join(10)
    assert locked.first(Organization).pk == org_a.pk
    assert seen == [(70, 1)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_run_prepares_each_statement_once_per_connection(org_a, settings):
    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {row[0] for row in cursor.fetchall()}

    statement = fastsql.get_statement(Organization, org_a.pk)
    for _ in range(3):
        assert fastsql.run([statement])[0].first(Organization).pk == org_a.pk
    assert statement.sql.replace("%s", "$1") in prepared()  # as the server holds it
    # Off (a PgBouncer that cannot keep them): Django's cursor, nothing prepared.
    settings.DATABASE_PREPARED_STATEMENTS = False
    other = fastsql.get_statement(StoredFile, "fil_missing")
    assert fastsql.run([other])[0].rows == []
    assert other.sql.replace("%s", "$1") not in prepared()


@pytest.mark.django_db(transaction=True)
def test_a_batch_outside_a_transaction_is_all_or_nothing(org_a):
    from django.db import IntegrityError

    first = fastsql.insert(_file(org_a))
    duplicate = _file(org_a, name="dup.png")
    duplicate.storage_key = first.storage_key  # unique: the second statement fails
    assert not connection.in_atomic_block  # autocommit: the batch makes its own transaction
    with pytest.raises(IntegrityError):
        fastsql.run([fastsql.update_where_statement(StoredFile, {"size": 77}, pk=first.pk), fastsql.insert_statement(duplicate)])
    assert StoredFile.objects.get(pk=first.pk).size is None


def test_run_refuses_to_write_in_a_transaction_marked_for_rollback(org_a):
    from django.db.transaction import TransactionManagementError

    with transaction.atomic():
        transaction.set_rollback(True)
        with pytest.raises(TransactionManagementError):
            fastsql.run([fastsql.get_statement(Organization, org_a.pk)])


def _event(org: Organization, **extra) -> AuditEvent:
    values = {"actor_label": "system", "action": "x.done", "target_type": "storedfile", "details": {"n": [1, "é"]}}
    return AuditEvent(organization=org, **{**values, **extra})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a data-modifying WITH: PostgreSQL")
def test_insert_after_update_inserts_what_the_orm_inserts_when_the_update_moved(org_a):
    file = fastsql.insert(_file(org_a, size=5))
    fast, orm = _event(org_a, target_id=file.pk, ip="10.1.2.3"), _event(org_a, target_id=file.pk, ip="10.1.2.3")
    orm.save(force_insert=True)
    moved = fastsql.update_where_statement(StoredFile, {"size": 6}, pk=file.pk, size=5)
    (result,) = fastsql.run([fastsql.insert_after_update_statement(moved, fast)])
    assert result.rowcount == 1
    assert StoredFile.objects.get(pk=file.pk).size == 6
    stored = {k: v for k, v in model_to_dict(AuditEvent.objects.get(pk=fast.pk)).items() if k != "id"}
    assert stored == {k: v for k, v in model_to_dict(AuditEvent.objects.get(pk=orm.pk)).items() if k != "id"}
    assert AuditEvent.objects.get(pk=fast.pk).created_at == fast.created_at


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a data-modifying WITH: PostgreSQL")
def test_insert_after_update_inserts_nothing_when_the_update_moved_nothing(org_a):
    file = fastsql.insert(_file(org_a, size=5))
    event = _event(org_a)
    stale = fastsql.update_where_statement(StoredFile, {"size": 6}, pk=file.pk, size=4)
    (result,) = fastsql.run([fastsql.insert_after_update_statement(stale, event)])
    assert result.rowcount == 0
    assert StoredFile.objects.get(pk=file.pk).size == 5 and not AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a data-modifying WITH: PostgreSQL")
def test_insert_after_update_refuses_a_value_too_long_for_its_column(org_a):
    """The casts carry no length: the INSERT's own assignment refuses what does not fit (an
    explicit cast to varchar(n) would cut it to n characters)."""
    from django.db import DataError

    file = fastsql.insert(_file(org_a, size=5))
    moved = fastsql.update_where_statement(StoredFile, {"size": 6}, pk=file.pk)
    with pytest.raises(DataError), transaction.atomic():
        fastsql.run([fastsql.insert_after_update_statement(moved, _event(org_a, action="a" * 101))])
    assert StoredFile.objects.get(pk=file.pk).size == 5  # the statement is all or nothing


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a data-modifying WITH: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_insert_after_update_outside_a_transaction_is_one_statement_that_commits(org_a, django_assert_num_queries):
    from django.db import connections

    file = fastsql.insert(_file(org_a, size=5))
    event = _event(org_a)
    moved = fastsql.update_where_statement(StoredFile, {"size": 6}, pk=file.pk)
    assert not connection.in_atomic_block
    with django_assert_num_queries(1):
        fastsql.run([fastsql.insert_after_update_statement(moved, event)])
    other = connections.create_connection("default")  # another session sees it committed
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_auditevent WHERE id = %s", [event.pk])
            assert cursor.fetchone() == (1,)
    finally:
        other.close()


def test_unsized_types():
    assert fastsql._unsized("varchar(26)") == "varchar"
    assert fastsql._unsized("numeric(10, 2)") == "numeric"
    assert fastsql._unsized("timestamp with time zone") == "timestamp with time zone"
    assert fastsql._unsized("jsonb") == "jsonb"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline's implicit transaction: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_batch_outside_a_transaction_is_its_own_pipelined_transaction(org_a, monkeypatch, django_assert_num_queries):
    """No atomic block around it (whose BEGIN and COMMIT would be two more round trips): the
    pipeline's Sync commits it."""
    from django.db import connections

    first, second = _file(org_a, name="one.png"), _file(org_a, name="two.png")
    assert not connection.in_atomic_block
    commits: list[bool] = []
    wrapper = connections["default"]
    real_commit = type(wrapper).commit
    monkeypatch.setattr(type(wrapper), "commit", lambda self: commits.append(True) or real_commit(self))
    with django_assert_num_queries(1):
        fastsql.run([fastsql.insert_statement(first), fastsql.insert_statement(second)])
    assert commits == []
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM uploads_storedfile WHERE id IN (%s, %s)", [first.pk, second.pk])
            assert cursor.fetchone() == (2,)
    finally:
        other.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline's implicit transaction: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_deferred_constraint_refused_at_the_batchs_commit_raises_and_leaves_the_connection_usable(org_a):
    """Django's foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED), which for a
    batch outside a transaction is its own COMMIT, in its pipeline. It raises IntegrityError,
    writes nothing, and the connection works after it (a failure at the pipeline's Sync, as an
    implicit transaction would have it, left psycopg's pipeline unusable)."""
    from django.db import IntegrityError

    orphan, fine = _file(org_a, name="orphan.png"), _file(org_a, name="fine.png")
    orphan.organization_id = "org_missing"
    orphan.storage_key = "org_missing/x/orphan.png"
    assert not connection.in_atomic_block
    for _ in range(2):  # the second time the statements are prepared already
        with pytest.raises(IntegrityError):
            fastsql.run([fastsql.insert_statement(fine), fastsql.insert_statement(orphan)])
        assert not StoredFile.objects.filter(pk__in=[fine.pk, orphan.pk]).exists()
        fine._state.adding = orphan._state.adding = True
    assert fastsql.run([fastsql.insert_statement(fine)])[0].rowcount == 1  # usable
    # One statement in autocommit: refused at its own commit, the UPDATE with it.
    moved = fastsql.update_where_statement(StoredFile, {"size": 1}, pk=fine.pk)
    stray = _event(org_a)
    stray.organization_id = "org_missing"
    with pytest.raises(IntegrityError):
        fastsql.run([fastsql.insert_after_update_statement(moved, stray)])
    assert StoredFile.objects.get(pk=fine.pk).size is None and not AuditEvent.objects.filter(pk=stray.pk).exists()
    assert fastsql.get(StoredFile, fine.pk) is not None


def test_select_where_reads_what_the_orm_reads(org_a, org_b):
    OrgSetting.objects.create(organization=org_a, key="review.required", value=False)
    OrgSetting.objects.create(organization=org_b, key="review.required", value={"nested": [1, "é"]})
    (mine,) = fastsql.run([fastsql.select_where_statement(OrgSetting, organization=org_a.pk, key="review.required")])
    got = mine.first(OrgSetting)
    assert model_to_dict(got) == model_to_dict(OrgSetting.objects.get(organization=org_a, key="review.required"))
    assert got.value is False
    theirs = fastsql.run([fastsql.select_where_statement(OrgSetting, organization=org_b, key="review.required")])[0]
    assert theirs.first(OrgSetting).value == {"nested": [1, "é"]}  # a model instance stands for its key
    none = fastsql.run([fastsql.select_where_statement(OrgSetting, organization=org_a.pk, key="absent")])[0]
    assert none.rows == [] and none.first(OrgSetting) is None
    with pytest.raises(ValueError):
        fastsql.select_where_statement(OrgSetting)


def test_insert_where_exists_inserts_what_the_orm_inserts_when_the_row_exists(org_a, owner):
    # On both databases: a stored file with every kind of column (JSON, datetimes, nulls,
    # foreign keys) reads back as the ORM's own INSERT of the same values.
    source = fastsql.insert(_file(org_a, size=5))
    values = {
        "size": 123,
        "metadata": {"conversion": {"w": 1024, "name": "ünïcode ✓", "nested": [1, None, True]}},
        "uploaded_by": owner.user,
        "confirmed_at": timezone.now(),
        "status": FileStatus.PROCESSING,
        "parent": source,
    }
    fast, orm = _file(org_a, **values), _file(org_a, name="b.png", **values)
    orm.save(force_insert=True)
    with transaction.atomic():
        moved, inserted = fastsql.run(
            [
                fastsql.update_where_statement(StoredFile, {"size": 6}, pk=source.pk, size=5),
                fastsql.insert_where_exists_statement(fast, StoredFile, pk=source.pk, size=6),
            ]
        )
    assert (moved.rowcount, inserted.rowcount) == (1, 1)
    a, b = StoredFile.objects.get(pk=fast.pk), StoredFile.objects.get(pk=orm.pk)
    ignore = {"id", "name", "storage_key", "created_at"}
    assert {k: v for k, v in model_to_dict(a).items() if k not in ignore} == {
        k: v for k, v in model_to_dict(b).items() if k not in ignore
    }
    assert a.confirmed_at == fast.confirmed_at and a.created_at == fast.created_at
    assert a.metadata["conversion"]["name"] == "ünïcode ✓" and a.upload_id is None


def test_insert_where_exists_inserts_nothing_when_the_update_before_it_moved_nothing(org_a):
    file = fastsql.insert(_file(org_a, size=5))
    event = _event(org_a, target_id=file.pk)
    with transaction.atomic():
        moved, inserted = fastsql.run(
            [
                fastsql.update_where_statement(StoredFile, {"size": 6}, pk=file.pk, size=4),  # stale: moves nothing
                fastsql.insert_where_exists_statement(event, StoredFile, pk=file.pk, size=6),
            ]
        )
    assert (moved.rowcount, inserted.rowcount) == (0, 0)
    assert not AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="casts without a length: PostgreSQL")
def test_insert_where_exists_refuses_a_value_too_long_for_its_column(org_a):
    from django.db import DataError

    file = fastsql.insert(_file(org_a, size=5))
    with pytest.raises(DataError), transaction.atomic():
        fastsql.run([fastsql.insert_where_exists_statement(_event(org_a, action="a" * 101), StoredFile, pk=file.pk)])
    assert not AuditEvent.objects.filter(action__startswith="aaa").exists()


def test_insert_where_exists_refuses_no_condition_without_touching_the_instance(org_a):
    event = _event(org_a)
    with pytest.raises(ValueError, match="needs a condition"):
        fastsql.insert_where_exists_statement(event, StoredFile)
    assert event._state.adding is True
