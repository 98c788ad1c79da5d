"""Events into the outbox, in the transaction of the change they announce.

Each event is stored once with the exact body sent, and one delivery row per endpoint that
wants it. After the transaction commits, the endpoints are nudged (`dispatch.kick`); a sweep
picks up anything a nudge missed. The changes of a batch of opt-outs come as one list and go in
by one statement (`record_many`), with the bodies one change at a time would have had.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from functools import partial
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from compliance.models import OptOutRequest, Stream, Tenant, Topic
from compliance.webhooks import dispatch, events, selectors, signing, sql
from compliance.webhooks.models import WebhookDelivery, WebhookEvent


def _hash_hex(digest) -> str:
    return bytes(digest).hex()


def record(
    event_type: str,
    *,
    tenant: Tenant | None,
    address_hash: bytes,
    occurred_at: datetime.datetime,
    data: dict,
    opt_out: OptOutRequest | None = None,
) -> WebhookEvent | None:
    """Store the event for every endpoint that wants it; None when none does."""
    endpoint_ids = selectors.endpoints_for(event_type, tenant.pk if tenant else None)
    if not endpoint_ids:
        return None
    event_id = signing.new_event_id()
    event = WebhookEvent.objects.create(
        public_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        tenant=tenant,
        address_hash=bytes(address_hash),
        body=events.body(event_id, event_type, occurred_at, data),
        opt_out=opt_out,
    )
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event=event,
            order_key=bytes(address_hash),
            next_attempt_at=now,
        )
        for endpoint_id in endpoint_ids
    )
    transaction.on_commit(partial(dispatch.kick, endpoint_ids))
    return event


def _scope_fields(tenant, label: str, stream, topic) -> dict:
    return {
        "tenant": tenant.slug if tenant else None,
        "scope": label,
        "stream": stream.slug if stream else None,
        "topic": topic.slug if topic else None,
    }


def _opt_out_data(
    *, opt_out_id: int, address, address_hash, target, reason: str, channel: str, request
) -> dict:
    """The data of an `optout.created` event; `request` has the opt-out's times."""
    return {
        "opt_out_id": opt_out_id,
        "address": address,
        "address_hash": _hash_hex(address_hash),
        **_scope_fields(target.tenant, target.label, target.stream, target.topic),
        "reason": reason,
        "channel": channel,
        "received_at": events.iso(request.received_at),
        "applied_at": events.iso(request.applied_at),
        "provider_due_at": events.iso(request.provider_due_at),
        "can_spam_due_at": events.iso(request.can_spam_due_at),
    }


def opt_out_created(request: OptOutRequest, target, address: str | None, reason: str) -> None:
    record(
        events.OPTOUT_CREATED,
        tenant=target.tenant,
        address_hash=request.address_hash,
        occurred_at=request.received_at,
        opt_out=request,
        data=_opt_out_data(
            opt_out_id=request.pk,
            address=address,
            address_hash=request.address_hash,
            target=target,
            reason=reason,
            channel=request.channel,
            request=request,
        ),
    )


def _suppression_event(action: str, *, updated_at, lifted_at) -> tuple[str, datetime.datetime]:
    """The event type and time of an entry's change; None for a change that stays here."""
    if action in ("add", "readd"):
        return events.SUPPRESSION_ADDED, updated_at
    if action == "lift":
        return events.SUPPRESSION_LIFTED, lifted_at
    return None, None  # a weightier reason for an entry already in force changes nothing


def _suppression_data(
    kind: str, at, *, suppression_id, address, address_hash, target, reason, origin, expires_at
) -> dict:
    return {
        "suppression_id": suppression_id,
        "address": address,
        "address_hash": _hash_hex(address_hash),
        **_scope_fields(target.tenant, target.label, target.stream, target.topic),
        "reason": reason,
        "origin": origin,
        "expires_at": events.iso(expires_at),
        ("lifted_at" if kind == events.SUPPRESSION_LIFTED else "since"): events.iso(at),
    }


def suppression_changed(row, action: str, address: str | None, target, opt_out) -> None:
    """An entry added (or added again) or lifted."""
    kind, at = _suppression_event(action, updated_at=row.updated_at, lifted_at=row.lifted_at)
    if kind is None:
        return
    record(
        kind,
        tenant=target.tenant,
        address_hash=row.address_hash,
        occurred_at=at,
        opt_out=opt_out,
        data=_suppression_data(
            kind,
            at,
            suppression_id=row.pk,
            address=address,
            address_hash=row.address_hash,
            target=target,
            reason=row.reason,
            origin=row.origin,
            expires_at=row.expires_at,
        ),
    )


def _withdrawal_data(
    *, record_id, address, address_hash, tenant, stream, topic, basis, method, occurred_at
) -> dict:
    return {
        "record_id": record_id,
        "address": address,
        "address_hash": _hash_hex(address_hash),
        "tenant": tenant,
        "stream": stream,
        "topic": topic,
        "basis": basis,
        "method": method,
        "occurred_at": events.iso(occurred_at),
    }


def consent_withdrawn(record_row) -> None:
    record(
        events.CONSENT_WITHDRAWN,
        tenant=record_row.tenant,
        address_hash=record_row.address_hash,
        occurred_at=record_row.occurred_at,
        data=_withdrawal_data(
            record_id=record_row.pk,
            address=record_row.address,
            address_hash=record_row.address_hash,
            tenant=record_row.tenant.slug,
            stream=record_row.stream.slug,
            topic=record_row.topic.slug if record_row.topic_id else None,
            basis=record_row.basis,
            method=record_row.method,
            occurred_at=record_row.occurred_at,
        ),
    )


# --- many events at once: the changes of a batch of opt-outs ------------------------------------


class Pending(NamedTuple):
    """An event to store, before its endpoints are known."""

    event_type: str
    tenant_id: int | None
    address_hash: bytes
    occurred_at: datetime.datetime
    data: dict
    opt_out_id: int | None = None


def record_many(pending: Iterable[Pending]) -> int:
    """`record` for many events, in the order given: each stored for every endpoint that wants
    it, all in one statement; returns how many were stored. PostgreSQL only."""
    rows, kicked = [], set()
    for item in pending:
        endpoint_ids = selectors.endpoints_for(item.event_type, item.tenant_id)
        if not endpoint_ids:
            continue
        event_id = signing.new_event_id()
        rows.append(
            sql.Event(
                public_id=event_id,
                event_type=item.event_type,
                occurred_at=item.occurred_at,
                tenant_id=item.tenant_id,
                address_hash=bytes(item.address_hash),
                body=events.body(event_id, item.event_type, item.occurred_at, item.data),
                opt_out_id=item.opt_out_id,
                endpoint_ids=endpoint_ids,
            )
        )
        kicked.update(endpoint_ids)
    if rows:
        sql.insert_events(rows, now=timezone.now(), pending=WebhookDelivery.Status.PENDING)
        transaction.on_commit(partial(dispatch.kick, sorted(kicked)))
    return len(rows)


def suppression_added_of(change) -> Pending | None:
    """The `suppression.added` event of a change of a batch (suppression.signals.BulkChange);
    None for a new reason of an entry already in force."""
    kind, at = _suppression_event(change.action, updated_at=change.updated_at, lifted_at=None)
    if kind is None:
        return None
    target = change.target
    return Pending(
        kind,
        target.tenant.pk if target.tenant else None,
        change.address_hash,
        at,
        _suppression_data(
            kind,
            at,
            suppression_id=change.suppression_id,
            address=change.address,
            address_hash=change.address_hash,
            target=target,
            reason=change.entry_reason,
            origin=change.origin,
            expires_at=change.expires_at,
        ),
        change.opt_out.id if change.opt_out else None,
    )


def opt_out_created_of(change) -> Pending:
    """The `optout.created` event of a change of a batch that recorded an opt-out."""
    request, target = change.opt_out, change.target
    return Pending(
        events.OPTOUT_CREATED,
        target.tenant.pk if target.tenant else None,
        change.address_hash,
        request.received_at,
        _opt_out_data(
            opt_out_id=request.id,
            address=change.address,
            address_hash=change.address_hash,
            target=target,
            reason=change.reason,
            channel=request.channel,
            request=request,
        ),
        request.id,
    )


def consent_withdrawn_many(rows: Sequence) -> int:
    """`consent_withdrawn` for each withdrawal a batch of opt-outs recorded
    (compliance.consent.sql.Withdrawal), in one statement; returns how many events."""
    wanted = [
        row for row in rows if selectors.endpoints_for(events.CONSENT_WITHDRAWN, row.tenant_id)
    ]
    if not wanted:
        return 0
    tenants = dict(
        Tenant.objects.filter(pk__in={r.tenant_id for r in wanted}).values_list("pk", "slug")
    )
    streams = dict(
        Stream.objects.filter(pk__in={r.stream_id for r in wanted}).values_list("pk", "slug")
    )
    topics = dict(
        Topic.objects.filter(pk__in={r.topic_id for r in wanted if r.topic_id}).values_list(
            "pk", "slug"
        )
    )
    return record_many(
        Pending(
            events.CONSENT_WITHDRAWN,
            row.tenant_id,
            row.address_hash,
            row.occurred_at,
            _withdrawal_data(
                record_id=row.record_id,
                address=row.address,
                address_hash=row.address_hash,
                tenant=tenants[row.tenant_id],
                stream=streams[row.stream_id],
                topic=topics[row.topic_id] if row.topic_id else None,
                basis=row.basis,
                method=row.method,
                occurred_at=row.occurred_at,
            ),
        )
        for row in wanted
    )


def forget_address(address_hash: bytes, batch: int) -> int:
    """Blank the address in up to `batch` stored events that still hold it; returns how many."""
    changed = 0
    rows = WebhookEvent.objects.filter(address_hash=bytes(address_hash)).exclude(
        body__contains='"address":null'
    )
    for event in rows[:batch]:
        envelope = json.loads(event.body)
        envelope["data"]["address"] = None
        event.body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        event.save(update_fields=["body"])
        changed += 1
    return changed
