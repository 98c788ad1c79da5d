"""Hot-path SQL of the consent ledger: the states a batch of send decisions reads.

PostgreSQL gets the hand-written query (measured by bench/send_decisions.py); SQLite, the
embedded default, gets the ORM with the same results.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import NamedTuple

import psycopg
from django.db import connection

from compliance.consent.models import ConsentState

# The stream-wide row (topic_key 0) and, when a topic is asked, the topic's row, for each hash.
# The hashes travel as one bytea cut apart by the server, as in suppression.sql.BLOCKING_SQL.
# Each hash is looked up in the unique key (address_hash, tenant, stream, topic_key) by a
# LATERAL subquery that OFFSET 0 keeps from being flattened: as a plain join the planner hashed
# the whole table whenever most of it belonged to the asked stream (one tenant, one marketing
# stream), a sequential scan that grows with the ledger (436 ms against 85 ms for the probes
# at 300,000 states and 10,000 hashes; bench/send_decisions.py).
STATES_SQL = """
SELECT c.address_hash, c.topic_key, c.action, c.basis, c.since, c.record_id
FROM generate_series(0, length(%(hashes)b::bytea) / 32 - 1) AS i
CROSS JOIN LATERAL (
    SELECT address_hash, topic_key, action, basis, since, record_id
    FROM consent_consentstate
    WHERE address_hash = substring(%(hashes)b::bytea FROM i * 32 + 1 FOR 32)
      AND tenant_id = %(tenant)s AND stream_id = %(stream)s
      AND topic_key = ANY(%(topic_keys)s)
    OFFSET 0
) AS c
"""


class StateRow(NamedTuple):  # a tuple: a batch reads thousands of these
    address_hash: bytes
    topic_key: int  # 0 for the stream-wide row
    action: str
    basis: str
    since: datetime.datetime
    record_id: int


def state_rows(
    hashes: Sequence[bytes], *, tenant_id: int, stream_id: int, topic_id: int | None
) -> list[StateRow]:
    """The consent states of `hashes` for a tenant's stream (and topic): one query."""
    if not hashes:
        return []
    topic_keys = [0] if topic_id is None else [0, topic_id]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Binary parameters on Django's own connection and transaction, as the batch check does
        # (suppression.sql.blocking_rows); errors are wrapped as Django's.
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                STATES_SQL,
                {
                    "hashes": b"".join(sorted(hashes)),
                    "tenant": tenant_id,
                    "stream": stream_id,
                    "topic_keys": topic_keys,
                },
                binary=True,
            )
            return list(map(StateRow._make, cursor.fetchall()))
    found = []
    hashes = list(hashes)
    for start in range(0, len(hashes), 500):  # SQLite caps the parameters of one query
        rows = ConsentState.objects.filter(
            tenant_id=tenant_id,
            stream_id=stream_id,
            topic_key__in=topic_keys,
            address_hash__in=hashes[start : start + 500],
        ).values_list("address_hash", "topic_key", "action", "basis", "since", "record_id")
        found.extend(StateRow(bytes(h), *rest) for h, *rest in rows)
    return found
