"""Proof of compliance: everything this service knows about one address, as one timeline.

Consents with their evidence (GDPR Art. 7(1)), opt-outs with how long each took to apply against
the 48-hour mailbox-provider target and CAN-SPAM's 10 business days, suppressions and their
history, the reports that named the address, and its data-subject requests. Read by the admin
page, its CSV and PDF, and `GET /api/v1/proof`; each caller records the read with
`compliance.audit.record_access`.

The address is found by its keyed hash, so the timeline still answers after an erasure.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from compliance import deadlines
from compliance.consent import selectors as consent_selectors
from compliance.consent.models import ConsentRecord
from compliance.dsr.models import DataSubjectRequest
from compliance.errors import ServiceError
from compliance.models import OptOutRequest, Tenant
from fbl import selectors as fbl_selectors
from suppression import addresses
from suppression.models import Suppression

CONSENT = "consent"
OPT_OUT = "opt_out"
SUPPRESSION = "suppression"
REPORT = "report"
REQUEST = "request"
KINDS = (CONSENT, OPT_OUT, SUPPRESSION, REPORT, REQUEST)


@dataclass(frozen=True)
class Entry:
    at: datetime.datetime
    kind: str
    summary: str
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"at": self.at, "kind": self.kind, "summary": self.summary, "details": self.details}


@dataclass(frozen=True)
class Proof:
    address: str
    address_hash: bytes
    tenant: Tenant | None
    entries: list[Entry]

    def as_dict(self) -> dict:
        return {
            "address": self.address,
            "tenant": self.tenant.slug if self.tenant else None,
            "entries": [e.as_dict() for e in self.entries],
        }


def _slug(tenant: Tenant | None) -> str | None:
    return tenant.slug if tenant is not None else None


def _mine_or_shared(tenant: Tenant | None) -> Q:
    """A tenant sees its own rows and the shared ones (no tenant); staff without one, all."""
    return Q() if tenant is None else Q(tenant=tenant) | Q(tenant__isnull=True)


def _consents(digest: bytes, tenant: Tenant | None) -> list[Entry]:
    if tenant is not None:
        tenants = [tenant]
    else:
        ids = ConsentRecord.objects.filter(address_hash=digest).values("tenant_id").distinct()
        tenants = list(Tenant.objects.filter(pk__in=ids))
    entries = []
    for each in tenants:
        for record in consent_selectors.history_of(each, digest):
            entries.append(
                Entry(
                    at=record["occurred_at"],
                    kind=CONSENT,
                    summary=f"{record['action']} {record['purpose']} "
                    f"({record['basis']}, {record['method']})",
                    details={"tenant": each.slug, **record},
                )
            )
    return entries


def _opt_outs(digest: bytes, tenant: Tenant | None) -> list[Entry]:
    rows = OptOutRequest.objects.filter(_mine_or_shared(tenant), address_hash=digest)
    entries = []
    for row in rows.select_related("tenant"):
        timing = deadlines.opt_out_timing(row.received_at, row.applied_at)
        if row.applied_at is None:
            took = "not applied yet"
        else:
            took = f"applied after {_duration(row.applied_at - row.received_at)}"
        verdict = ", ".join(
            [
                "within 48 hours" if timing["within_48_hours"] else "later than 48 hours",
                "within 10 business days"
                if timing["within_10_business_days"]
                else "later than 10 business days",
            ]
        )
        entries.append(
            Entry(
                at=row.received_at,
                kind=OPT_OUT,
                summary=f"{row.get_channel_display()} opt-out of {row.scope_label}: "
                f"{took} ({verdict})",
                details={
                    "tenant": _slug(row.tenant),
                    "channel": row.channel,
                    "scope": row.scope_label,
                    "received_at": row.received_at,
                    "applied_at": row.applied_at,
                    **timing,
                    # The tenant's own deadlines, and when every downstream system had it.
                    "provider_due_at": row.provider_due_at,
                    "can_spam_due_at": row.can_spam_due_at,
                    "propagated_at": row.propagated_at,
                },
            )
        )
    return entries


def _duration(span: datetime.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] if days else []
    return " ".join([*parts, f"{hours}h {minutes:02d}m"])


def _suppressions(digest: bytes, tenant: Tenant | None) -> list[Entry]:
    # Through the (address hash, scope key) unique index, then each entry's own history.
    rows = (
        Suppression.objects.filter(_mine_or_shared(tenant), address_hash=digest)
        .select_related("tenant", "stream", "topic__stream")
        .prefetch_related("events")
    )
    entries = []
    for row in rows:
        for event in row.events.all():
            entries.append(
                Entry(
                    at=event.occurred_at,
                    kind=SUPPRESSION,
                    summary=f"{event.get_action_display()}: {event.reason} ({row.scope_label})",
                    details={
                        "tenant": _slug(row.tenant),
                        "suppression": row.pk,
                        "action": event.action,
                        "scope": row.scope_label,
                        "reason": event.reason,
                        "origin": event.origin,
                        "note": event.note,
                        "evidence": event.evidence_note,
                        "by": event.actor_label,
                        "via": event.via,
                        "active_now": row.is_active,
                    },
                )
            )
    return entries


def _reports(address: str, digest: bytes, tenant: Tenant | None) -> list[Entry]:
    # The messages that mention the address (the erasure index), each checked for naming it as
    # a recipient.
    rows = fbl_selectors.messages_mentioning(digest).select_related("tenant")
    if tenant is not None:
        rows = rows.filter(tenant=tenant)  # a report posted by another tenant is theirs alone
    entries = []
    for message in rows.defer("raw_gzip"):
        named = [r for r in (message.parsed or {}).get("recipients", []) if _is(r, address)]
        if not named:
            continue
        parsed = message.parsed
        entries.append(
            Entry(
                at=message.received_at,
                kind=REPORT,
                summary=f"{message.kind or 'unknown'} report"
                + (f" ({message.feedback_type})" if message.feedback_type else "")
                + f", message #{message.pk}: {message.get_status_display()}",
                details={
                    "tenant": _slug(message.tenant),
                    "message": message.pk,
                    "kind": message.kind,
                    "feedback_type": message.feedback_type,
                    "status": message.status,
                    "source": message.source,
                    "reported_domain": parsed.get("reported_domain"),
                    "dkim_domain": message.dkim_domain,
                    "recipient": {k: named[0].get(k) for k in ("status", "action", "hard")},
                    "original_message_id": parsed.get("original_message_id"),
                },
            )
        )
    return entries


def _is(recipient, address: str) -> bool:
    written = recipient.get("address") if isinstance(recipient, dict) else None
    try:
        return bool(written) and addresses.normalise(written) == address
    except addresses.InvalidAddress:
        return False


def _requests(digest: bytes, tenant: Tenant | None) -> list[Entry]:
    rows = (
        DataSubjectRequest.objects.filter(_mine_or_shared(tenant), address_hash=digest)
        .select_related("tenant")
        .prefetch_related("steps")
    )
    return [
        Entry(
            at=row.received_at,
            kind=REQUEST,
            summary=f"{row.get_kind_display()} request #{row.pk}: {row.get_status_display()}, "
            f"due {row.due:%Y-%m-%d}",
            details={
                "tenant": _slug(row.tenant),
                "request": row.pk,
                "kind": row.kind,
                "status": row.status,
                "due": row.due,
                "fulfilled_at": row.fulfilled_at,
                "steps": [
                    {"step": s.step, "at": s.occurred_at, "note": s.note, "by": s.actor_label}
                    for s in row.steps.all()
                ],
            },
        )
        for row in rows
    ]


def hash_of(address: str) -> tuple[str, bytes]:
    """The normalised address and its keyed hash. Raises ServiceError for an invalid address."""
    try:
        normalised = addresses.normalise(address)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid address {address!r}: {exc.reason}", code="invalid_address"
        ) from None
    return normalised, addresses.address_hash(normalised, settings.ADDRESS_HASH_KEY.encode())


def proof_of(address: str, *, tenant: Tenant | None = None) -> Proof:
    """The timeline of `address`, oldest first, for one tenant (its own and shared rows) or, with
    `tenant=None`, across every tenant. Raises ServiceError for an invalid address."""
    normalised, digest = hash_of(address)
    entries = [
        *_consents(digest, tenant),
        *_opt_outs(digest, tenant),
        *_suppressions(digest, tenant),
        *_reports(normalised, digest, tenant),
        *_requests(digest, tenant),
    ]
    entries.sort(key=lambda e: (e.at, KINDS.index(e.kind)))
    return Proof(address=normalised, address_hash=digest, tenant=tenant, entries=entries)
