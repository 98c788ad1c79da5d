"""Reads for a relay's local mirror: which hashes block a stream, and where the change feed stands.

A relay loads a hash export once and then follows the change feed (`GET
/api/v1/suppressions/changes?since=CURSOR`). The export therefore names the feed position it is
consistent with: both are read in one transaction, so every change not in the export comes after
that position in the feed (docs/relays/mirror.md). Both run on the database of the relay read
they are part of (`compliance.replicas`): a replica's snapshot gives a position as safe as the
primary's (suppression/sql.py, FEED_SQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import Q, QuerySet

from compliance.models import Stream, Tenant
from compliance.replicas import read_alias, read_connection
from suppression import rules
from suppression.models import Suppression, SuppressionEvent, active_q, blocking_q
from suppression.selectors import Cursor

# The last feed position whose transaction is older than every transaction running at this
# snapshot: every such change is visible to the snapshot (or was rolled back). Changes of younger
# transactions may or may not be in the export; the mirror replays them, which changes nothing
# for those already in it. The same boundary the feed itself uses (suppression/sql.py FEED_SQL).
_FEED_POSITION_SQL = """
SELECT txid, id FROM suppression_suppressionevent
WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY txid DESC, id DESC
LIMIT 1
"""


@contextmanager
def consistent_snapshot() -> Iterator[None]:
    """A read-only transaction in which every query sees the same moment.

    PostgreSQL: REPEATABLE READ, so a long export and its feed position agree. SQLite
    serialises writers and a read transaction sees one state from its first read.
    """
    connection = read_connection()
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=read_alias()):
        if outermost and connection.vendor == "postgresql":
            # Must be the transaction's first statement; inside an outer transaction (a test)
            # that transaction's own isolation applies.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # Locked before the snapshot is taken: a rebuild of the list committed in
                # between (suppression/partitioning.py) would leave this snapshot an empty
                # table. Readers never wait on each other; a rebuild's swap waits for this.
                cursor.execute(f"LOCK TABLE {Suppression._meta.db_table} IN ACCESS SHARE MODE")
        yield


def feed_position() -> Cursor:
    """The change-feed cursor matching what this transaction sees (call inside
    `consistent_snapshot`, before reading the rows)."""
    connection = read_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_FEED_POSITION_SQL)
            row = cursor.fetchone()
        return Cursor(*row) if row else Cursor(0, 0)
    # SQLite: the feed is ordered by id alone (txid is 0).
    last = SuppressionEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return Cursor(0, last or 0)


def blocking_entries(*, tenant: Tenant | None, stream: Stream | None) -> QuerySet[Suppression]:
    """Active entries that must not get mail: those that block `stream` by the rule in
    `suppression/rules.py` (no topic), or, when no stream is named, every active entry of
    `tenant` and the shared ones (of every tenant when `tenant` is None too)."""
    if stream is not None:
        keys = rules.blocking_keys(
            tenant_id=stream.tenant_id, stream_id=stream.pk, commercial=stream.is_commercial
        )
        return Suppression.objects.filter(blocking_q(keys))
    rows = Suppression.objects.filter(active_q())
    if tenant is not None:
        rows = rows.filter(Q(tenant__isnull=True) | Q(tenant=tenant))
    return rows


def blocking_hashes(*, tenant: Tenant | None, stream: Stream | None) -> QuerySet:
    """The distinct hashes of `blocking_entries`, in hash order."""
    entries = blocking_entries(tenant=tenant, stream=stream)
    return entries.order_by("address_hash").values_list("address_hash", flat=True).distinct()
