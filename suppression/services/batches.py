"""Applying many opt-outs at once: entries, history and opt-out records for a whole batch in one
statement (`suppression.sql.OPT_OUT_APPLY`), the same rows `entries.suppress` writes for each of
them in turn. The layers above hear of the batch through one signal (`signals.changed_in_bulk`)
and write their own rows for it set-based, in the same transaction. PostgreSQL only: the
embedded default (SQLite) applies opt-outs one by one through `entries.suppress`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.db import OperationalError, transaction
from django.utils import timezone

from compliance import audit, deadlines, propagation
from suppression import addresses, rules, signals, sql
from suppression.scopes import Target
from suppression.services.entries import hash_key

# Attempts at a batch that met a key inserted by another writer, or a deadlock with another
# batch over the same entries, before the error is let through (the next sweep tries again).
ATTEMPTS = 3


class OptOut(NamedTuple):
    """One opt-out to apply: what `entries.suppress` is given for it."""

    target: Target
    address: str | None  # as stored; None once erased (the hash alone is suppressed)
    address_hash: bytes  # the stored hash, used when the address is gone or unreadable
    received_at: datetime.datetime
    channel: str
    evidence_id: str  # the evidence's primary key, of the `evidence_type` the batch names
    evidence_note: str


def suppress_opt_outs(
    opt_outs: Sequence[OptOut], *, reason: str, origin: str, evidence_type: ContentType
) -> list[signals.BulkChange]:
    """Suppress every opt-out of the batch, in order, as `entries.suppress` would one by one;
    returns the changes made (one per history event) after the layers above have written theirs.
    Call inside a transaction: the batch commits or rolls back with the caller's. Raises
    ValueError for a reason that is not an opt-out, DatabaseError when the database refuses."""
    if reason not in rules.OPT_OUTS:
        raise ValueError(f"{reason!r} is not an opt-out")
    if not opt_outs:
        return []
    places: dict[Target, int] = {}  # each target's place in `targets`, from 1
    targets: list[sql.OptOutTarget] = []
    policies: dict[int | None, deadlines.OptOutPolicy] = {}
    rows, normalised = [], []
    digest = addresses.hasher(hash_key())
    for item in opt_outs:
        place = places.get(item.target)
        if place is None:
            targets.append(_target_row(item.target, policies))
            place = places[item.target] = len(targets)
        address, address_hash = _normalised(item, digest)
        normalised.append(address)
        rows.append(
            sql.OptOutRow(
                target=place,
                address_hash=address_hash,
                address=address,
                received_at=item.received_at,
                channel=item.channel,
                evidence_id=item.evidence_id,
                evidence_note=item.evidence_note[:500],
            )
        )
    received = [item.received_at for item in opt_outs]
    due_days = _due_days(policies, min(received), max(received))
    actor = audit.current_actor()
    for attempt in range(1, ATTEMPTS + 1):
        now = timezone.now()
        try:
            with transaction.atomic():  # a savepoint: a failed attempt leaves nothing behind
                applied = sql.apply_opt_outs(
                    rows,
                    targets,
                    due_days=due_days,
                    now=now,
                    reason=reason,
                    origin=origin,
                    evidence_type_id=evidence_type.pk,
                    actor=actor,
                )
            break
        except sql.InsertedMeanwhile:
            if attempt == ATTEMPTS:
                raise
        except OperationalError as exc:
            if attempt == ATTEMPTS or not _deadlocked(exc):
                raise
    target_of = {place: target for target, place in places.items()}
    changes = [
        signals.BulkChange(
            action=done.action,
            target=target_of[rows[done.index].target],
            address=normalised[done.index],
            address_hash=rows[done.index].address_hash,
            suppression_id=done.suppression_id,
            entry_reason=done.reason,
            origin=done.origin,
            expires_at=done.expires_at,
            updated_at=done.updated_at,
            reason=reason,
            opt_out=None
            if done.opt_out_id is None
            else signals.BulkOptOut(
                id=done.opt_out_id,
                received_at=rows[done.index].received_at,
                channel=rows[done.index].channel,
                applied_at=done.applied_at,
                provider_due_at=done.provider_due_at,
                can_spam_due_at=done.can_spam_due_at,
            ),
        )
        for done in applied
    ]
    if changes:
        signals.changed_in_bulk.send(sender=sql.OptOutRow, changes=changes)
    return changes


def _normalised(item: OptOut, digest) -> tuple[str | None, bytes]:
    """The address as an entry keeps it, and its hash. An erased request keeps only its hash;
    an address the normaliser no longer takes keeps the hash it was recorded under, so one odd
    row cannot hold up a batch (`entries.suppress` would refuse it)."""
    if item.address is None:
        return None, bytes(item.address_hash)
    try:
        normalised = addresses.normalise(item.address)
    except addresses.InvalidAddress:
        return item.address, bytes(item.address_hash)
    return normalised, digest(normalised.encode())


def _target_row(target: Target, policies: dict) -> sql.OptOutTarget:
    policy = deadlines.policy_of(target.tenant)
    tenant_id = target.tenant.pk if target.tenant else None
    policies[tenant_id] = policy
    return sql.OptOutTarget(
        scope_key=target.key,
        scope_label=target.label,
        tenant_id=tenant_id,
        scope=target.scope,
        stream_id=target.stream.pk if target.stream else None,
        topic_id=target.topic.pk if target.topic else None,
        time_zone=policy.time_zone,
        target_hours=policy.target_hours,
        # entries._goes_downstream: an opt-out's clock runs until downstream systems have it
        # (imports excepted, by the statement).
        waits=propagation.waits_for_downstream(tenant_id),
    )


def _due_days(policies, earliest, latest) -> list[sql.DueDay]:
    """The CAN-SPAM due time of each local day the batch's opt-outs were received on, per
    tenant (a day either side of the batch's span, for time zones)."""
    due = []
    for tenant_id, policy in policies.items():
        day = deadlines.local_date(earliest, policy) - datetime.timedelta(days=1)
        last = deadlines.local_date(latest, policy) + datetime.timedelta(days=1)
        while day <= last:
            due.append(sql.DueDay(tenant_id, day, deadlines.opt_out_due_on(day, policy)))
            day += datetime.timedelta(days=1)
    return due


def _deadlocked(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"
