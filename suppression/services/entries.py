"""Every write to the suppression list: add, lift, and the opt-out record an opt-out leaves.

Each function is one transaction that changes the entry, appends its history event and, for an
opt-out, writes the `OptOutRequest` the deadline tracking builds on. Functions raise
`compliance.errors.ServiceError` (or a subclass) for requests the rules refuse.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from compliance import audit, deadlines, propagation
from compliance.errors import PermissionDenied, ServiceError
from compliance.models import OptOutRequest
from suppression import addresses, rules, signals
from suppression.models import Origin, Suppression, SuppressionEvent
from suppression.scopes import Target

Channel = OptOutRequest.Channel

# The opt-out channel an entry's origin stands for, when the caller names none.
CHANNEL_FOR_ORIGIN = {
    Origin.API: Channel.API,
    Origin.STAFF: Channel.STAFF,
    Origin.IMPORT: Channel.IMPORT,
    Origin.PROVIDER_REPORT: Channel.COMPLAINT,
    Origin.RELAY: Channel.COMPLAINT,
    Origin.RECIPIENT: Channel.LANDING_PAGE,
}


def _now() -> datetime.datetime:
    return timezone.now()


def hash_key() -> bytes:
    return settings.ADDRESS_HASH_KEY.encode()


def normalise_and_hash(address: str) -> tuple[str, bytes]:
    """Raises ServiceError for an address that is not valid."""
    try:
        normalised = addresses.normalise(address)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid address {address!r}: {exc.reason}", code="invalid_address"
        ) from exc
    return normalised, addresses.address_hash(normalised, hash_key())


@dataclass(frozen=True)
class Outcome:
    suppression: Suppression
    action: str | None  # the SuppressionEvent action written, None when nothing changed

    @property
    def changed(self) -> bool:
        return self.action is not None


def _evidence_fields(evidence: Model | None) -> dict:
    if evidence is None:
        return {"evidence_type": None, "evidence_id": ""}
    return {
        "evidence_type": ContentType.objects.get_for_model(evidence),
        "evidence_id": str(evidence.pk),
    }


def _append_event(
    row: Suppression,
    action: str,
    *,
    reason: str,
    origin: str,
    note: str = "",
    evidence: dict | None = None,
    evidence_note: str = "",
) -> SuppressionEvent:
    actor = audit.current_actor()
    evidence = evidence or {"evidence_type": None, "evidence_id": ""}
    return SuppressionEvent.objects.create(
        suppression=row,
        action=action,
        reason=reason,
        origin=origin,
        scope_key=row.scope_key,
        address_hash=row.address_hash,
        note=note,
        **SuppressionEvent.actor_fields(actor),
        evidence_note=evidence_note[:500],
        **evidence,
    )


def suppress(
    *,
    target: Target,
    address: str,
    reason: str,
    origin: str,
    evidence: Model | None = None,
    evidence_note: str = "",
    created_at: datetime.datetime | None = None,
    expires_at: datetime.datetime | None = None,
    channel: str | None = None,
) -> Outcome:
    """Suppress `address` under `target`. Idempotent: the same reason again changes nothing.

    A key that is already active keeps one row: the new reason is recorded in the history and the
    row keeps the weightier one. A lifted or expired key is added again. Raises ServiceError for an
    invalid address or reason.
    """
    if reason not in rules.PRECEDENCE:
        raise ServiceError(f"unknown reason {reason!r}", code="unknown_reason")
    normalised, digest = normalise_and_hash(address)
    return _suppress(
        target,
        normalised,
        digest,
        reason=reason,
        origin=origin,
        evidence=evidence,
        evidence_note=evidence_note,
        created_at=created_at,
        expires_at=expires_at,
        channel=channel,
    )


def suppress_erased(*, address_hash: bytes, evidence: Model | None, evidence_note: str) -> Outcome:
    """The global never-mail `erasure` entry of an erased address, known by its hash alone: the
    row keeps no address, and checks, the policy server, the mirror and re-imports of the
    address keep blocking it (GDPR Art. 17, DESIGN.md: keep only a keyed hash)."""
    return _suppress(
        Target(None, rules.GLOBAL),
        None,
        bytes(address_hash),
        reason=rules.ERASURE,
        origin=Origin.RECIPIENT,
        evidence=evidence,
        evidence_note=evidence_note,
    )


def _suppress(
    target: Target,
    normalised: str | None,
    digest: bytes,
    *,
    reason: str,
    origin: str,
    evidence: Model | None = None,
    evidence_note: str = "",
    created_at: datetime.datetime | None = None,
    expires_at: datetime.datetime | None = None,
    channel: str | None = None,
) -> Outcome:
    now = _now()
    evidence_fields = _evidence_fields(evidence)
    with transaction.atomic():
        row = (
            Suppression.objects.select_for_update()
            .filter(address_hash=digest, scope_key=target.key)
            .first()
        )
        if row is None:
            row = _insert_or_lock(
                target,
                digest,
                normalised,
                reason,
                origin,
                evidence_fields,
                evidence_note,
                created_at or now,
                expires_at,
            )
            action = SuppressionEvent.Action.ADD if row.created_now else None
        else:
            action = None
        if action is None:
            action = _apply_to_existing(
                row, normalised, reason, origin, evidence_fields, evidence_note, expires_at, now
            )
        if action is None:
            return Outcome(row, None)
        _append_event(
            row,
            action,
            reason=reason,
            origin=origin,
            evidence=evidence_fields,
            evidence_note=evidence_note,
        )
        request = None
        if reason in rules.OPT_OUTS and action != SuppressionEvent.Action.REASON:
            request = _record_opt_out(target, digest, created_at or now, now, channel, origin)
        signals.changed.send(
            sender=Suppression,
            suppression=row,
            action=action,
            address=normalised,
            target=target,
            opt_out=request,
        )
        if request is not None:
            signals.opted_out.send(
                sender=Suppression,
                request=request,
                target=target,
                address=normalised,
                reason=reason,
            )
    return Outcome(row, action)


def _record_opt_out(target, digest, received_at, now, channel, origin) -> OptOutRequest:
    channel = channel or CHANNEL_FOR_ORIGIN[origin]
    due = deadlines.opt_out_due(received_at, deadlines.policy_of(target.tenant))
    return OptOutRequest.objects.create(
        received_at=received_at,
        channel=channel,
        tenant=target.tenant,
        scope_key=target.key,
        scope_label=target.label,
        address_hash=digest,
        applied_at=now,
        provider_due_at=due.provider_due_at,
        can_spam_due_at=due.can_spam_due_at,
        propagated_at=None if _goes_downstream(target, channel) else now,
    )


def _goes_downstream(target: Target, channel: str) -> bool:
    """Whether an opt-out's clock runs on until downstream systems acknowledge it. Imports are
    never pushed downstream: a list imported from one system is usually that system's own, and
    a million events are better sent as an export."""
    if channel == Channel.IMPORT:
        return False
    return propagation.waits_for_downstream(target.tenant.pk if target.tenant else None)


def _insert_or_lock(
    target,
    digest,
    normalised,
    reason,
    origin,
    evidence_fields,
    evidence_note,
    created_at,
    expires_at,
) -> Suppression:
    row = Suppression(
        tenant=target.tenant,
        scope=target.scope,
        stream=target.stream,
        topic=target.topic,
        scope_key=target.key,
        address_hash=digest,
        address=normalised,
        reason=reason,
        origin=origin,
        evidence_note=evidence_note[:500],
        created_at=created_at,
        updated_at=created_at,
        expires_at=expires_at,
        **evidence_fields,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
        row.created_now = True
        return row
    except IntegrityError:
        # A concurrent request inserted the same key first: treat it as existing.
        row = Suppression.objects.select_for_update().get(address_hash=digest, scope_key=target.key)
        row.created_now = False
        return row


def _apply_to_existing(
    row, normalised, reason, origin, evidence_fields, evidence_note, expires_at, now
) -> str | None:
    if not row.is_active:
        row.reason = reason
        row.origin = origin
        row.lifted_at = None
        row.expires_at = expires_at
        row.evidence_note = evidence_note[:500]
        row.evidence_type = evidence_fields["evidence_type"]
        row.evidence_id = evidence_fields["evidence_id"]
        if (
            row.address is None
            and normalised
            and reason != rules.ERASURE
            and row.reason != rules.ERASURE
        ):
            row.address = normalised
        row.updated_at = now
        _write(row, *_READD_FIELDS)
        return SuppressionEvent.Action.READD
    if reason == row.reason and (expires_at is None) == (row.expires_at is None):
        return None
    row.reason = rules.weightier(row.reason, reason)
    # A permanent reason outlives a temporary one: drop the expiry.
    row.expires_at = None if expires_at is None else max(expires_at, row.expires_at or expires_at)
    row.updated_at = now
    _write(row, "reason", "expires_at", "updated_at")
    return SuppressionEvent.Action.REASON


_READD_FIELDS = (
    "reason",
    "origin",
    "lifted_at",
    "expires_at",
    "evidence_note",
    "evidence_type",
    "evidence_id",
    "address",
    "updated_at",
)


def _write(row: Suppression, *fields: str) -> None:
    """Store `fields` of `row`, found by its id and its hash: the list is partitioned by hash
    (suppression/partitioning.py), and with the hash PostgreSQL goes to the one partition that
    holds the row instead of asking every partition for the id."""
    Suppression.objects.filter(pk=row.pk, address_hash=row.address_hash).update(
        **{name: getattr(row, name) for name in fields}
    )


def reasons_in_force(row: Suppression) -> set[str]:
    """Every reason given for the entry since it was last lifted (the row shows only one)."""
    events = list(row.events.order_by("id").values_list("action", "reason"))
    since = max(
        (i for i, (action, _) in enumerate(events) if action == SuppressionEvent.Action.LIFT),
        default=-1,
    )
    return {row.reason} | {reason for _, reason in events[since + 1 :]}


def lift(*, suppression: Suppression, note: str, user=None) -> Suppression:
    """Lift an active entry. A reason is required; complaint, erasure, objection and legal
    entries need the `suppression.lift_protected` permission, which API keys never have.

    Raises ServiceError (400 without a reason, 409 when not active) or PermissionDenied.
    """
    note = (note or "").strip()
    if not note:
        raise ServiceError("a reason is required to lift a suppression", code="reason_required")
    with transaction.atomic():
        row = Suppression.objects.select_for_update().get(
            pk=suppression.pk, address_hash=suppression.address_hash
        )
        if not row.is_active:
            raise ServiceError("this suppression is not active", code="not_active", status=409)
        protected = sorted(reasons_in_force(row) & rules.PROTECTED)
        if protected and not (user is not None and user.has_perm("suppression.lift_protected")):
            raise PermissionDenied(
                f"lifting an entry with reason {', '.join(protected)} needs the "
                "'lift protected entries' permission"
            )
        row.lifted_at = _now()
        row.updated_at = row.lifted_at
        _write(row, "lifted_at", "updated_at")
        _append_event(
            row, SuppressionEvent.Action.LIFT, reason=row.reason, origin=row.origin, note=note
        )
        signals.changed.send(
            sender=Suppression,
            suppression=row,
            action=SuppressionEvent.Action.LIFT,
            address=row.address,
            target=Target(row.tenant, row.scope, row.stream, row.topic),
            opt_out=None,
        )
    return row
