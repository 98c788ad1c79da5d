"""The consent ledger's hand-written SQL in one place: moving the current state forward, the bulk
import (measured by bench/import_consents.py), and the states a batch of send decisions reads
(measured by bench/send_decisions.py).

PostgreSQL and SQLite both accept STATE_ADVANCE; the import's statements and the withdrawals of
a batch of opt-outs are PostgreSQL only (SQLite, the embedded default, writes row by row
through the services).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import NamedTuple

import psycopg
from django.db import connection

from compliance.consent import rules
from compliance.consent.models import ConsentState
from compliance.models import Stream
from compliance.replicas import read_connection

# A record becomes its purpose's state only if it is later than the state held (the ledger's
# order breaks a tie): a record that arrives late, such as an import of old consents, never
# overrides a newer state.
STATE_ADVANCE = """
ON CONFLICT (address_hash, tenant_id, stream_id, topic_key) DO UPDATE SET
    action = excluded.action, basis = excluded.basis, since = excluded.since,
    record_id = excluded.record_id
WHERE excluded.since > consent_consentstate.since
   OR (excluded.since = consent_consentstate.since
       AND excluded.record_id > consent_consentstate.record_id)
"""

IMPORT_TEMP_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS consent_import_chunk (
    line integer, import_key text, address text, address_hash bytea, stream_id bigint,
    topic_id bigint, action text, basis text, method text, jurisdiction text,
    occurred_at timestamptz, ip inet, user_agent text, page_url text, form_id text,
    text_id bigint, privacy_notice_version text
) ON COMMIT DELETE ROWS
"""

IMPORT_COLUMNS = (
    "line",
    "import_key",
    "address",
    "address_hash",
    "stream_id",
    "topic_id",
    "action",
    "basis",
    "method",
    "jurisdiction",
    "occurred_at",
    "ip",
    "user_agent",
    "page_url",
    "form_id",
    "text_id",
    "privacy_notice_version",
)
IMPORT_COPY = f"COPY consent_import_chunk ({', '.join(IMPORT_COLUMNS)}) FROM STDIN"

# One statement per chunk: the records whose import key is new (a row imported before, or twice
# in the file, is left out), then the state of each purpose they touch, from the latest of them.
IMPORT_INSERT = f"""
WITH new AS (
    INSERT INTO consent_consentrecord (
        actor_user_id, actor_api_key_id, actor_label, via, tenant_id, stream_id, topic_id,
        address, address_hash, action, basis, method, jurisdiction, occurred_at, recorded_at,
        ip, user_agent, page_url, form_id, text_id, privacy_notice_version, cause, import_key)
    SELECT %(actor_user)s, %(actor_api_key)s, %(actor_label)s, %(via)s, %(tenant)s,
           c.stream_id, c.topic_id, c.address, c.address_hash, c.action, c.basis, c.method,
           c.jurisdiction, c.occurred_at, %(now)s, c.ip, c.user_agent, c.page_url, c.form_id,
           c.text_id, c.privacy_notice_version, '', c.import_key
    FROM consent_import_chunk AS c
    ORDER BY c.line
    ON CONFLICT (import_key) DO NOTHING
    RETURNING id, address_hash, stream_id, topic_id, action, basis, occurred_at
), latest AS (
    SELECT DISTINCT ON (address_hash, stream_id, coalesce(topic_id, 0)) *
    FROM new
    ORDER BY address_hash, stream_id, coalesce(topic_id, 0), occurred_at DESC, id DESC
), states AS (
    INSERT INTO consent_consentstate
        (tenant_id, address_hash, stream_id, topic_id, action, basis, since, record_id)
    SELECT %(tenant)s, address_hash, stream_id, topic_id, action, basis, occurred_at, id
    FROM latest
    {STATE_ADVANCE}
    RETURNING 1
)
SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM states)
"""

_COPY_SPECIALS = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value) -> str:
    """One value in COPY's text format: None as NULL, bytes as bytea hex."""
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.translate(_COPY_SPECIALS)
    return text


def copy_line(values) -> str:
    """A row of IMPORT_COPY's data, its values in IMPORT_COLUMNS order."""
    return "\t".join(map(copy_field, values)) + "\n"


def insert_copied_records(
    data: str, *, tenant_id: int, now: datetime.datetime, actor
) -> tuple[int, int]:
    """Insert the new records among the COPY rows in `data` and advance their states; return
    (records added, states written or moved). PostgreSQL only; call inside a transaction."""
    with connection.cursor() as cursor:
        cursor.execute(IMPORT_TEMP_TABLE)
        with cursor.copy(IMPORT_COPY) as copy:
            copy.write(data)
        cursor.execute(
            IMPORT_INSERT,
            {
                "tenant": tenant_id,
                "now": now,
                "actor_user": actor.user_id,
                "actor_api_key": actor.api_key_id,
                "actor_label": actor.label[:200],
                "via": actor.via,
            },
        )
        added, states = cursor.fetchone()
    return added, states


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
    # The database of the relay read (a send decision) this is part of: a replica or the primary.
    db = read_connection()
    if db.vendor == "postgresql":
        db.ensure_connection()
        # Binary parameters on Django's own connection and transaction, as the batch check does
        # (suppression.sql.blocking_rows); errors are wrapped as Django's.
        with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
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


# The withdrawals a batch of opt-outs leaves (suppression.services.batches), one statement: what
# services.withdraw_for_opt_out writes for each opt-out in turn. An opt-out of a topic or a
# stream withdraws that purpose; one of all commercial mail (no stream given) every commercial
# stream of the tenant, in stream order. A record keeps the basis of its purpose's state as it
# stood before the batch (a withdrawal copies the basis, so one earlier in the batch leaves it
# as it was), and the latest record per purpose becomes its state, as STATE_ADVANCE allows.
OPT_OUT_WITHDRAW = f"""
WITH opt_outs AS (
    SELECT * FROM unnest(
        %(tenant)b::bigint[], %(hash)b::bytea[], %(address)b::text[], %(stream)b::bigint[],
        %(topic)b::bigint[], %(occurred)b::timestamptz[], %(method)b::text[], %(cause)b::text[]
    ) WITH ORDINALITY AS o(tenant_id, address_hash, address, stream_id, topic_id, occurred_at,
                           method, cause, ord)
), purposes AS (
    SELECT o.*, o.stream_id AS purpose_stream, o.topic_id AS purpose_topic
    FROM opt_outs AS o
    WHERE o.stream_id IS NOT NULL
    UNION ALL
    SELECT o.*, s.id, NULL
    FROM opt_outs AS o
    JOIN compliance_stream AS s ON s.tenant_id = o.tenant_id AND s.kind = %(commercial)s
    WHERE o.stream_id IS NULL
), new AS (
    INSERT INTO consent_consentrecord (
        actor_user_id, actor_api_key_id, actor_label, via, tenant_id, stream_id, topic_id,
        address, address_hash, action, basis, method, jurisdiction, occurred_at, recorded_at,
        ip, user_agent, page_url, form_id, text_id, privacy_notice_version, confirmed_at,
        confirmed_ip, cause, import_key)
    SELECT %(actor_user)s, %(actor_api_key)s, %(actor_label)s, %(via)s, p.tenant_id,
           p.purpose_stream, p.purpose_topic, p.address, p.address_hash, %(withdrawn)s,
           coalesce(st.basis, %(consent)s), p.method, '', p.occurred_at, %(now)s, NULL, '', '',
           '', NULL, '', NULL, NULL, p.cause, NULL
    FROM purposes AS p
    LEFT JOIN consent_consentstate AS st ON st.address_hash = p.address_hash
        AND st.tenant_id = p.tenant_id AND st.stream_id = p.purpose_stream
        AND st.topic_key = coalesce(p.purpose_topic, 0)
    ORDER BY p.ord, p.purpose_stream
    RETURNING id, tenant_id, stream_id, topic_id, address, address_hash, basis, method,
              occurred_at
), latest AS (
    SELECT DISTINCT ON (address_hash, tenant_id, stream_id, coalesce(topic_id, 0)) *
    FROM new
    ORDER BY address_hash, tenant_id, stream_id, coalesce(topic_id, 0), occurred_at DESC,
             id DESC
), states AS (
    INSERT INTO consent_consentstate
        (tenant_id, address_hash, stream_id, topic_id, action, basis, since, record_id)
    SELECT tenant_id, address_hash, stream_id, topic_id, %(withdrawn)s, basis, occurred_at, id
    FROM latest
    ORDER BY address_hash, tenant_id, stream_id, coalesce(topic_id, 0)
    {STATE_ADVANCE}
    RETURNING 1
)
SELECT * FROM new ORDER BY id
"""


class OptOutPurpose(NamedTuple):
    """An opt-out of a batch as OPT_OUT_WITHDRAW takes it: `stream_id` None for one of all the
    tenant's commercial mail."""

    tenant_id: int
    address_hash: bytes
    address: str | None
    stream_id: int | None
    topic_id: int | None
    occurred_at: datetime.datetime
    method: str
    cause: str


class Withdrawal(NamedTuple):
    """A withdrawal OPT_OUT_WITHDRAW recorded."""

    record_id: int
    tenant_id: int
    stream_id: int
    topic_id: int | None
    address: str | None
    address_hash: bytes
    basis: str
    method: str
    occurred_at: datetime.datetime


def withdraw_for_opt_outs(
    opt_outs: Sequence[OptOutPurpose], *, now: datetime.datetime, actor
) -> list[Withdrawal]:
    """Run OPT_OUT_WITHDRAW; return the records written, in ledger order. PostgreSQL only; call
    inside a transaction."""
    params = {
        "tenant": [o.tenant_id for o in opt_outs],
        "hash": [o.address_hash for o in opt_outs],
        "address": [o.address for o in opt_outs],
        "stream": [o.stream_id for o in opt_outs],
        "topic": [o.topic_id for o in opt_outs],
        "occurred": [o.occurred_at for o in opt_outs],
        "method": [o.method for o in opt_outs],
        "cause": [o.cause for o in opt_outs],
        "commercial": Stream.Kind.COMMERCIAL.value,
        "withdrawn": rules.WITHDRAWN,
        "consent": rules.CONSENT,
        "now": now,
        "actor_user": actor.user_id,
        "actor_api_key": actor.api_key_id,
        "actor_label": actor.label[:200],
        "via": actor.via,
    }
    connection.ensure_connection()
    # Binary parameters on Django's own connection and transaction, as state_rows does.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(OPT_OUT_WITHDRAW, params, binary=True)
        return list(map(Withdrawal._make, cursor.fetchall()))
