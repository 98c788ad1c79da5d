"""Reads of the consent ledger: an address's state per purpose and its history, the state a write
left behind, and the send decision: may these addresses get this mail?"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from compliance import jurisdictions
from compliance.consent import decisions, rules, sql
from compliance.consent.models import ConsentRecord, ConsentState
from compliance.errors import ServiceError
from compliance.models import Stream, Tenant, Topic
from suppression import addresses
from suppression import selectors as suppression_selectors


def _purpose(stream_slug: str, topic_slug: str | None) -> rules.Purpose:
    return rules.Purpose(stream_slug, topic_slug)


def _events(rows: Iterable[ConsentState]) -> list[rules.Event]:
    return [
        rules.Event(
            purpose=_purpose(row.stream.slug, row.topic.slug if row.topic_id else None),
            action=row.action,
            basis=row.basis,
            occurred_at=row.since,
            sequence=row.record_id,
        )
        for row in rows
    ]


def _states_of(tenant_ids: set[int], hashes: set[bytes]) -> dict[tuple[int, bytes], list]:
    rows = ConsentState.objects.filter(
        tenant_id__in=tenant_ids, address_hash__in=list(hashes)
    ).select_related("stream", "topic")
    found: dict[tuple[int, bytes], list] = {}
    for row in rows:
        found.setdefault((row.tenant_id, bytes(row.address_hash)), []).append(row)
    return found


def answers_after(records: Sequence[ConsentRecord]) -> list[dict]:
    """Per record written, its purpose's resulting state (a late record may not be the one in
    force), in the records' order."""
    if not records:
        return []
    states = _states_of({r.tenant_id for r in records}, {bytes(r.address_hash) for r in records})
    answers = []
    for record in records:
        purpose = _purpose(record.stream.slug, record.topic.slug if record.topic_id else None)
        events = _events(states.get((record.tenant_id, bytes(record.address_hash)), []))
        state = rules.state_of(purpose, events)
        answers.append(
            {
                "address": record.address,
                "purpose": str(purpose),
                "state": state.action if state else record.action,
                "basis": state.basis if state else record.basis,
                "since": state.since if state else record.occurred_at,
                "record": record.pk,
            }
        )
    return answers


def _evidence(record: ConsentRecord) -> dict:
    return {
        "collected_at": record.occurred_at,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "page_url": record.page_url,
        "form_id": record.form_id,
        "wording": record.text.body if record.text_id else "",
        "wording_id": record.text_id,
        "privacy_notice_version": record.privacy_notice_version,
        "confirmed_at": record.confirmed_at,
        "confirmed_ip": record.confirmed_ip,
    }


def history_of(tenant: Tenant, address_hash: bytes) -> list[dict]:
    records = (
        ConsentRecord.objects.filter(tenant=tenant, address_hash=address_hash)
        .select_related("stream", "topic", "text")
        .order_by("occurred_at", "id")
    )
    return [
        {
            "id": r.pk,
            "purpose": r.purpose,
            "action": r.action,
            "basis": r.basis,
            "method": r.method,
            "jurisdiction": r.jurisdiction,
            "occurred_at": r.occurred_at,
            "recorded_at": r.recorded_at,
            "evidence": _evidence(r),
            "cause": r.cause,
            "recorded_by": r.actor_label,
        }
        for r in records
    ]


def consent_of(tenant: Tenant, address: str) -> dict:
    """`GET /api/v1/consents`: the state of each purpose the ledger knows for this address, and
    every record about it, for one tenant. Raises ServiceError for an invalid address."""
    try:
        normalised = addresses.normalise(address)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid address {address!r}: {exc.reason}", code="invalid_address"
        ) from None
    digest = addresses.address_hash(normalised, settings.ADDRESS_HASH_KEY.encode())
    events = _events(_states_of({tenant.pk}, {digest}).get((tenant.pk, digest), []))
    return {
        "address": normalised,
        "purposes": [
            {
                "purpose": str(state.purpose),
                "state": state.action,
                "basis": state.basis,
                "since": state.since,
            }
            for state in rules.states(events)
        ],
        "history": history_of(tenant, digest),
    }


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
    originals, invalid, blocked = suppression_selectors.check_batch(
        stream=stream, topic=topic, addresses_=addresses_
    )
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
            reason, scope, _ = entry
            blocking = blockings.get((reason, scope))
            if blocking is None:
                blocking = blockings[(reason, scope)] = decisions.Blocking(reason, scope)
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
