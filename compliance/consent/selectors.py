"""Reads of the consent ledger: may these addresses get this mail?"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from compliance import jurisdictions
from compliance.consent import decisions, rules, sql
from compliance.errors import ServiceError
from compliance.models import Stream, Topic
from suppression import selectors as suppression_selectors


@dataclass(frozen=True)
class SendDecisions:
    checked: int
    allowed: int
    denied: list[tuple[str, decisions.Denial]] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


def regime_for(stream: Stream, jurisdiction: str | None) -> str:
    """The regime of the jurisdiction asked for, else of the stream's tenant. Raises
    ServiceError naming the known jurisdictions."""
    try:
        return jurisdictions.regime(jurisdiction or stream.tenant.jurisdiction)
    except jurisdictions.UnknownJurisdiction as exc:
        raise ServiceError(str(exc), code="unknown_jurisdiction") from None


def consent_states(
    *, stream: Stream, topic: Topic | None, hashes: Iterable[bytes]
) -> dict[bytes, rules.State]:
    """The effective consent of each hash that has one, for the stream's tenant: the latest of
    the stream-wide state and the topic's (`rules.state_of`), read in one query."""
    rows = sql.state_rows(
        list(hashes),
        tenant_id=stream.tenant_id,
        stream_id=stream.pk,
        topic_id=topic.pk if topic else None,
    )
    purpose = rules.Purpose(stream.slug, topic.slug if topic else None)
    found: dict[bytes, list[sql.StateRow]] = {}
    for row in rows:
        found.setdefault(row.address_hash, []).append(row)
    states = {}
    for digest, own in found.items():
        if len(own) == 1:
            # The one event there is decides (what state_of returns), without building events:
            # a batch has up to 100,000 of these.
            row = own[0]
            states[digest] = rules.State(purpose, row.action, row.basis, row.since)
        else:
            states[digest] = rules.state_of(purpose, [_event(row, stream, topic) for row in own])
    return states


def _event(row: sql.StateRow, stream: Stream, topic: Topic | None) -> rules.Event:
    return rules.Event(
        purpose=rules.Purpose(stream.slug, topic.slug if row.topic_key and topic else None),
        action=row.action,
        basis=row.basis,
        occurred_at=row.since,
        sequence=row.record_id,
    )


def decide_many(
    *,
    stream: Stream,
    addresses_: list[str],
    topic: Topic | None = None,
    jurisdiction: str | None = None,
    now: datetime.datetime | None = None,
) -> SendDecisions:
    """May mail of `stream` (and `topic`) go to each of `addresses_`? Suppressions through the
    batch check's own lookup and blocking rule, consent of the stream's tenant, then the decision
    table (`decisions.decide`) per address. Raises ServiceError: an unknown jurisdiction (400),
    more than the batch check's limit of addresses (413)."""
    regime = regime_for(stream, jurisdiction)
    originals, invalid = suppression_selectors.hashed_batch(addresses_)
    blocked = suppression_selectors.blocked_among(stream=stream, topic=topic, hashes=originals)
    # Transactional mail needs no consent (CAN-SPAM 7702(17), GDPR Art. 6(1)(b)): no query.
    commercial = stream.is_commercial
    states = consent_states(stream=stream, topic=topic, hashes=originals) if commercial else {}
    now = now or timezone.now()
    blockings: dict[tuple[str, str], decisions.Blocking] = {}
    denied: list[tuple[str, decisions.Denial]] = []
    allowed = 0
    for digest, spellings in originals.items():
        entry = blocked.get(digest)
        blocking = None
        if entry is not None:
            blocking = blockings.get((entry.reason, entry.scope))
            if blocking is None:
                blocking = blockings[(entry.reason, entry.scope)] = decisions.Blocking(
                    entry.reason, entry.scope
                )
        denial = decisions.decide(
            commercial=commercial,
            regime_name=regime,
            blocking=blocking,
            consent=states.get(digest),
            now=now,
        )
        if denial is None:
            allowed += len(spellings)
        else:
            denied.extend((raw, denial) for raw in spellings)
    return SendDecisions(checked=len(addresses_), allowed=allowed, denied=denied, invalid=invalid)
