"""Reads of the consent ledger: an address's state per purpose and its history, and the state a
write left behind."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.conf import settings

from compliance.consent import rules
from compliance.consent.models import ConsentRecord, ConsentState
from compliance.errors import ServiceError
from compliance.models import Tenant
from suppression import addresses


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
