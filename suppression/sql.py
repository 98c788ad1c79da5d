"""Hot-path SQL in one place: batch lookups, the change feed and bulk import.

PostgreSQL gets hand-written queries (measured in bench/); SQLite, the embedded default, gets a
plain ORM path with the same results. The lookups and the feed run on the database of the relay
read they are part of (`compliance.replicas.read_connection`: a read replica or the primary);
the import writes, on the primary.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext
from itertools import chain
from typing import NamedTuple

import psycopg
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from compliance.connection_check import as_connection_check
from compliance.replicas import read_connection
from suppression import partition_routes, rules
from suppression.models import Suppression, SuppressionEvent, blocking_q

# The lookups below take their WHERE condition (in force, and blocking under a
# rules.BlockingKeys) from rules.blocking_sql, built once here at import; the single check takes
# the in-force part from rules.active_sql and the key test from BlockingKeys.blocks. The rule is
# written in rules.py only, and tests/suppression/test_rule_on_every_path.py holds every path to
# it.

# Opt-outs recorded but not applied yet block as the `unsubscribe` entries they are about to
# become (DESIGN.md: a check one second after a click answers `suppressed`). They are rows of
# unsubscribe.models.UnsubscribeRequest, named here by table, not imported: this app imports
# nothing above it. Shaped like the suppression table, so the one rule applies to them as well;
# only pending rows are indexed by hash (unsubscribe_pending_by_hash), so the lookup stays as
# small as the backlog.
_PENDING_ENTRY = f"scope_key, '{rules.UNSUBSCRIBE}'::varchar AS reason, received_at AS created_at"
_PENDING_ROWS = "unsubscribe_unsubscriberequest WHERE applied_at IS NULL"
PENDING_OPT_OUTS = f"""(
    SELECT address_hash, {_PENDING_ENTRY},
           NULL::timestamptz AS lifted_at, NULL::timestamptz AS expires_at
    FROM {_PENDING_ROWS}
)"""

# A join of the sorted hashes against the table beat `address_hash = ANY(%s)` by about half again
# on a large table (see bench/batch_check.py): the planner walks the index in order.
# The hashes travel as one bytea of sorted 32-byte hashes, cut apart by the server: cheaper for
# the client than a 10,000-element array, which psycopg dumps element by element. They are cut
# in a subquery kept apart (OFFSET 0), so that each probe compares with a column: pulled up, the
# substring of the whole batch would be copied into the index condition of every partition,
# which took 10 ms of planning for 16 partitions and 10,000 hashes.
_BATCH_RULE = {
    "now": "%(now)s",
    "any_reason": "%(any_reason)s",
    "never_mail_only": "%(never_mail_only)s",
    "never_mail": "%(never_mail)s",
}


def _hashes_in(run: str | None = None) -> str:
    """The hashes of the parameter `hashes` as rows: all of them, or those of the run `run`
    (from the index in the parameter `<run>_first` to the one in `<run>_last`)."""
    indexes = (
        f"%({run}_first)s::int, %({run}_last)s::int"
        if run
        else "0, length(%(hashes)b::bytea) / 32 - 1"
    )
    return f"""(
    SELECT substring(%(hashes)b::bytea FROM i * 32 + 1 FOR 32) AS address_hash
    FROM generate_series({indexes}) AS i
    OFFSET 0
)"""


def _entries_of(table: str, run: str | None = None) -> str:
    return f"""
SELECT s.address_hash, s.scope_key, s.reason, s.created_at
FROM {_hashes_in(run)} AS h
JOIN {table} AS s ON s.address_hash = h.address_hash
WHERE {rules.blocking_sql(alias="s", **_BATCH_RULE)}
"""


_PENDING_OF_BATCH = f"""
SELECT p.address_hash, p.scope_key, p.reason, p.created_at
FROM {_hashes_in()} AS h
JOIN {PENDING_OPT_OUTS} AS p ON p.address_hash = h.address_hash
WHERE {rules.blocking_sql(alias="p", **_BATCH_RULE)}
"""

BLOCKING_SQL = _entries_of("suppression_suppression") + "UNION ALL" + _PENDING_OF_BATCH


@functools.lru_cache(maxsize=512)
def routed_blocking_sql(partitions: tuple[tuple[int, str], ...]) -> str:
    """BLOCKING_SQL reading each of `partitions` ((remainder, table)) directly, with the hashes
    grouped by partition (suppression/partition_routes.py): each partition reads its own run
    of them, `p<remainder>`. The hashes are sent once, for the partitions and the pending
    opt-outs alike."""
    branches = [_entries_of(_quoted(table), f"p{remainder}") for remainder, table in partitions]
    return "UNION ALL".join([*branches, _PENDING_OF_BATCH])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# The table cannot be swapped for a rebuilt one (suppression/partitioning.py, under an ACCESS
# EXCLUSIVE lock) between reading its identity and reading its partitions by name.
LOCK_LIST = "LOCK TABLE ONLY suppression_suppression IN ACCESS SHARE MODE"
LIST_OID = "SELECT 'suppression_suppression'::regclass::oid"

# The batch on the hash-partitioned list (suppression/partitioning.py): PostgreSQL takes each
# hash's probe to its one partition at run time, but plans it as if every probe read every
# partition, and past a few thousand hashes picks a hash join over the whole list instead
# (2,000,000 rows, 10,000 hashes: 1.7 to 4.3 s against 0.4 s). A batch is bounded, so index
# probes are always right: BLOCKING_SQL is planned with them only, and without the JIT
# compilation the inflated estimate would switch on. It is also planned generically, with its
# parameters as parameters: a custom plan takes them in as constants, and the planner copied the
# batch's hashes (up to 145 kB per part) into the expressions of each partition's branch, which
# cost more than a tenth of the check (bench/README.md, batch check). Nothing is prepared or kept
# on the server: the unnamed statement of each query is planned once with the setting.
# The settings last for the batch's transaction only.
_BATCH_PLANNER = {
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "jit": "off",
    "plan_cache_mode": "force_generic_plan",
}
# The caller's values of those settings, then the batch's own.
INDEX_PROBES_ONLY = "SELECT " + ", ".join(
    [f"current_setting('{name}')" for name in _BATCH_PLANNER]
    + [f"set_config('{name}', '{value}', true)" for name, value in _BATCH_PLANNER.items()]
)
# All a batch needs before its lookups, in one round trip (a round trip costs as much as
# looking up a few dozen hashes): the lock, INDEX_PROBES_ONLY and the list's identity.
BATCH_SETUP = f"{LOCK_LIST};\n{INDEX_PROBES_ONLY}, ({LIST_OID})"
# The caller's values back, for a caller's transaction that goes on.
RESTORE_PLANNER = "SELECT " + ", ".join(
    f"set_config('{name}', %s, true)" for name in _BATCH_PLANNER
)

# BLOCKING_SQL for one hash: a plain index lookup by hash, planned in microseconds (the unnest
# join is built for batches, and parsing and planning it for every lookup cost several times the
# lookup itself; bench/policy_server.py). The key lists go as array literals (text, `key_arrays`),
# cheaper to send than lists, which psycopg inspects element by element on every call.
_ONE_HASH_RULE = rules.blocking_sql(
    now="now()", any_reason="%s::text[]", never_mail_only="%s::text[]", never_mail="%s::text[]"
)

# The single check (psycopg's own cursor), with the hash twice. It returns the hash's entries
# in force, and `blocking_rows_for_one` keeps those whose key blocks (`BlockingKeys.blocks`, the
# rule's key test in Python): a hash has a handful of entries, and parsing and checking the three
# key arrays in every lookup took a third of PostgreSQL's time per check. A pending opt-out is
# always in force (never lifted, no expiry), so its branch reads the table without the in-force
# test: planning it through PENDING_OPT_OUTS cost as much as the entries' own lookup.
SINGLE_SQL = f"""
SELECT scope_key, reason, created_at FROM suppression_suppression
WHERE address_hash = %s AND {rules.active_sql(now="now()")}
UNION ALL
SELECT {_PENDING_ENTRY} FROM {_PENDING_ROWS} AND address_hash = %s
"""

# The Postfix policy server, as a prepared statement. Its parameters: `lookup_params`.
POLICY_LOOKUP_SQL = f"""
SELECT scope_key, reason FROM suppression_suppression
WHERE address_hash = %s
  AND {_ONE_HASH_RULE}
UNION ALL
SELECT scope_key, reason FROM {PENDING_OPT_OUTS} AS p
WHERE address_hash = %s
  AND {_ONE_HASH_RULE}
"""


def text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of `values`, each quoted (scope keys contain ':' and '*')."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


@functools.lru_cache(maxsize=1024)
def key_arrays(keys: rules.BlockingKeys) -> tuple[str, str, str]:
    """The arrays of POLICY_LOOKUP_SQL after the hash, in the order
    `rules.blocking_sql` names them, as array literals (a stream's keys are asked again and
    again: each is made once)."""
    return (
        text_array(keys.any_reason),
        text_array(keys.never_mail_only),
        text_array(keys.never_mail),
    )


def lookup_params(digest: bytes, keys: rules.BlockingKeys) -> tuple:
    """The parameters of POLICY_LOOKUP_SQL: the hash and the key arrays, once for
    the entries and once for the pending opt-outs."""
    arrays = key_arrays(keys)
    return (digest, *arrays, digest, *arrays)


# Only events of transactions older than every transaction still running: a later read can never
# find an event ordered before one it has already returned, so a cursor never skips a change
# committed late (ids are handed out at insert, not at commit).
FEED_SQL = """
SELECT id FROM suppression_suppressionevent
WHERE (txid, id) > (%(txid)s, %(id)s)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
  {tenant_filter}
ORDER BY txid, id
LIMIT %(limit)s
"""


class BlockingRow(NamedTuple):
    address_hash: bytes
    scope_key: str
    reason: str
    created_at: datetime.datetime


# BlockingRow's fields as a plain tuple: (address_hash, scope_key, reason, created_at). A batch
# reads thousands of rows, and making each a named tuple took as long as the rest of its answer.
RawBlockingRow = tuple[bytes, str, str, datetime.datetime]


def blocking_rows(hashes: Sequence[bytes], keys: rules.BlockingKeys) -> list[BlockingRow]:
    """Active entries among `hashes` that block mail under `keys` (several per hash possible)."""
    return list(map(BlockingRow._make, blocking_rows_in_parts([b"".join(hashes)], keys)))


def blocking_rows_in_parts(
    parts: Iterable[bytes], keys: rules.BlockingKeys
) -> list[RawBlockingRow]:
    """`blocking_rows` of a batch whose hashes come in parts, as the caller makes them: each
    part's lookup is sent as soon as the part arrives (pipeline mode) and PostgreSQL runs it
    while the caller makes the next, so a large batch's hashing and its lookup overlap instead
    of taking turns on one core. A part is its 32-byte hashes end to end, as they travel, in any
    order; a hash repeated within a part is looked up once. The rows are read once every part
    is sent, as plain tuples
    (RawBlockingRow)."""
    nonempty = (part for part in parts if part)
    first = next(nonempty, None)
    if first is None:
        return []
    now = timezone.now()
    db = read_connection()
    if db.vendor != "postgresql":
        return [
            row
            for part in chain([first], nonempty)
            for row in _blocking_rows_orm(partition_routes.cut(part), keys, now)
        ]
    with _batch_lookup(db) as layout:
        sent: list[psycopg.RawCursor] = []
        try:
            with _pipelined(db.connection):
                for part in chain([first], nonempty):
                    sent.append(part_cursor := psycopg.RawCursor(db.connection))
                    part_cursor.execute(*_batch_query(part, keys, now, layout), binary=True)
            rows: list[RawBlockingRow] = []
            for part_cursor in sent:
                rows.extend(part_cursor.fetchall())
        finally:
            for part_cursor in sent:
                part_cursor.close()
        return rows


# Rows of a streamed lookup come from the server in chunks of this many (libpq 17 and later):
# of 100, 500 and 2,000, the smallest left the least work for after the last row.
STREAM_CHUNK = 100


def each_blocking_row(
    hashes: bytes, keys: rules.BlockingKeys, consume: Callable[[RawBlockingRow], object]
) -> None:
    """`blocking_rows` of the 32-byte hashes `hashes` (end to end, any order), each row handed
    to `consume` as it arrives. PostgreSQL sends a batch's rows while it is still looking up the
    rest, so a caller that builds its answer row by row does so beside the lookup instead of
    after it: in-process, a 10,000-hash check took 44.3 ms instead of 48.6 (bench/README.md)."""
    if not hashes:
        return
    now = timezone.now()
    db = read_connection()
    if db.vendor != "postgresql":
        for row in _blocking_rows_orm(partition_routes.cut(hashes), keys, now):
            consume(row)
        return
    consumed = False

    def look_up() -> None:
        nonlocal consumed
        with _batch_lookup(db) as layout, psycopg.RawCursor(db.connection) as cursor:
            query = _batch_query(hashes, keys, now, layout)
            if not psycopg.capabilities.has_stream_chunked():
                # An older libpq: a row at a time costs more than waiting for them all.
                rows = cursor.execute(*query, binary=True).fetchall()
                consumed = True
                for row in rows:
                    consume(row)
                return
            # Closed at once if `consume` fails: until then the stream holds the connection, and
            # the transaction's rollback would wait for it forever.
            with closing(cursor.stream(*query, binary=True, size=STREAM_CHUNK)) as rows:
                for row in rows:
                    consumed = True
                    consume(row)

    # The lookup is the request's connection check, instead of Django's `SELECT 1` (a round
    # trip) before its transaction; on a connection found dead it runs again, unless some rows
    # were handed on already.
    as_connection_check(db, look_up, may_repeat=lambda: not consumed)


@contextmanager
def _batch_lookup(db) -> Iterator[partition_routes.Layout | None]:
    """A batch lookup's transaction on `db` (PostgreSQL), set up for it (BATCH_SETUP); yields
    the list's partition layout."""
    # Server-side-binding cursors on Django's connection (and transaction): the hashes travel
    # as one binary value instead of 10,000 hex literals in the query text, which more than
    # halves the time of a large batch (every hash is 32 bytes: HMAC-SHA256). Errors are
    # wrapped as Django's, like every other query's, so callers and the API see
    # OperationalError and friends.
    db.ensure_connection()
    outermost = not db.in_atomic_block
    with (
        db.wrap_database_errors,
        transaction.atomic(using=db.alias),
        psycopg.Cursor(db.connection) as cursor,
    ):
        cursor.execute(BATCH_SETUP)
        cursor.nextset()  # past the lock's result
        *settings, table_oid = cursor.fetchone()
        previous = settings[: len(_BATCH_PLANNER)]
        yield _partition_layout(cursor, db.alias, table_oid)
        if not outermost:  # the caller's transaction goes on: as it was
            cursor.execute(RESTORE_PLANNER, previous)


def _pipelined(conn: psycopg.Connection):
    """Pipeline mode where the client library has it (libpq 14 and later): queries are sent
    without waiting for the one before, and their results read when the pipeline ends."""
    return conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext()


def _batch_query(hashes: bytes, keys: rules.BlockingKeys, now, layout) -> tuple[bytes, list]:
    """BLOCKING_SQL and its parameters for `hashes`, in PostgreSQL's own placeholders; routed to
    the partitions (one branch each) when the list's layout is known and the batch spreads over
    few enough of them."""
    params = {
        "now": now,
        "any_reason": list(keys.any_reason),
        "never_mail_only": list(keys.never_mail_only),
        "never_mail": list(keys.never_mail),
    }
    query = BLOCKING_SQL
    if layout is not None:
        grouped, runs = partition_routes.group(hashes, layout.modulus)
        if len(runs) <= partition_routes.MAX_ROUTED_PARTITIONS:
            params["hashes"] = grouped
            for remainder, (first, last) in runs.items():
                params[f"p{remainder}_first"] = first
                params[f"p{remainder}_last"] = last
            query = routed_blocking_sql(tuple((r, layout.partitions[r]) for r in runs))
    if query is BLOCKING_SQL:
        params["hashes"] = partition_routes.sort(hashes)
    numbered, names = numbered_placeholders(query)
    return numbered, [params[name] for name in names]


@functools.lru_cache(maxsize=512)
def numbered_placeholders(query: str) -> tuple[bytes, tuple[str, ...]]:
    """`query` with its named placeholders (`%(name)s`, `%(name)b`) as PostgreSQL's `$1`, `$2`,
    ..., and the names in their order, for a RawCursor. psycopg caches its own parsing of a
    query only up to 4,096 characters and 50 parameters, and a batch's routed lookup has more of
    both: parsing it again for every part cost 0.6 ms of the worker's time each."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"%%|%\((\w+)\)[sb]", number, query).encode(), tuple(names)


# The list's partitions on each database alias, with the table's oid they were read for: read
# again when the oid changes (the table was rebuilt), checked before use (partition_routes).
_layouts: dict[str, tuple[int, partition_routes.Layout | None]] = {}


def _partition_layout(cursor, alias: str, table_oid: int) -> partition_routes.Layout | None:
    known = _layouts.get(alias)
    if known is None or known[0] != table_oid:
        known = _layouts[alias] = (table_oid, partition_routes.read_layout(cursor, table_oid))
    return known[1]


def blocking_rows_for_one(digest: bytes, keys: rules.BlockingKeys) -> list[BlockingRow]:
    """Active entries of one hash that block mail under `keys` (the single check's hot path)."""
    db = read_connection()
    if db.vendor != "postgresql":
        return _blocking_rows_orm([digest], keys, timezone.now())
    # A cursor of psycopg's own with binary results: Django's text loader of timestamps runs in
    # Python, and loading a listed hash's row through it cost as much as a tenth of the check.
    # The lookup is the request's connection check too, instead of Django's `SELECT 1`.
    found = as_connection_check(db, lambda: _entries_of_one(db.connection, digest))
    return [BlockingRow(digest, k, r, c) for k, r, c in found if keys.blocks(k, r)]


def _entries_of_one(conn: psycopg.Connection, digest: bytes) -> list[tuple]:
    with psycopg.Cursor(conn) as cursor:
        return cursor.execute(SINGLE_SQL, (digest, digest), binary=True).fetchall()


def _blocking_rows_orm(hashes, keys, now) -> list[BlockingRow]:
    """`blocking_rows` through the ORM: SQLite's path, and the same rule on PostgreSQL."""
    found = []
    for start in range(0, len(hashes), 500):  # SQLite caps the parameters of one query
        chunk = list(hashes[start : start + 500])
        rows = Suppression.objects.filter(
            blocking_q(keys, now=now), address_hash__in=chunk
        ).values_list("address_hash", "scope_key", "reason", "created_at")
        found.extend(BlockingRow(bytes(h), k, r, c) for h, k, r, c in rows)
        found.extend(_pending_rows_orm(chunk, keys))
    return found


def _pending_rows_orm(hashes, keys) -> list[BlockingRow]:
    """PENDING_OPT_OUTS through the ORM: the opt-outs of `hashes` recorded and not yet applied
    that block under `keys`, each as the `unsubscribe` entry it becomes (in force: no expiry)."""
    # Named, not imported, for the reason PENDING_OPT_OUTS gives.
    pending = apps.get_model("unsubscribe", "UnsubscribeRequest").objects.filter(
        applied_at__isnull=True, address_hash__in=hashes
    )
    return [
        BlockingRow(bytes(h), k, rules.UNSUBSCRIBE, received_at)
        for h, k, received_at in pending.values_list("address_hash", "scope_key", "received_at")
        if k is not None and keys.blocks(k, rules.UNSUBSCRIBE)
    ]


def feed_event_ids(
    *, txid: int, event_id: int, limit: int, tenant_ids: list[int] | None
) -> list[int]:
    """Ids of the next change-feed events after the cursor (txid, event_id), in feed order."""
    prefixes = None
    if tenant_ids is not None:
        prefixes = ["*:%"] + [f"{t}:%" for t in tenant_ids]
    db = read_connection()
    if db.vendor == "postgresql":
        tenant_filter = "AND scope_key LIKE ANY(%(prefixes)s)" if prefixes else ""
        with db.cursor() as cursor:
            cursor.execute(
                FEED_SQL.format(tenant_filter=tenant_filter),
                {"txid": txid, "id": event_id, "limit": limit, "prefixes": prefixes},
            )
            return [row[0] for row in cursor.fetchall()]
    events = SuppressionEvent.objects.filter(id__gt=event_id).order_by("id")
    if prefixes:
        from django.db.models import Q

        q = Q()
        for prefix in prefixes:
            q |= Q(scope_key__startswith=prefix[:-1])
        events = events.filter(q)
    return list(events.values_list("id", flat=True)[:limit])


class ImportTarget(NamedTuple):
    """Where the rows of one (scope, reason) of an import file go: `id` is the number the rows
    carry in the COPY data."""

    id: int
    scope_key: str
    scope_label: str
    tenant_id: int | None
    scope: str
    stream_id: int | None
    topic_id: int | None
    reason: str
    # Entries of this reason expire this long after their date (soft bounces); None: never.
    expires_after: datetime.timedelta | None = None
    # The tenant's opt-out deadlines (compliance.deadlines.OptOutPolicy).
    time_zone: str = "UTC"
    target_hours: int = 48


class DueDay(NamedTuple):
    """The CAN-SPAM due time of an opt-out of `tenant_id` received on `day` (its local date)."""

    tenant_id: int | None
    day: datetime.date
    due_at: datetime.datetime


IMPORT_TEMP_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_chunk (
    line integer, address_hash bytea, address text, target integer, created_at timestamptz
) ON COMMIT DELETE ROWS
"""

# COPY's text format, one row per line (see import_copy_line).
IMPORT_COPY = "COPY import_chunk (line, address_hash, address, target, created_at) FROM STDIN"

# New keys only: an entry already listed (active or lifted by staff) is left as it is, so
# re-importing a file changes nothing. An entry whose reason expires (a soft bounce) expires
# counted from its date, so one already past is stored as history and blocks nothing. The row,
# its history event and, for opt-outs, the opt-out request are written by one statement; the few
# distinct targets of a file join in as arrays.
IMPORT_INSERT = """
WITH targets AS (
    SELECT * FROM unnest(
        %(t_id)s::integer[], %(t_key)s::text[], %(t_label)s::text[], %(t_tenant)s::bigint[],
        %(t_scope)s::text[], %(t_stream)s::bigint[], %(t_topic)s::bigint[], %(t_reason)s::text[],
        %(t_expires_after)s::interval[], %(t_zone)s::text[], %(t_target)s::interval[]
    ) AS t(id, scope_key, scope_label, tenant_id, scope, stream_id, topic_id, reason,
           expires_after, time_zone, target)
), due AS (
    SELECT * FROM unnest(%(d_tenant)s::bigint[], %(d_day)s::date[], %(d_at)s::timestamptz[])
        AS d(tenant_id, day, due_at)
), new AS (
    INSERT INTO suppression_suppression (
        tenant_id, scope, stream_id, topic_id, scope_key, address_hash, address, reason, origin,
        evidence_type_id, evidence_id, evidence_note, created_at, updated_at, expires_at)
    SELECT DISTINCT ON (c.address_hash, t.scope_key)
        t.tenant_id, t.scope, t.stream_id, t.topic_id, t.scope_key, c.address_hash, c.address,
        t.reason, 'import', %(evidence_type)s, %(evidence_id)s, %(note_prefix)s || c.line,
        coalesce(c.created_at, %(now)s), %(now)s,
        coalesce(c.created_at, %(now)s) + t.expires_after
    FROM import_chunk AS c JOIN targets AS t ON t.id = c.target
    ORDER BY c.address_hash, t.scope_key, c.line
    ON CONFLICT (address_hash, scope_key) DO NOTHING
    RETURNING id, tenant_id, scope_key, address_hash, reason, evidence_note, created_at
), history AS (
    INSERT INTO suppression_suppressionevent (
        suppression_id, action, reason, origin, scope_key, address_hash, note, actor_label, via,
        actor_user_id, actor_api_key_id, evidence_type_id, evidence_id, evidence_note,
        occurred_at)
    SELECT id, 'add', reason, 'import', scope_key, address_hash, '', %(actor_label)s, %(via)s,
           %(actor_user)s, %(actor_api_key)s, %(evidence_type)s, %(evidence_id)s, evidence_note,
           %(now)s
    FROM new
    RETURNING 1
), opt_outs AS (
    INSERT INTO compliance_optoutrequest (
        received_at, channel, tenant_id, scope_key, scope_label, address_hash, applied_at,
        provider_due_at, can_spam_due_at, propagated_at, alert_state)
    SELECT new.created_at, 'import', new.tenant_id, new.scope_key, labels.scope_label,
           new.address_hash, %(now)s, new.created_at + labels.target, due.due_at, %(now)s, 0
    FROM new
    JOIN (SELECT DISTINCT scope_key, scope_label, time_zone, target FROM targets) AS labels
        USING (scope_key)
    LEFT JOIN due ON due.tenant_id IS NOT DISTINCT FROM new.tenant_id
        AND due.day = (new.created_at AT TIME ZONE labels.time_zone)::date
    WHERE new.reason = ANY(%(opt_outs)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM history), (SELECT count(*) FROM opt_outs)
"""

_COPY_SPECIALS = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def import_copy_line(
    line: int, address_hash: bytes, address: str, target: int, created_at: str | None
) -> str:
    """One row of IMPORT_COPY's data in COPY's text format. `created_at` is ISO 8601, or None
    for the time of the import."""
    if "\\" in address or "\t" in address or "\n" in address or "\r" in address:
        address = address.translate(_COPY_SPECIALS)
    when = created_at if created_at is not None else "\\N"
    return f"{line}\t\\\\x{address_hash.hex()}\t{address}\t{target}\t{when}\n"


def _target_params(targets) -> dict[str, list]:
    """The `targets` arrays IMPORT_INSERT and OPT_OUT_APPLY share: where each entry goes and the
    tenant's deadline policy."""
    return {
        "t_key": [t.scope_key for t in targets],
        "t_label": [t.scope_label for t in targets],
        "t_tenant": [t.tenant_id for t in targets],
        "t_scope": [t.scope for t in targets],
        "t_stream": [t.stream_id for t in targets],
        "t_topic": [t.topic_id for t in targets],
        "t_zone": [t.time_zone for t in targets],
        "t_target": [datetime.timedelta(hours=t.target_hours) for t in targets],
    }


def _due_day_params(due_days: Sequence[DueDay]) -> dict[str, list]:
    """The `due` arrays of IMPORT_INSERT and OPT_OUT_APPLY: CAN-SPAM due times per local day."""
    return {
        "d_tenant": [d.tenant_id for d in due_days],
        "d_day": [d.day for d in due_days],
        "d_at": [d.due_at for d in due_days],
    }


def insert_copied_rows(
    data: str,
    targets: Sequence[ImportTarget],
    *,
    due_days: Sequence[DueDay],
    now: datetime.datetime,
    evidence_type_id: int,
    evidence_id: str,
    note_prefix: str,
    actor,
) -> int:
    """Insert the COPY rows in `data` whose key is not listed yet, with their history; return how
    many. Rows whose target is not in `targets` are left out. PostgreSQL only; call inside a
    transaction."""
    with connection.cursor() as cursor:
        cursor.execute(IMPORT_TEMP_TABLE)
        with cursor.copy(IMPORT_COPY) as copy:
            copy.write(data)
        cursor.execute(
            IMPORT_INSERT,
            {
                "t_id": [t.id for t in targets],
                **_target_params(targets),
                "t_reason": [t.reason for t in targets],
                "t_expires_after": [t.expires_after for t in targets],
                **_due_day_params(due_days),
                "now": now,
                "evidence_type": evidence_type_id,
                "evidence_id": evidence_id,
                "note_prefix": note_prefix,
                "actor_label": actor.label[:200],
                "via": actor.via,
                "actor_user": actor.user_id,
                "actor_api_key": actor.api_key_id,
                "opt_outs": sorted(rules.OPT_OUTS),
            },
        )
        added, _, _ = cursor.fetchone()
    return added


class OptOutTarget(NamedTuple):
    """Where some opt-outs of a batch go, with their tenant's deadlines."""

    scope_key: str
    scope_label: str
    tenant_id: int | None
    scope: str
    stream_id: int | None
    topic_id: int | None
    time_zone: str
    target_hours: int
    # Does an opt-out of this tenant wait for downstream systems (compliance.propagation)?
    waits: bool


class OptOutRow(NamedTuple):
    """One opt-out of a batch, in the order they are applied."""

    target: int  # the place of its OptOutTarget in the batch's list, from 1
    address_hash: bytes
    address: str | None
    received_at: datetime.datetime
    channel: str
    evidence_id: str
    evidence_note: str


class AppliedRow(NamedTuple):
    """What OPT_OUT_APPLY did for one opt-out that changed its entry."""

    index: int  # the opt-out's place in the batch, from 0
    action: str  # the SuppressionEvent action written
    suppression_id: int
    reason: str  # the entry's, once changed
    origin: str
    address: str | None
    expires_at: datetime.datetime | None
    updated_at: datetime.datetime
    opt_out_id: int | None  # the OptOutRequest written, for an add or re-add
    applied_at: datetime.datetime | None
    provider_due_at: datetime.datetime | None
    can_spam_due_at: datetime.datetime | None


def _weightier_than(column: str) -> str:
    """rules.weightier(column, %(reason)s) as SQL, over the PRECEDENCE array."""
    return (
        f"CASE WHEN array_position(%(precedence)b::text[], {column}::text)"
        f" <= array_position(%(precedence)b::text[], %(reason)s::text)"
        f" THEN {column} ELSE %(reason)s END"
    )


# A batch of opt-outs, one statement: what suppression.services.entries.suppress does for each of
# them in turn, written for the whole batch in the shape of IMPORT_INSERT. Per key, the batch's
# first opt-out decides: a new key is added, a lifted or expired entry added again (`readd`), an
# entry in force with another reason or an expiry gets the weightier reason (`reason`), an entry
# already in force for this reason is left alone. A later opt-out of the same key in the batch
# finds the entry as the first left it: only a weightier reason than this one (a complaint, a
# hard bounce) makes it write a `reason` event again. Adds and re-adds write an OptOutRequest,
# whose CAN-SPAM due time is the tenant's local day's (DueDay).
#
# Entries already listed are locked in key order. A key another writer inserted since this
# statement's snapshot is not inserted twice (ON CONFLICT), but counted (`added` below
# `expected`): the caller rolls the statement back and runs it again. Each opt-out finds its
# target by index in the target arrays and each new row takes its id from the table's sequence
# up front, so no step joins rows it has just written: with the row counts of fresh CTEs unknown
# to the planner, such joins were nested loops, a million comparisons per thousand opt-outs.
OPT_OUT_APPLY = f"""
WITH items AS (
    SELECT i.ord, i.address_hash, i.address, i.received_at, i.channel, i.evidence_id,
           i.evidence_note,
           (%(t_key)b::text[])[i.target] AS scope_key,
           (%(t_label)b::text[])[i.target] AS scope_label,
           (%(t_tenant)b::bigint[])[i.target] AS tenant_id,
           (%(t_scope)b::text[])[i.target] AS scope,
           (%(t_stream)b::bigint[])[i.target] AS stream_id,
           (%(t_topic)b::bigint[])[i.target] AS topic_id,
           (%(t_zone)b::text[])[i.target] AS time_zone,
           (%(t_target)b::interval[])[i.target] AS target,
           (%(t_waits)b::boolean[])[i.target] AS waits
    FROM unnest(
        %(i_target)b::integer[], %(i_hash)b::bytea[], %(i_address)b::text[],
        %(i_received)b::timestamptz[], %(i_channel)b::text[], %(i_evidence)b::text[],
        %(i_note)b::text[]
    ) WITH ORDINALITY AS i(target, address_hash, address, received_at, channel, evidence_id,
                           evidence_note, ord)
), existing AS (
    SELECT s.id, s.address_hash, s.scope_key, s.reason, s.origin, s.address, s.lifted_at,
           s.expires_at
    FROM suppression_suppression AS s
    WHERE (s.address_hash, s.scope_key) IN (SELECT address_hash, scope_key FROM items)
    ORDER BY s.address_hash, s.scope_key
    FOR UPDATE OF s
), ranked AS (
    SELECT i.*, e.id AS existing_id, e.reason AS old_reason, e.origin AS old_origin,
           e.address AS old_address,
           CASE WHEN e.id IS NULL THEN 'add'
                WHEN NOT ({rules.active_sql(alias="e", now="%(now)s")}) THEN 'readd'
                WHEN e.reason = %(reason)s AND e.expires_at IS NULL THEN NULL
                ELSE 'reason' END AS key_action,
           row_number() OVER (PARTITION BY i.address_hash, i.scope_key ORDER BY i.ord) = 1
               AS first
    FROM items AS i LEFT JOIN existing AS e USING (address_hash, scope_key)
), decided AS (
    SELECT r.*,
           CASE WHEN r.first THEN r.key_action
                WHEN r.key_action = 'reason' AND {_weightier_than("r.old_reason")} <> %(reason)s
                    THEN 'reason'
           END AS action,
           -- The entry as it stands once changed (for the later opt-outs of a key, as the
           -- first left it: only `reason` changes it again, and with the same values).
           CASE WHEN r.key_action IN ('add', 'readd') THEN %(reason)s
                WHEN r.key_action = 'reason' THEN {_weightier_than("r.old_reason")}
                ELSE r.old_reason END AS entry_reason,
           CASE WHEN r.key_action IN ('add', 'readd') THEN %(origin)s
                ELSE r.old_origin END AS entry_origin,
           CASE WHEN r.key_action = 'add' THEN r.address
                WHEN r.key_action = 'readd' THEN coalesce(r.old_address, r.address)
                ELSE r.old_address END AS entry_address,
           CASE WHEN r.key_action = 'add' THEN r.received_at
                ELSE %(now)s::timestamptz END AS entry_updated_at
    FROM ranked AS r
), acts AS (
    SELECT d.*,
           coalesce(d.existing_id, CASE WHEN d.first THEN nextval(%(entry_ids)s::regclass) END)
               AS entry_id,
           CASE WHEN d.action IN ('add', 'readd') THEN nextval(%(opt_out_ids)s::regclass) END
               AS opt_out_id,
           due.due_at AS can_spam_due_at
    FROM decided AS d
    LEFT JOIN (
        SELECT * FROM unnest(%(d_tenant)b::bigint[], %(d_day)b::date[], %(d_at)b::timestamptz[])
    ) AS due(tenant_id, day, due_at)
        ON d.action IN ('add', 'readd') AND due.tenant_id IS NOT DISTINCT FROM d.tenant_id
        AND due.day = (d.received_at AT TIME ZONE d.time_zone)::date
    ORDER BY d.ord
), added AS (
    INSERT INTO suppression_suppression (
        id, tenant_id, scope, stream_id, topic_id, scope_key, address_hash, address, reason,
        origin, evidence_type_id, evidence_id, evidence_note, created_at, updated_at)
    SELECT entry_id, tenant_id, scope, stream_id, topic_id, scope_key, address_hash, address,
           entry_reason, entry_origin, %(evidence_type)s, evidence_id, evidence_note,
           received_at, received_at
    FROM acts
    WHERE first AND key_action = 'add'
    ORDER BY address_hash, scope_key
    ON CONFLICT (address_hash, scope_key) DO NOTHING
    RETURNING 1
), changed AS (
    UPDATE suppression_suppression AS s SET
        reason = a.entry_reason,
        origin = a.entry_origin,
        address = a.entry_address,
        evidence_type_id = CASE WHEN a.key_action = 'readd' THEN %(evidence_type)s
                                ELSE s.evidence_type_id END,
        evidence_id = CASE WHEN a.key_action = 'readd' THEN a.evidence_id ELSE s.evidence_id END,
        evidence_note = CASE WHEN a.key_action = 'readd' THEN a.evidence_note
                             ELSE s.evidence_note END,
        lifted_at = NULL,
        expires_at = NULL,
        updated_at = a.entry_updated_at
    FROM acts AS a
    WHERE a.first AND a.key_action IN ('readd', 'reason')
      AND s.address_hash = a.address_hash AND s.scope_key = a.scope_key
    RETURNING 1
), history AS (
    INSERT INTO suppression_suppressionevent (
        suppression_id, action, reason, origin, scope_key, address_hash, note, actor_label, via,
        actor_user_id, actor_api_key_id, evidence_type_id, evidence_id, evidence_note,
        occurred_at)
    SELECT entry_id, action, %(reason)s, %(origin)s, scope_key, address_hash, '',
           %(actor_label)s, %(via)s, %(actor_user)s, %(actor_api_key)s, %(evidence_type)s,
           evidence_id, evidence_note, %(now)s
    FROM acts
    WHERE action IS NOT NULL
    ORDER BY ord
    RETURNING 1
), opt_outs AS (
    INSERT INTO compliance_optoutrequest (
        id, received_at, channel, tenant_id, scope_key, scope_label, address_hash, applied_at,
        provider_due_at, can_spam_due_at, propagated_at, alert_state)
    SELECT opt_out_id, received_at, channel, tenant_id, scope_key, scope_label, address_hash,
           %(now)s, received_at + target, can_spam_due_at,
           CASE WHEN waits AND channel <> %(import_channel)s THEN NULL
                ELSE %(now)s::timestamptz END, 0
    FROM acts
    WHERE opt_out_id IS NOT NULL
    ORDER BY ord
    RETURNING 1
)
SELECT (SELECT count(*) FROM added),
       (SELECT count(*) FROM acts WHERE first AND key_action = 'add'),
       (SELECT count(*) FROM changed) + (SELECT count(*) FROM history)
           + (SELECT count(*) FROM opt_outs),
       a.ord - 1, a.action, a.entry_id, a.entry_reason, a.entry_origin, a.entry_address,
       NULL::timestamptz,
       a.entry_updated_at, a.opt_out_id, %(now)s::timestamptz, a.received_at + a.target,
       a.can_spam_due_at
FROM (SELECT 1) AS one
LEFT JOIN acts AS a ON a.action IS NOT NULL
ORDER BY a.ord
"""


class InsertedMeanwhile(Exception):
    """Another writer inserted a key of the batch after OPT_OUT_APPLY's snapshot was taken."""


@functools.lru_cache(maxsize=4)
def _sequence_of(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        return cursor.fetchone()[0]


def apply_opt_outs(
    rows: Sequence[OptOutRow],
    targets: Sequence[OptOutTarget],
    *,
    due_days: Sequence[DueDay],
    now: datetime.datetime,
    reason: str,
    origin: str,
    evidence_type_id: int,
    actor,
) -> list[AppliedRow]:
    """Run OPT_OUT_APPLY for `rows`, whose `target` is a 1-based place in `targets`; return what
    it did for each opt-out that changed its entry, in batch order. Raises InsertedMeanwhile
    (nothing of the statement stays once the caller's savepoint is rolled back). PostgreSQL only;
    call inside a transaction."""
    params = {
        **_target_params(targets),
        "t_waits": [t.waits for t in targets],
        **_due_day_params(due_days),
        "i_target": [r.target for r in rows],
        "i_hash": [r.address_hash for r in rows],
        "i_address": [r.address for r in rows],
        "i_received": [r.received_at for r in rows],
        "i_channel": [r.channel for r in rows],
        "i_evidence": [r.evidence_id for r in rows],
        "i_note": [r.evidence_note for r in rows],
        "now": now,
        "reason": reason,
        "origin": origin,
        # entries._goes_downstream: imports are never pushed downstream.
        "import_channel": "import",
        "precedence": list(rules.PRECEDENCE),
        "evidence_type": evidence_type_id,
        "entry_ids": _sequence_of(Suppression._meta.db_table),
        "opt_out_ids": _sequence_of("compliance_optoutrequest"),
        "actor_label": actor.label[:200],
        "via": actor.via,
        "actor_user": actor.user_id,
        "actor_api_key": actor.api_key_id,
    }
    connection.ensure_connection()
    # Server-side binding on Django's connection and transaction, as blocking_rows does: the
    # arrays travel as binary values rather than thousands of literals in the query text.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(OPT_OUT_APPLY, params, binary=True)
        found = cursor.fetchall()
    added, expected, _ = found[0][:3]
    if added != expected:
        raise InsertedMeanwhile(f"{expected - added} key(s) inserted meanwhile")
    return [AppliedRow(*row[3:]) for row in found if row[3] is not None]
