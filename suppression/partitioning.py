"""The suppression list as a hash-partitioned table, and the one routine that builds it.

On PostgreSQL the list is `PARTITION BY HASH (address_hash)` into `SUPPRESSION_PARTITIONS`
partitions: a check looks up one hash, so PostgreSQL reads one partition, and each partition's
indexes stay small enough to keep in memory and vacuum on their own. The migration that first
partitions the list (0005) and `manage.py partition_suppressions`, which changes the number of
partitions of an existing list, both call `rebuild`.

`rebuild` copies the table into a new one of the wanted shape in one transaction, without
blocking checks for long:

1. `LOCK TABLE ... IN EXCLUSIVE MODE` on the table: plain reads (every check) go on; writes,
   including SELECT ... FOR UPDATE, wait. (SHARE mode would let FOR UPDATE through, and a writer
   holding its row lock while waiting to insert would deadlock with step 3.)
2. Create the new table with the same columns, defaults and identity, its partitions, copy the
   rows, build the keys, indexes, foreign keys, triggers, grants and statistics.
3. `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`, each attempt bounded by a short lock_timeout so
   that checks queue behind it for at most that long, then rename the old table away and the
   new one into place: catalog changes only, held for milliseconds. The old table is dropped
   after the commit, when nothing reads it any more.

A statement waiting on the table during this resolves its name again once it gets the lock, so
it reads or writes the new table. A REPEATABLE READ transaction that took its snapshot before
the commit would see the new table empty (PostgreSQL's caveat for every table rewrite):
the mirror export locks the table before its snapshot for that reason (suppression/mirror.py).

The primary key of a partitioned table must contain the partition key: it is (id, address_hash)
in the database, while Django keeps `id` as the model's primary key (ids come from one
sequence, so they stay unique). For the same reason no foreign key can point at the table's id:
the history's (SuppressionEvent.suppression) is kept by Django alone (`db_constraint=False`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import OperationalError, transaction

TABLE = "suppression_suppression"
PARTITION_KEY = "address_hash"
# More than this costs planning time for every query without the hash (the admin's lists, the
# change feed's lookups by id) and buys nothing: 1024 partitions of ten million rows each is a
# list of ten billion addresses.
MAX_PARTITIONS = 1024

# The new table is built under this name, its partitions as NEW_p0, NEW_p1, ..., and renamed
# into place at the end (the old table's partitions hold the final names until then); the old
# table is renamed to RETIRED then, and dropped once the new one is in place.
NEW = f"{TABLE}_rebuild"
RETIRED = f"{TABLE}_retired"

# Readers queue behind the final ACCESS EXCLUSIVE request, so each attempt waits at most this
# long; kept under PostgreSQL's default deadlock_timeout (1 s), so that a writer caught between
# its read and its write is found by us (see _cancel_deadlocked) rather than by its own check.
SWAP_LOCK_TIMEOUT_MS = 500
# The first lock lets reads through but queues new writes behind it: it too waits only so long
# per attempt for the writes already under way.
FIRST_LOCK_TIMEOUT_MS = 1000
# How long to keep trying for either lock before giving up (nothing changed then). While a
# transaction that has held the table longer than one attempt is still running, no attempt is
# made: a long export would otherwise have checks queue behind attempt after attempt.
LOCK_WAIT_SECONDS = 300
LOCK_PAUSE_SECONDS = 0.2

_LOCK_NOT_AVAILABLE = "55P03"
_DEADLOCK_DETECTED = "40P01"


class PartitioningError(Exception):
    """The table cannot be rebuilt as asked; nothing was changed."""


@dataclass(frozen=True)
class Rebuilt:
    before: int | None  # partitions before; None: a plain table
    after: int | None
    rows: int
    writes_held_seconds: float  # from the first lock to the commit: writes waited this long
    reads_held_seconds: float  # the swap under ACCESS EXCLUSIVE: checks waited at most this long
    cancelled: int  # writers cancelled because they held the table while waiting for us
    retired_left: bool = False  # the old table could not be dropped yet (see _drop_retired)


def describe(partitions: int | None) -> str:
    if partitions is None:
        return "a plain table"
    return f"{partitions} hash partition" + ("" if partitions == 1 else "s")


def check_partitions(value, *, name: str = "the number of partitions") -> int:
    """`value` as a number of partitions; raises PartitioningError, naming `name`, when it is
    not one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PartitioningError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= value <= MAX_PARTITIONS:
        raise PartitioningError(f"{name} must be 1 to {MAX_PARTITIONS}, got {value}")
    return value


def partition_count(connection) -> int | None:
    """How many hash partitions the table has on this connection's database; None when it is a
    plain table. Raises PartitioningError on a database other than PostgreSQL."""
    _require_postgresql(connection)
    with connection.cursor() as cursor:
        return _layout(cursor, TABLE)


def rebuild(
    connection,
    *,
    partitions: int | None,
    after_copy: Callable[[], None] | None = None,
    swap_lock_timeout_ms: int = SWAP_LOCK_TIMEOUT_MS,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
) -> Rebuilt:
    """Rebuild the suppression table as `partitions` hash partitions on `address_hash` (None: a
    plain table, for the migration's way back), keeping every row, id and the id sequence.

    `after_copy` is called once the rows are copied, with the table still locked against
    writes (tests hold the conversion there). Raises PartitioningError, and changes nothing,
    when the database is not PostgreSQL, the number is out of range, or something depends on
    the table that a rebuild would break (see `_refuse_dependents`).
    """
    _require_postgresql(connection)
    if partitions is not None:
        check_partitions(partitions)
    with connection.cursor() as cursor:
        _layout(cursor, TABLE)  # a clear error when there is no table to lock
    if not _drop_retired(connection):  # what an interrupted rebuild left
        raise PartitioningError(
            f"{RETIRED}, left by an earlier rebuild, could not be dropped: a long transaction "
            "holds a table it refers to; nothing was changed, try again later"
        )
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        _lock(connection, cursor, "EXCLUSIVE", FIRST_LOCK_TIMEOUT_MS, lock_wait_seconds)
        locked_at = time.monotonic()
        before = _layout(cursor, TABLE)
        _refuse_dependents(cursor, partitioned=partitions is not None)
        plan = _read_table(cursor)

        _create(cursor, plan, partitions)
        rows = _copy(cursor, plan)
        if after_copy is not None:
            after_copy()
        renames = _build_keys_and_indexes(cursor, plan, partitioned=partitions is not None)
        _copy_attachments(cursor, plan, partitions)
        cursor.execute(f"ANALYZE {_q(NEW)}")
        _add_foreign_keys(cursor, plan)
        swap = _swap_statements(cursor, plan, partitions, renames)

        cancelled = _lock(
            connection,
            cursor,
            "ACCESS EXCLUSIVE",
            swap_lock_timeout_ms,
            lock_wait_seconds,
            clear_deadlocks=True,
        )
        swap_began = time.monotonic()
        cursor.execute(";\n".join(swap))  # one round trip
    done = time.monotonic()
    retired_left = not _drop_retired(connection)
    return Rebuilt(
        before=before,
        after=partitions,
        rows=rows,
        writes_held_seconds=done - locked_at,
        reads_held_seconds=done - swap_began,
        cancelled=cancelled,
        retired_left=retired_left,
    )


# --- reading the table --------------------------------------------------------------------------


@dataclass
class _Plan:
    columns: list[str]  # insertable columns, in order
    identity: bool  # id is an identity column (Django); else a serial with an owned sequence
    sequence: str  # the id's sequence, schema-qualified
    constraints: list[tuple[str, str, str, list[str]]]  # (name, type p/u/f, definition, columns)
    indexes: list[tuple[str, str, list[str] | None]]  # (name, definition, columns if unique)
    triggers: list[str]  # CREATE TRIGGER ... statements
    grants: list[tuple[str, str, bool]]  # (grantee or PUBLIC, privilege, with grant option)
    owner: str
    reloptions: list[str]
    comment: str | None
    statistics: list[tuple[str, int]]  # (column, statistics target) set on the old table


def _read_table(cursor) -> _Plan:
    cursor.execute(
        """SELECT attname FROM pg_attribute
           WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
             AND attgenerated = '' ORDER BY attnum""",
        [TABLE],
    )
    columns = [name for (name,) in cursor.fetchall()]
    cursor.execute(
        """SELECT attidentity <> '', pg_get_serial_sequence(%s, 'id') FROM pg_attribute
           WHERE attrelid = %s::regclass AND attname = 'id'""",
        [TABLE, TABLE],
    )
    identity, sequence = cursor.fetchone()
    if sequence is None:
        raise PartitioningError(f"{TABLE}.id has no sequence: the table is not Django's")

    cursor.execute(
        """SELECT k.conname, k.contype, pg_get_constraintdef(k.oid),
                  ARRAY(SELECT a.attname FROM unnest(k.conkey) AS c(n)
                        JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = c.n)
           FROM pg_constraint AS k
           WHERE k.conrelid = %s::regclass AND k.contype IN ('p', 'u', 'f', 'x')
           ORDER BY k.contype DESC, k.conname""",
        [TABLE],
    )
    constraints = [(n, t, d, list(c)) for n, t, d, c in cursor.fetchall()]
    if any(kind == "x" for _, kind, _, _ in constraints):
        raise PartitioningError(f"{TABLE} has an exclusion constraint: rebuild it by hand")

    # Indexes not behind a constraint (checks the constraints cover are rebuilt with them).
    cursor.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid),
                  CASE WHEN i.indisunique THEN ARRAY(
                      SELECT a.attname FROM unnest(i.indkey) AS k(n)
                      JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.n)
                  END
           FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
           WHERE i.indrelid = %s::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k
                             WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
           ORDER BY c.relname""",
        [TABLE],
    )
    indexes = [(n, d, list(c) if c is not None else None) for n, d, c in cursor.fetchall()]

    cursor.execute(
        """SELECT pg_get_triggerdef(oid) FROM pg_trigger
           WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname""",
        [TABLE],
    )
    triggers = [d for (d,) in cursor.fetchall()]

    cursor.execute(
        """SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
                  a.privilege_type, a.is_grantable
           FROM pg_class AS c, aclexplode(c.relacl) AS a
           LEFT JOIN pg_roles AS r ON r.oid = a.grantee
           WHERE c.oid = %s::regclass AND a.grantee <> c.relowner
           ORDER BY 1, 2""",
        [TABLE],
    )
    grants = list(cursor.fetchall())

    # Storage options live on the partitions of a partitioned table: read the first one's.
    cursor.execute(
        """SELECT quote_ident(pg_get_userbyid(c.relowner)),
                  coalesce((SELECT p.reloptions FROM pg_inherits AS h
                            JOIN pg_class AS p ON p.oid = h.inhrelid
                            WHERE h.inhparent = c.oid ORDER BY p.relname LIMIT 1),
                           c.reloptions, '{}'),
                  obj_description(c.oid, 'pg_class')
           FROM pg_class AS c WHERE c.oid = %s::regclass""",
        [TABLE],
    )
    owner, reloptions, comment = cursor.fetchone()
    cursor.execute(
        """SELECT attname, attstattarget FROM pg_attribute
           WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
             AND attstattarget >= 0 ORDER BY attnum""",
        [TABLE],
    )
    statistics = list(cursor.fetchall())
    return _Plan(
        columns=columns,
        identity=identity,
        sequence=sequence,
        constraints=constraints,
        indexes=indexes,
        triggers=triggers,
        grants=grants,
        owner=owner,
        reloptions=list(reloptions),
        comment=comment,
        statistics=statistics,
    )


def _layout(cursor, table: str) -> int | None:
    cursor.execute(
        """SELECT c.relkind, pt.partstrat,
                  (SELECT array_agg(a.attname) FROM unnest(pt.partattrs) AS k(n)
                   JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.n),
                  (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)
           FROM pg_class AS c LEFT JOIN pg_partitioned_table AS pt ON pt.partrelid = c.oid
           WHERE c.oid = to_regclass(%s)""",
        [table],
    )
    found = cursor.fetchone()
    if found is None:
        raise PartitioningError(f"there is no table {table}: run `manage.py migrate` first")
    kind, strategy, keys, count = found
    if kind == "r":
        return None
    if kind != "p" or strategy != "h" or list(keys or []) != [PARTITION_KEY]:
        raise PartitioningError(
            f"{table} is partitioned other than by hash of {PARTITION_KEY}: rebuild it by hand"
        )
    return count


def _refuse_dependents(cursor, *, partitioned: bool) -> None:
    """Refuse what a rebuild would break: views and rules read the old table by its OID (the
    drop would fail), a foreign key pointing at the table needs a unique key on its id, which a
    hash-partitioned table cannot have, row security policies and publications would silently
    stay behind with the old table."""
    problems = []
    cursor.execute(
        """SELECT DISTINCT v.oid::regclass::text FROM pg_depend AS d
           JOIN pg_rewrite AS w ON w.oid = d.objid JOIN pg_class AS v ON v.oid = w.ev_class
           WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
             AND d.refobjid = %s::regclass AND v.oid <> %s::regclass ORDER BY 1""",
        [TABLE, TABLE],
    )
    views = [v for (v,) in cursor.fetchall()]
    if views:
        problems.append(f"views read it ({', '.join(views)}): drop them first, recreate after")
    cursor.execute(
        """SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint
           WHERE contype = 'f' AND confrelid = %s::regclass AND conrelid <> confrelid
             AND conparentid = 0 ORDER BY 1""",
        [TABLE],
    )
    keys = [k for (k,) in cursor.fetchall()]
    if keys:
        what = "a partitioned table's id" if partitioned else "the table"
        problems.append(
            f"foreign keys point at it ({', '.join(keys)}); one to {what} cannot be kept: "
            "drop them first (Django: db_constraint=False)"
        )
    cursor.execute("SELECT count(*) FROM pg_policy WHERE polrelid = %s::regclass", [TABLE])
    if cursor.fetchone()[0]:
        problems.append("it has row security policies: drop them first, recreate after")
    cursor.execute(
        """SELECT p.pubname FROM pg_publication_rel AS r
           JOIN pg_publication AS p ON p.oid = r.prpubid
           WHERE r.prrelid = %s::regclass ORDER BY 1""",
        [TABLE],
    )
    publications = [p for (p,) in cursor.fetchall()]
    if publications:
        problems.append(
            f"it is in publications ({', '.join(publications)}): remove it first, add it back "
            "after (WITH publish_via_partition_root = true)"
        )
    if problems:
        raise PartitioningError(f"{TABLE} cannot be rebuilt: " + "; ".join(problems))


# --- building the new table ---------------------------------------------------------------------


def _create(cursor, plan: _Plan, partitions: int | None) -> None:
    # LIKE copies the columns, NOT NULL, defaults, the identity (with a new sequence of the same
    # options), CHECK constraints, storage, compression, column comments and extended
    # statistics; keys and indexes are built after the copy, which is faster than keeping them
    # up to date row by row.
    shape = f" PARTITION BY HASH ({_q(PARTITION_KEY)})" if partitions is not None else ""
    options = _with(plan.reloptions) if partitions is None else ""
    cursor.execute(
        f"CREATE TABLE {_q(NEW)} (LIKE {_q(TABLE)} INCLUDING DEFAULTS INCLUDING IDENTITY "
        "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS "
        f"INCLUDING STATISTICS INCLUDING GENERATED){shape}{options}"
    )
    for remainder in range(partitions or 0):
        cursor.execute(
            f"CREATE TABLE {_q(f'{NEW}_p{remainder}')} PARTITION OF {_q(NEW)} "
            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})"
            f"{_with(plan.reloptions)}"
        )


def _copy(cursor, plan: _Plan) -> int:
    columns = ", ".join(_q(c) for c in plan.columns)
    overriding = " OVERRIDING SYSTEM VALUE" if plan.identity else ""
    cursor.execute(
        f"INSERT INTO {_q(NEW)} ({columns}){overriding} SELECT {columns} FROM {_q(TABLE)}"
    )
    return cursor.rowcount


_INDEX_DEF = re.compile(
    r'^CREATE (?P<unique>UNIQUE )?INDEX (?:"[^"]+"|\S+) ON (?:ONLY )?(?:"[^"]+"|\S+) '
    r"(?P<rest>USING .+)$",
    re.DOTALL,
)


def _build_keys_and_indexes(cursor, plan: _Plan, *, partitioned: bool) -> list[tuple[str, str]]:
    """Build the keys and indexes of the old table on the new one. Index names
    are unique in the schema, so indexes and keys are built under temporary names: returns the
    (ALTER statement prefix, final name) renames that put the old names back after the swap."""
    renames = []
    for n, (name, kind, definition, columns) in enumerate(plan.constraints):
        if kind == "f":
            continue  # _add_foreign_keys, last
        temporary = f"{NEW}_k{n}"
        if kind == "p":
            keys = [c for c in columns if c != PARTITION_KEY]
            keys += [PARTITION_KEY] if partitioned else []
            definition = f"PRIMARY KEY ({', '.join(_q(c) for c in keys)})"
        elif partitioned and PARTITION_KEY not in columns:
            raise PartitioningError(
                f"the unique constraint {name} of {TABLE} does not contain {PARTITION_KEY}: "
                "a partitioned table can only keep a unique key that contains its partition key"
            )
        cursor.execute(f"ALTER TABLE {_q(NEW)} ADD CONSTRAINT {_q(temporary)} {definition}")
        renames.append((f"ALTER TABLE {_q(TABLE)} RENAME CONSTRAINT {_q(temporary)}", name))
    for n, (name, definition, unique_columns) in enumerate(plan.indexes):
        if partitioned and unique_columns is not None and PARTITION_KEY not in unique_columns:
            raise PartitioningError(
                f"the unique index {name} of {TABLE} does not contain {PARTITION_KEY}"
            )
        parts = _INDEX_DEF.match(definition)
        if parts is None:
            raise PartitioningError(f"cannot read the definition of index {name}: {definition}")
        temporary = f"{NEW}_i{n}"
        cursor.execute(
            f"CREATE {parts['unique'] or ''}INDEX {_q(temporary)} ON {_q(NEW)} {parts['rest']}"
        )
        renames.append((f"ALTER INDEX {_q(temporary)} RENAME", name))
    return renames


def _add_foreign_keys(cursor, plan: _Plan) -> None:
    """The old table's foreign keys (to tenants, streams, topics, content types), under their
    names (constraint names are per table). Each takes a SHARE ROW EXCLUSIVE lock on the table
    it points at, which holds off writes to it (not reads) until the commit: added last."""
    for name, kind, definition, _ in plan.constraints:
        if kind == "f":
            cursor.execute(f"ALTER TABLE {_q(NEW)} ADD CONSTRAINT {_q(name)} {definition}")


def _copy_attachments(cursor, plan: _Plan, partitions: int | None) -> None:
    """Triggers, owner, grants, table comment and statistics targets of the old table."""
    old_name = re.compile(rf' ON (?:\S+\.)?"?{re.escape(TABLE)}"? ')
    for trigger in plan.triggers:
        definition, found = old_name.subn(f" ON {_q(NEW)} ", trigger, count=1)
        if not found:
            raise PartitioningError(f"cannot read the trigger definition: {trigger}")
        cursor.execute(definition)
    cursor.execute("SELECT quote_ident(current_user)")
    if cursor.fetchone()[0] != plan.owner:
        for table in [NEW] + [f"{NEW}_p{i}" for i in range(partitions or 0)]:
            cursor.execute(f"ALTER TABLE {_q(table)} OWNER TO {plan.owner}")
    for grantee, privilege, grantable in plan.grants:
        option = " WITH GRANT OPTION" if grantable else ""
        cursor.execute(f"GRANT {privilege} ON {_q(NEW)} TO {grantee}{option}")
    if plan.comment is not None:
        cursor.execute(f"COMMENT ON TABLE {_q(NEW)} IS %s", [plan.comment])
    for column, target in plan.statistics:
        cursor.execute(f"ALTER TABLE {_q(NEW)} ALTER COLUMN {_q(column)} SET STATISTICS {target}")


def _swap_statements(cursor, plan: _Plan, partitions: int | None, renames) -> list[str]:
    """The swap, as statements run in one go under the final lock: catalog changes only.

    The old table is renamed away, not dropped: dropping a big table's files takes a while at
    commit, and would hold the lock (and every check) that long; `_drop_retired` drops it after.
    Its names (table, keys, indexes, partitions, sequence) make way for the new table's.
    """
    cursor.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass "
        "ORDER BY 1",
        [TABLE],
    )
    old_partitions = [name for (name,) in cursor.fetchall()]
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [NEW])
    new_sequence = cursor.fetchone()[0]
    if plan.identity:
        # Nothing took an id since the table was locked against writes; the position is taken
        # last, under the final lock, all the same.
        statements = [
            f"SELECT setval('{new_sequence}', last_value, is_called) FROM {plan.sequence}",
            f"ALTER SEQUENCE {plan.sequence} RENAME TO {_q(f'{RETIRED}_id_seq')}",
            f"ALTER SEQUENCE {new_sequence} RENAME TO {plan.sequence.split('.')[-1]}",
        ]
    else:
        # A serial's sequence belongs to the old table: hand it over before the drop.
        statements = [f"ALTER SEQUENCE {plan.sequence} OWNED BY {_q(NEW)}.id"]
    statements.append(f"ALTER TABLE {_q(TABLE)} RENAME TO {_q(RETIRED)}")
    keys = [name for name, kind, _, _ in plan.constraints if kind != "f"]
    statements += [
        f"ALTER TABLE {_q(RETIRED)} RENAME CONSTRAINT {_q(name)} TO {_q(f'{RETIRED}_k{n}')}"
        for n, name in enumerate(keys)
    ]
    statements += [
        f"ALTER INDEX {_q(name)} RENAME TO {_q(f'{RETIRED}_i{n}')}"
        for n, (name, _, _) in enumerate(plan.indexes)
    ]
    statements += [
        f"ALTER TABLE {old} RENAME TO {_q(f'{RETIRED}_p{n}')}"
        for n, old in enumerate(old_partitions)
    ]
    statements.append(f"ALTER TABLE {_q(NEW)} RENAME TO {_q(TABLE)}")
    statements += [
        f"ALTER TABLE {_q(f'{NEW}_p{i}')} RENAME TO {_q(f'{TABLE}_p{i}')}"
        for i in range(partitions or 0)
    ]
    statements += [f"{statement} TO {_q(name)}" for statement, name in renames]
    return statements


def _drop_retired(connection) -> bool:
    """Drop the old table (left by the swap, or by a rebuild interrupted after it), then give
    the partitions' own indexes, named after the temporary partition names, names after their
    partitions; False when the old table is still there.

    Nothing reads the old table any more, but dropping its foreign keys takes an ACCESS
    EXCLUSIVE lock on each table they point at (tenants, streams, ...), which every check reads:
    each is dropped on its own, briefly, as the swap's lock is taken, before the table goes
    with its files. Renaming an index takes only a SHARE UPDATE EXCLUSIVE lock on it."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT conname FROM pg_constraint
               WHERE conrelid = to_regclass(%s) AND contype = 'f' ORDER BY 1""",
            [RETIRED],
        )
        keys = [name for (name,) in cursor.fetchall()]
    try:
        for name in keys:
            _briefly(connection, f"ALTER TABLE {_q(RETIRED)} DROP CONSTRAINT IF EXISTS {_q(name)}")
    except PartitioningError:
        return False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_q(RETIRED)}")
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, i.indexrelid::regclass::text FROM pg_inherits AS h
               JOIN pg_class AS c ON c.oid = h.inhrelid
               JOIN pg_index AS i ON i.indrelid = h.inhrelid
               WHERE h.inhparent = to_regclass(%s) ORDER BY 1, 2""",
            [TABLE],
        )
        for partition, index in cursor.fetchall():
            remainder = partition.rpartition("_p")[2]
            temporary = f"{NEW}_p{remainder}"
            if partition == f"{TABLE}_p{remainder}" and index.startswith(temporary):
                final = partition + index[len(temporary) :]
                cursor.execute(f"ALTER INDEX {_q(index)} RENAME TO {_q(final)}")
    return True


def _briefly(connection, statement: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
    """Run `statement` in a transaction of its own, waiting at most SWAP_LOCK_TIMEOUT_MS per
    attempt for its locks; raises PartitioningError after `wait_seconds` of attempts."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {SWAP_LOCK_TIMEOUT_MS}")
                cursor.execute(statement)
            return
        except OperationalError as exc:
            if not _lock_failed(exc):
                raise
        if time.monotonic() > deadline:
            raise PartitioningError(f"could not run {statement!r} within {wait_seconds:g} s")
        time.sleep(LOCK_PAUSE_SECONDS)


# --- locks --------------------------------------------------------------------------------------


# The lock modes a transaction may hold that make each of our requests wait (PostgreSQL's
# conflict table); ACCESS EXCLUSIVE waits for every mode.
_CONFLICTING = {
    "EXCLUSIVE": [
        "RowShareLock",
        "RowExclusiveLock",
        "ShareUpdateExclusiveLock",
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    ],
    "ACCESS EXCLUSIVE": None,
}


def _lock(connection, cursor, mode, timeout_ms, wait_seconds, *, clear_deadlocks=False) -> int:
    """Lock the table in `mode`, each attempt waiting at most `timeout_ms`; return how many
    deadlocked writers were cancelled on the way. Raises PartitioningError after `wait_seconds`
    without the lock (the caller's transaction then rolls back: nothing changed)."""
    deadline = time.monotonic() + wait_seconds
    cancelled = 0
    while True:
        if clear_deadlocks:
            cancelled += _cancel_deadlocked(cursor)
        if not _held_long(cursor, _CONFLICTING[mode], timeout_ms):
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute(f"SET LOCAL lock_timeout = {int(timeout_ms)}")
                    cursor.execute(f"LOCK TABLE {_q(TABLE)} IN {mode} MODE")
            except OperationalError as exc:
                if not _lock_failed(exc):
                    raise
            else:
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
                return cancelled
        if time.monotonic() > deadline:
            raise PartitioningError(
                f"could not lock {TABLE} in {mode} mode within {wait_seconds:g} s: another "
                "transaction holds it (see pg_locks and pg_stat_activity); nothing was changed, "
                "try again later"
            )
        time.sleep(LOCK_PAUSE_SECONDS)


def _lock_failed(exc: OperationalError) -> bool:
    """Whether `exc` is a lock that could not be had in time (or a deadlock): worth a retry."""
    return getattr(exc.__cause__, "sqlstate", None) in (_LOCK_NOT_AVAILABLE, _DEADLOCK_DETECTED)


def _held_long(cursor, modes: list[str] | None, timeout_ms: int) -> bool:
    """Whether a transaction that has run longer than one attempt holds the table in one of
    `modes` (None: any). Autovacuum is left out: it gives way to a waiting lock."""
    cursor.execute(
        """SELECT EXISTS (
               SELECT 1 FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
               WHERE l.locktype = 'relation' AND l.relation = %s::regclass AND l.granted
                 AND l.pid <> pg_backend_pid() AND a.backend_type <> 'autovacuum worker'
                 AND (%s::text[] IS NULL OR l.mode = ANY(%s::text[]))
                 AND a.xact_start < clock_timestamp() - make_interval(secs => %s))""",
        [TABLE, modes, modes, timeout_ms / 1000],
    )
    return cursor.fetchone()[0]


def _cancel_deadlocked(cursor) -> int:
    """Cancel the statements of sessions that hold a lock on the table and wait for one we
    hold (a transaction that read the list and now waits to write it): neither side could go
    on, and PostgreSQL's deadlock check would cancel one of the two anyway. The writer's
    transaction fails and is retried by its caller; the rebuild goes on."""
    cursor.execute(
        """SELECT count(*) FILTER (WHERE pg_cancel_backend(pid))
           FROM (SELECT DISTINCT l.pid FROM pg_locks AS l
                 WHERE l.locktype = 'relation' AND l.relation = %s::regclass AND l.granted
                   AND l.pid <> pg_backend_pid()
                   AND pg_backend_pid() = ANY(pg_blocking_pids(l.pid))) AS w""",
        [TABLE],
    )
    return cursor.fetchone()[0]


# --- helpers ------------------------------------------------------------------------------------


def _require_postgresql(connection) -> None:
    if connection.vendor != "postgresql":
        raise PartitioningError(
            f"the suppression list is partitioned on PostgreSQL only; this database is "
            f"{connection.vendor} (set DATABASE_URL to a PostgreSQL database)"
        )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _with(reloptions: list[str]) -> str:
    return f" WITH ({', '.join(reloptions)})" if reloptions else ""
