"""The suppression list is hash-partitioned on the address hash (suppression/partitioning.py):
the migration builds it, `manage.py partition_suppressions` changes the number of partitions,
and neither loses an entry, an id or its history, nor stops checks while it copies."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections, transaction
from django.test import override_settings

from suppression import partitioning, sql
from suppression.checks import check_suppression_partitions
from suppression.models import Suppression, SuppressionEvent
from suppression.services import lift
from tests.support import run_manage, same_database_env, service_env

TABLE = Suppression._meta.db_table
READ = "suppression:read"


def query(sql_text: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql_text, params)
        return cursor.fetchall()


def partitions_of(table: str = TABLE) -> list[str]:
    return [
        name
        for (name,) in query(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass "
            "ORDER BY 1",
            [table],
        )
    ]


def entries() -> list[tuple]:
    return list(
        Suppression.objects.order_by("id").values_list(
            "id", "address_hash", "scope_key", "address", "reason", "lifted_at", "created_at"
        )
    )


def history() -> list[tuple]:
    return list(
        SuppressionEvent.objects.order_by("id").values_list(
            "id", "suppression_id", "action", "reason", "txid"
        )
    )


def fill(suppress, count: int, prefix: str = "user") -> list[Suppression]:
    return [suppress(f"{prefix}{i}@example.com", "unsubscribe") for i in range(count)]


# --- the table the migration builds --------------------------------------------------------------


def test_the_list_is_hash_partitioned_on_the_address_hash(postgresql):
    [(strategy, key)] = query(
        """SELECT pt.partstrat, a.attname FROM pg_partitioned_table AS pt
           JOIN pg_attribute AS a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
           WHERE pt.partrelid = %s::regclass""",
        [TABLE],
    )
    assert (strategy, key) == ("h", "address_hash")
    assert len(partitions_of()) == settings.SUPPRESSION_PARTITIONS == 16
    assert partitioning.partition_count(connection) == settings.SUPPRESSION_PARTITIONS
    constraints = dict(
        query(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
            [TABLE],
        )
    )
    # The hash is in the primary key (PostgreSQL requires the partition key there); the one
    # row per key that ON CONFLICT relies on keeps its name.
    assert constraints == {
        f"{TABLE}_pkey": "PRIMARY KEY (id, address_hash)",
        "suppression_one_row_per_key": "UNIQUE (address_hash, scope_key)",
    }
    # No foreign key may point at a partitioned table's id: the history's is Django's alone.
    assert query("SELECT conname FROM pg_constraint WHERE confrelid = %s::regclass", [TABLE]) == []
    [(sequence,)] = query("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    assert sequence == f"public.{TABLE}_id_seq"


def test_every_index_of_the_list_is_kept(postgresql):
    indexes = {
        name: definition.split(" USING ")[1]
        for name, definition in query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [TABLE]
        )
    }
    created_at = next(n for n in indexes if n.startswith(f"{TABLE}_created_at"))
    tenant_reason = next(n for n in indexes if n.startswith("suppression_tenant_"))
    assert indexes == {
        f"{TABLE}_pkey": "btree (id, address_hash)",
        "suppression_one_row_per_key": "btree (address_hash, scope_key)",
        "suppression_stream_set": "btree (stream_id) WHERE (stream_id IS NOT NULL)",
        "suppression_topic_set": "btree (topic_id) WHERE (topic_id IS NOT NULL)",
        tenant_reason: "btree (tenant_id, reason)",
        created_at: "btree (created_at)",
    }


def test_entries_spread_over_the_partitions(postgresql, suppress):
    fill(suppress, 96)
    counts = dict(query(f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1"))
    assert sorted(counts) == partitions_of()  # every partition holds some
    assert max(counts.values()) <= 96 / 6


def test_a_check_reads_only_the_partition_of_its_hash(postgresql, suppress, api_client):
    entry = suppress("pat@example.com", "unsubscribe", scope="commercial")
    # The entry and the pending opt-outs are looked up by the same hash.
    params = [bytes(entry.address_hash)] * 2
    plan = " ".join(line for (line,) in query("EXPLAIN " + sql.SINGLE_SQL, params))
    touched = {word for word in plan.split() if word.startswith(f"{TABLE}_p")}
    [(home,)] = query(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [entry.id])
    assert touched == {home}, plan
    answer = api_client(READ).get(
        "/api/v1/suppressions/check", {"address": "pat@example.com", "stream": "marketing"}
    )
    assert answer.json()["suppressed"] is True


def test_writes_on_the_partitioned_list_keep_one_row_per_key(postgresql, suppress):
    first = suppress("pat@example.com", "unsubscribe", scope="commercial")
    again = suppress("pat@example.com", "hard_bounce", scope="commercial")  # a new reason
    assert again.pk == first.pk
    lift(suppression=again, note="asked by phone")
    assert Suppression.objects.get(pk=first.pk).lifted_at is not None
    readded = suppress("pat@example.com", "unsubscribe", scope="commercial")  # added again
    assert readded.pk == first.pk
    row = Suppression.objects.get(pk=first.pk)
    assert (row.reason, row.lifted_at, row.address) == ("unsubscribe", None, "pat@example.com")
    assert Suppression.objects.filter(address_hash=first.address_hash).count() == 1
    actions = list(row.events.order_by("id").values_list("action", flat=True))
    assert actions == ["add", "reason", "lift", "readd"]


# --- the rebuild ---------------------------------------------------------------------------------


def test_a_rebuild_keeps_every_entry_id_and_history_and_the_ids_go_on(rebuilt_back, suppress):
    rows = fill(suppress, 40)
    lift(suppression=rows[0], note="asked to be mailed again")
    suppress("user0@example.com", "unsubscribe")  # added again: a third event
    suppress("user1@example.com", "complaint")  # a new reason
    before, events = entries(), history()

    plain = partitioning.rebuild(connection, partitions=None)
    assert (plain.before, plain.after, plain.rows) == (16, None, 40)
    assert partitioning.partition_count(connection) is None
    assert entries() == before and history() == events

    # The migration's case: a plain, populated list becomes partitioned.
    done = partitioning.rebuild(connection, partitions=16)
    assert (done.before, done.after, done.rows) == (None, 16, 40)
    assert len(partitions_of()) == 16
    assert entries() == before
    assert history() == events
    orphans = SuppressionEvent.objects.exclude(suppression_id__in=Suppression.objects.values("id"))
    assert not orphans.exists()

    newest = suppress("new@example.com", "unsubscribe")
    assert newest.pk == max(row[0] for row in before) + 1
    lift(suppression=newest, note="a test address")
    assert Suppression.objects.get(pk=newest.pk).lifted_at is not None


def test_the_command_rebuilds_the_list_with_another_number_of_partitions(rebuilt_back, suppress):
    fill(suppress, 30)
    before, events = entries(), history()
    out = io.StringIO()
    call_command("partition_suppressions", "--partitions", "5", stdout=out)
    assert "rebuilt suppression_suppression as 5 hash partitions (was 16" in out.getvalue()
    assert "30 entries copied" in out.getvalue()
    assert partitions_of() == [f"{TABLE}_p{i}" for i in (0, 1, 2, 3, 4)]
    assert entries() == before and history() == events
    # The partitions' own indexes are named after them, not after the table built on the way.
    names = query(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
        [f"{TABLE}_p3"],
    )
    assert names and all(name.startswith(f"{TABLE}_p3_") for (name,) in names)

    out = io.StringIO()
    call_command("partition_suppressions", "--partitions", "5", stdout=out)
    assert "already has 5 hash partitions: nothing to do" in out.getvalue()

    # Without --partitions: back to SUPPRESSION_PARTITIONS.
    out = io.StringIO()
    call_command("partition_suppressions", stdout=out)
    assert len(partitions_of()) == settings.SUPPRESSION_PARTITIONS
    assert entries() == before
    suppress("after@example.com", "unsubscribe")
    assert Suppression.objects.count() == 31


def test_checks_read_on_while_the_rows_are_copied_and_writes_wait(
    rebuilt_back, suppress, api_client
):
    fill(suppress, 20)
    client = api_client(READ)
    copied, release = threading.Event(), threading.Event()
    outcome = {}

    def hold_after_copy():
        copied.set()
        release.wait(30)

    def rebuild():
        try:
            outcome["done"] = partitioning.rebuild(
                connection, partitions=4, after_copy=hold_after_copy
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            outcome["error"] = exc
        finally:
            connections.close_all()

    def write():
        try:
            outcome["written"] = suppress("waited@example.com", "unsubscribe")
        finally:
            connections.close_all()

    rebuilding = threading.Thread(target=rebuild)
    rebuilding.start()
    writer = None
    try:
        assert copied.wait(30), outcome
        # A check, as a relay makes it, while the rebuild holds the table: answered at once.
        began = time.monotonic()
        answer = client.get(
            "/api/v1/suppressions/check", {"address": "user7@example.com", "stream": "marketing"}
        )
        assert answer.status_code == 200 and answer.json()["suppressed"] is True
        assert time.monotonic() - began < 2
        assert Suppression.objects.count() == 20

        # A write waits for the rebuild ...
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            suppress("impatient@example.com", "unsubscribe")
        # ... and goes through once it is done, into the new table.
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)
        assert "written" not in outcome
    finally:
        release.set()
        rebuilding.join(30)
        if writer is not None:
            writer.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["done"].after == 4 and outcome["done"].rows == 20
    assert outcome["done"].reads_held_seconds < 2
    assert len(partitions_of()) == 4
    assert outcome["written"].pk is not None
    assert Suppression.objects.filter(address="waited@example.com").count() == 1
    assert Suppression.objects.count() == 21


def test_a_writer_that_read_the_list_first_is_cancelled_not_the_rebuild(rebuilt_back, suppress):
    """A transaction that read the list and then waits to write it holds the lock the swap
    needs, and waits for the rebuild: one of the two must give way, and it is the writer's
    statement (as in a deadlock), not the whole copy."""
    fill(suppress, 10)
    copied, release = threading.Event(), threading.Event()
    outcome = {}

    def hold_after_copy():
        copied.set()
        release.wait(30)

    def rebuild():
        try:
            outcome["done"] = partitioning.rebuild(
                connection, partitions=3, after_copy=hold_after_copy, lock_wait_seconds=20
            )
        finally:
            connections.close_all()

    def read_then_write():
        try:
            with transaction.atomic():
                outcome["pid"] = connection.connection.info.backend_pid
                Suppression.objects.filter(address="user1@example.com").exists()
                suppress("late@example.com", "unsubscribe")
        except OperationalError as exc:
            outcome["writer_error"] = str(exc)
        finally:
            connections.close_all()

    rebuilding = threading.Thread(target=rebuild)
    rebuilding.start()
    writer = threading.Thread(target=read_then_write)
    try:
        assert copied.wait(30)
        writer.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = query(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                [outcome.get("pid", 0)],
            )
            if waiting == [("Lock",)]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the writer never waited for the rebuild")
    finally:
        release.set()
        rebuilding.join(30)
        writer.join(30)
    assert "canceling statement" in outcome["writer_error"]
    assert outcome["done"].cancelled == 1
    assert len(partitions_of()) == 3
    assert Suppression.objects.count() == 10


def test_a_mirror_export_across_a_rebuild_never_sees_an_empty_list(rebuilt_back, suppress):
    """A REPEATABLE READ snapshot taken before the swap would see the new table empty; the
    export locks the list before its snapshot, so the swap waits for it instead."""
    from suppression import mirror

    fill(suppress, 12)
    copied, release, snapshot_taken, read_now = (threading.Event() for _ in range(4))
    outcome = {}

    def hold_after_copy():
        copied.set()
        release.wait(30)

    def rebuild():
        try:
            outcome["done"] = partitioning.rebuild(
                connection, partitions=2, after_copy=hold_after_copy
            )
            outcome["done_at"] = time.monotonic()
        finally:
            connections.close_all()

    def export():
        try:
            with mirror.consistent_snapshot():
                mirror.feed_position()  # the export's first read: the snapshot is taken
                snapshot_taken.set()
                read_now.wait(30)
                outcome["exported"] = Suppression.objects.count()
                outcome["exported_at"] = time.monotonic()
        finally:
            connections.close_all()

    rebuilding = threading.Thread(target=rebuild)
    exporting = threading.Thread(target=export)
    rebuilding.start()
    try:
        assert copied.wait(30)
        exporting.start()
        assert snapshot_taken.wait(30)
        release.set()
        time.sleep(1.5)  # the rebuild's swap comes while the export is still reading
    finally:
        release.set()
        read_now.set()
        exporting.join(30)
        rebuilding.join(30)
    assert outcome["exported"] == 12
    assert outcome["done"].after == 2
    assert outcome["done_at"] > outcome["exported_at"]  # the swap waited for the export


def test_the_rebuild_keeps_triggers_and_grants(rebuilt_back, suppress):
    role = "suppression_partitioning_test_reader"
    fill(suppress, 3)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role}")
        cursor.execute(f"GRANT SELECT ON {TABLE} TO {role}")
        cursor.execute(
            "CREATE FUNCTION suppression_test_touch() RETURNS trigger AS $$ "
            "BEGIN NEW.evidence_note := 'touched'; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER suppression_test_touch BEFORE UPDATE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION suppression_test_touch()"
        )
    try:
        partitioning.rebuild(connection, partitions=2)
        assert query("SELECT has_table_privilege(%s, %s, 'SELECT')", [role, TABLE]) == [(True,)]
        assert query("SELECT has_table_privilege(%s, %s, 'INSERT')", [role, TABLE]) == [(False,)]
        Suppression.objects.filter(address="user1@example.com").update(evidence_note="x")
        assert Suppression.objects.get(address="user1@example.com").evidence_note == "touched"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS suppression_test_touch ON {TABLE}")
            cursor.execute("DROP FUNCTION IF EXISTS suppression_test_touch()")
            cursor.execute(f"REVOKE ALL ON {TABLE} FROM {role}")
            cursor.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize(
    ("make", "drop", "words"),
    [
        (
            f"CREATE VIEW suppression_test_view AS SELECT id FROM {TABLE}",
            "DROP VIEW suppression_test_view",
            "views read it (suppression_test_view)",
        ),
        (
            "CREATE TABLE suppression_test_refs (sid bigint, h bytea, "
            f"FOREIGN KEY (sid, h) REFERENCES {TABLE} (id, address_hash))",
            "DROP TABLE suppression_test_refs",
            "foreign keys point at it (suppression_test_refs.",
        ),
    ],
)
def test_a_rebuild_that_would_break_a_dependent_changes_nothing(
    rebuilt_back, suppress, make, drop, words
):
    fill(suppress, 3)
    before = entries()
    with connection.cursor() as cursor:
        cursor.execute(make)
    try:
        with pytest.raises(partitioning.PartitioningError, match=re.escape(words)):
            partitioning.rebuild(connection, partitions=4)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(drop)
    assert len(partitions_of()) == 16
    assert entries() == before


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--partitions", "0"], "--partitions must be 1 to 1024, got 0"),
        (["--partitions", "5000"], "--partitions must be 1 to 1024, got 5000"),
        (["--partitions", "many"], "invalid int value: 'many'"),
    ],
)
def test_the_command_refuses_a_bad_number_and_changes_nothing(postgresql, args, words):
    with pytest.raises(CommandError, match=re.escape(words)) as refused:
        call_command("partition_suppressions", *args)
    if not words.startswith("invalid"):  # argparse's own refusal is status 2 only in a shell
        assert refused.value.returncode == 2
    assert len(partitions_of()) == 16


def test_the_command_exits_non_zero_with_the_reason(postgresql):
    result = run_manage("partition_suppressions", "--partitions", "0", env=same_database_env())
    assert result.returncode == 2
    assert "--partitions must be 1 to 1024, got 0" in result.stderr.decode()


def test_the_command_explains_that_sqlite_has_no_partitions(tmp_path):
    env = service_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = run_manage("partition_suppressions", "--partitions", "4", env=env)
    assert result.returncode == 1
    assert "partitioned on PostgreSQL only; this database is sqlite" in result.stderr.decode()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "SUPPRESSION_PARTITIONS must be 1 to 1024, got 0"),
        (100_000, "SUPPRESSION_PARTITIONS must be 1 to 1024, got 100000"),
    ],
)
def test_an_absurd_number_of_partitions_is_refused_at_start(value, words):
    with override_settings(SUPPRESSION_PARTITIONS=value):
        [error] = check_suppression_partitions(None)
    assert (error.id, error.msg) == ("compliance.E008", words)


def test_manage_py_refuses_to_start_with_no_partitions():
    result = run_manage("check", env=service_env(SUPPRESSION_PARTITIONS="0"))
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert "(compliance.E008) SUPPRESSION_PARTITIONS must be 1 to 1024, got 0" in stderr


def test_the_default_number_of_partitions_passes_the_checks():
    assert settings.SUPPRESSION_PARTITIONS == 16
    assert check_suppression_partitions(None) == []


def test_a_batch_check_leaves_the_planner_settings_of_its_transaction_alone(postgresql, suppress):
    """The batch is planned as index probes only (suppression/sql.py); the caller's transaction
    (here the test's) goes on with its own settings."""
    from suppression import rules

    entry = suppress("pat@example.com", "unsubscribe", scope="commercial")
    keys = rules.BlockingKeys(any_reason=(entry.scope_key,), never_mail_only=(), never_mail=())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    [(jit,)] = query("SHOW jit")
    rows = sql.blocking_rows([bytes(entry.address_hash), b"\0" * 32], keys)
    assert [(r.address_hash, r.scope_key) for r in rows] == [
        (bytes(entry.address_hash), entry.scope_key)
    ]
    settings_now = query(
        "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin'), "
        "current_setting('jit'), current_setting('plan_cache_mode')"
    )
    assert settings_now == [("on", "off", jit, "force_custom_plan")]
