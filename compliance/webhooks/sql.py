"""The outbox's hand-written SQL: many events and their deliveries in one statement, for the
changes a batch of opt-outs makes at once (services/outbox.py `record_many`). PostgreSQL only;
one event at a time goes through the ORM on either database."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import NamedTuple

import psycopg
from django.db import connection

# The events in the order given (their ids follow it, so deliveries for one address keep that
# order), then one pending delivery per event and endpoint.
OUTBOX_INSERT = """
WITH events AS (
    INSERT INTO webhooks_webhookevent
        (public_id, event_type, occurred_at, tenant_id, address_hash, body, opt_out_id)
    SELECT public_id, event_type, occurred_at, tenant_id, address_hash, body, opt_out_id
    FROM unnest(
        %(public_id)b::text[], %(event_type)b::text[], %(occurred_at)b::timestamptz[],
        %(tenant)b::bigint[], %(hash)b::bytea[], %(body)b::text[], %(opt_out)b::bigint[]
    ) WITH ORDINALITY AS e(public_id, event_type, occurred_at, tenant_id, address_hash, body,
                           opt_out_id, n)
    ORDER BY n
    RETURNING id, public_id, address_hash
)
INSERT INTO webhooks_webhookdelivery
    (endpoint_id, event_id, order_key, status, attempts, next_attempt_at, last_error)
SELECT d.endpoint_id, events.id, events.address_hash, %(pending)s, 0, %(now)s, ''
FROM unnest(%(d_event)b::text[], %(d_endpoint)b::bigint[]) AS d(public_id, endpoint_id)
JOIN events USING (public_id)
ORDER BY events.id, d.endpoint_id
"""


class Event(NamedTuple):
    """One event as stored, with the endpoints it goes to."""

    public_id: str
    event_type: str
    occurred_at: datetime.datetime
    tenant_id: int | None
    address_hash: bytes
    body: str
    opt_out_id: int | None
    endpoint_ids: Sequence[int]


def insert_events(events: Sequence[Event], *, now: datetime.datetime, pending: str) -> None:
    """Store `events` and a delivery (status `pending`, due `now`) per endpoint of each."""
    params = {
        "public_id": [e.public_id for e in events],
        "event_type": [e.event_type for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "tenant": [e.tenant_id for e in events],
        "hash": [bytes(e.address_hash) for e in events],
        "body": [e.body for e in events],
        "opt_out": [e.opt_out_id for e in events],
        "d_event": [e.public_id for e in events for _ in e.endpoint_ids],
        "d_endpoint": [endpoint for e in events for endpoint in e.endpoint_ids],
        "now": now,
        "pending": pending,
    }
    connection.ensure_connection()
    # Binary parameters on Django's own connection and transaction (suppression.sql does so).
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(OUTBOX_INSERT, params, binary=True)
