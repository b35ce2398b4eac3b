"""The storage usage counter (accounts.StorageUsage) is kept by the database: whatever
writes the files (ORM save, bulk, fastsql, queryset update and delete, cascades), the
counter says what the sum of the files says. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization, StorageUsage
from fileconvert import fastsql
from fileconvert.usage import storage_usage, storage_usage_recount
from uploads.models import StoredFile

pytestmark = pytest.mark.django_db


def _file(org: Organization, name: str, size: int | None, confirmed: bool = True) -> StoredFile:
    file = StoredFile(organization=org, name=name, size=size, confirmed_at=timezone.now() if confirmed else None)
    file.storage_key = f"{org.pk}/{file.pk}/{name}"
    return file


def _agree(*orgs: Organization) -> list[tuple[int, int]]:
    out = []
    for org in orgs:
        assert storage_usage(org) == storage_usage_recount(org), org.pk
        out.append(storage_usage(org))
    return out


def test_every_write_path_keeps_the_counter_equal_to_the_sum(org_a, org_b):
    assert _agree(org_a, org_b) == [(0, 0), (0, 0)]
    a = _file(org_a, "a.bin", 100)
    a.save(force_insert=True)  # ORM
    fastsql.insert(_file(org_a, "b.bin", 20))  # fastsql
    StoredFile.objects.bulk_create([_file(org_a, f"bulk{i}.bin", 1) for i in range(5)] + [_file(org_b, "b.bin", 7)])
    pending = _file(org_a, "pending.bin", 1000, confirmed=False)  # not counted until confirmed
    pending.save(force_insert=True)
    fastsql.insert(_file(org_a, "nosize.bin", None))  # counted as a file of 0 bytes
    assert _agree(org_a, org_b) == [(125, 8), (7, 1)]

    StoredFile.objects.filter(pk=pending.pk).update(confirmed_at=timezone.now())  # confirmed: counts now
    assert _agree(org_a)[0] == (1125, 9)
    pending.size = 900
    pending.save(update_fields=["size"])  # a rewrite of its bytes
    assert _agree(org_a)[0] == (1025, 9)
    StoredFile.objects.filter(organization=org_a, name__startswith="bulk").update(size=3)  # one statement, 5 rows
    assert _agree(org_a)[0] == (1035, 9)
    StoredFile.objects.filter(pk=a.pk).update(status="active", name="renamed.bin")  # nothing counted changes
    assert _agree(org_a)[0] == (1035, 9)
    StoredFile.objects.filter(pk=pending.pk).update(confirmed_at=None)
    assert _agree(org_a)[0] == (135, 8)

    a.delete()
    StoredFile.objects.filter(organization=org_a, name__startswith="bulk").delete()
    assert _agree(org_a, org_b) == [(20, 2), (7, 1)]


def test_a_rolled_back_write_counts_nothing(org_a):
    with pytest.raises(RuntimeError), transaction.atomic():
        fastsql.insert(_file(org_a, "gone.bin", 50))
        assert storage_usage(org_a) == (50, 1)  # inside: the counter moved with the row
        raise RuntimeError("roll back")
    assert _agree(org_a)[0] == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_deleting_an_organization_takes_its_counter(org_a, org_b):
    # Committed (not inside the test's transaction), so the deferred foreign keys are checked.
    StoredFile.objects.bulk_create([_file(org_a, f"{i}.bin", 10) for i in range(3)] + [_file(org_b, "x.bin", 1)])
    org_a.delete()
    assert not StorageUsage.objects.filter(organization_id=org_a.pk).exists()
    assert _agree(org_b)[0] == (1, 1)


def test_the_quota_check_reads_the_counter(org_a):
    from fileconvert.errors import PayloadTooLarge
    from uploads.services import quota_check

    Organization.objects.filter(pk=org_a.pk).update(storage_quota_bytes=100)
    org_a.refresh_from_db()
    fastsql.insert(_file(org_a, "big.bin", 90))
    quota_check(org=org_a, incoming_bytes=10)
    with pytest.raises(PayloadTooLarge):
        quota_check(org=org_a, incoming_bytes=11)
    # It is the counter that decides, not a sum of the files: a (drifted) counter says full.
    StorageUsage.objects.filter(organization=org_a).update(bytes=100)
    with pytest.raises(PayloadTooLarge):
        quota_check(org=org_a, incoming_bytes=1)


def test_usage_recount_finds_and_fixes_a_drifted_counter(org_a, org_b, capsys):
    fastsql.insert(_file(org_a, "a.bin", 40))
    call_command("usage_recount")
    assert "every counter matches" in capsys.readouterr().out
    StorageUsage.objects.filter(organization=org_a).update(bytes=1, files=9)  # drift (a raw write, a bug)
    with pytest.raises(CommandError, match="1 organization"):
        call_command("usage_recount")
    assert f"{org_a.pk}: counter 1 bytes / 9 files, files sum 40 / 1" in capsys.readouterr().out
    call_command("usage_recount", "--fix")
    assert _agree(org_a, org_b) == [(40, 1), (0, 0)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement-level triggers: PostgreSQL")
def test_a_statement_over_many_files_updates_the_counter_once(org_a):
    # A row-level trigger would update the counter row once per file, in one transaction.
    StoredFile.objects.bulk_create([_file(org_a, f"{i}.bin", 2) for i in range(2000)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd + n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = 'accounts_storageusage'")
        before = cursor.fetchone()[0]
        StoredFile.objects.filter(organization=org_a).update(size=3)
        cursor.execute("SELECT n_tup_upd + n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = 'accounts_storageusage'")
        assert cursor.fetchone()[0] - before == 1
    assert _agree(org_a)[0] == (6000, 2000)


def test_the_admin_lists_each_organizations_usage_from_its_counter(org_a, org_b, platform_admin):
    from django.test import Client

    StoredFile.objects.bulk_create([_file(org_a, "a.bin", 123_456), _file(org_a, "b.bin", 4), _file(org_b, "c.bin", 1)])
    client = Client()
    client.force_login(platform_admin.user)
    page = client.get(
        "/admin/accounts/organization/?o=-4"
    )  # sortable (column 4 after the action checkbox): by storage used, descending
    assert page.status_code == 200
    body = page.content.decode()
    assert 'storage_used">123460<' in body and "Storage used (bytes)" in body
    assert body.index('storage_used">123460<') < body.index('storage_used">1<')  # org_a before org_b
    detail = client.get(f"/admin/accounts/organization/{org_a.pk}/change/")
    assert detail.status_code == 200 and "123460" in detail.content.decode()
    org_b.storage_usage.delete()  # no counter row (an organization with no file yet): 0
    assert 'storage_used">0<' in client.get("/admin/accounts/organization/").content.decode()
    assert client.get(f"/admin/accounts/organization/{org_b.pk}/change/").status_code == 200


def test_the_counter_triggers_exist():
    # SQLite drops a table's triggers when Django rebuilds it (an AlterField of StoredFile):
    # a migration that does that must create them again, or nothing counts any more.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'uploads_storedfile'::regclass AND NOT tgisinternal AND tgenabled <> 'D'"
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'uploads_storedfile'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"storedfile_usage_insert", "storedfile_usage_update", "storedfile_usage_delete"} <= names


def _threaded(target):
    import threading

    from django.db import connections

    errors: list[str] = []

    def run():
        try:
            target()
        except Exception as exc:  # noqa: BLE001  reported by the test
            errors.append(repr(exc))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_file_delete_and_a_confirmation_do_not_deadlock(org_a, monkeypatch):
    # The delete holds the counter row (its trigger) and, at COMMIT, checks its audit row's
    # foreign key to the organization (FOR KEY SHARE); the confirmation holds the quota lock
    # on the organization and waits for the counter row. With a plain FOR UPDATE as the quota
    # lock, PostgreSQL killed one of them as a deadlock.
    import threading
    import time

    from accounts.identity import system_identity
    from uploads import services
    from uploads.models import FileStatus

    victim = _file(org_a, "old.bin", 10)
    victim.save(force_insert=True)
    pending = _file(org_a, "new.bin", None, confirmed=False)
    pending.status = FileStatus.PENDING
    pending.save(force_insert=True)
    actor = system_identity(org_a)
    deleting = threading.Event()
    real_audit = services.audit_record

    def slow_audit(**kwargs):
        if kwargs.get("action", "").startswith("file.delete"):
            deleting.set()
            time.sleep(1.0)  # the delete's counter update is held; the confirmation queues behind it
        return real_audit(**kwargs)

    monkeypatch.setattr(services, "audit_record", slow_audit)
    delete, delete_errors = _threaded(lambda: services.file_delete(actor=actor, file=victim))
    assert deleting.wait(10)
    confirm, confirm_errors = _threaded(lambda: services.file_confirm(actor=actor, file=pending, size=5))
    delete.join(30)
    confirm.join(30)
    assert delete_errors == [] and confirm_errors == []
    assert not StoredFile.objects.filter(pk=victim.pk).exists()
    assert StoredFile.objects.get(pk=pending.pk).confirmed_at is not None
    assert _agree(org_a)[0] == (5, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_usage_recount_fix_waits_for_a_write_in_flight(org_a):
    # A delete takes no quota lock; the command locks the counter row, so it reads the
    # counter and the sum after the delete commits, not one before and one after.
    import threading
    import time

    keep, gone = fastsql.insert(_file(org_a, "keep.bin", 10)), fastsql.insert(_file(org_a, "gone.bin", 1000))
    StorageUsage.objects.filter(organization=org_a).update(bytes=1)  # drift to repair
    deleted = threading.Event()

    def delete():
        with transaction.atomic():
            StoredFile.objects.filter(pk=gone.pk).delete()  # the trigger holds the counter row
            deleted.set()
            time.sleep(1.0)

    thread, errors = _threaded(delete)
    assert deleted.wait(10)
    call_command("usage_recount", "--fix")
    thread.join(10)
    assert errors == []
    assert _agree(org_a)[0] == (10, 1) and StoredFile.objects.filter(pk=keep.pk).exists()


def test_the_counters_triggers_exist_after_the_migrations():
    # SQLite remakes a table to alter one of its columns, and the remade table has no
    # triggers: a migration altering StoredFile must make them again (uploads 0006 does).
    table = StoredFile._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table])
        names = {name for (name,) in cursor.fetchall()}
    assert {"storedfile_usage_insert", "storedfile_usage_update", "storedfile_usage_delete"} <= names
