"""Events into the outbox, in the transaction of the change they announce.

Each event is stored once with the exact body sent, and one delivery row per endpoint that
wants it. After the transaction commits, the endpoints are nudged (`dispatch.kick`); a sweep
picks up anything a nudge missed.
"""

from __future__ import annotations

import datetime
import json
from functools import partial

from django.db import transaction
from django.utils import timezone

from compliance.models import OptOutRequest, Tenant
from compliance.webhooks import dispatch, events, selectors, signing
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


def opt_out_created(request: OptOutRequest, target, address: str | None, reason: str) -> None:
    record(
        events.OPTOUT_CREATED,
        tenant=target.tenant,
        address_hash=request.address_hash,
        occurred_at=request.received_at,
        opt_out=request,
        data={
            "opt_out_id": request.pk,
            "address": address,
            "address_hash": _hash_hex(request.address_hash),
            **_scope_fields(target.tenant, target.label, target.stream, target.topic),
            "reason": reason,
            "channel": request.channel,
            "received_at": events.iso(request.received_at),
            "applied_at": events.iso(request.applied_at),
            "provider_due_at": events.iso(request.provider_due_at),
            "can_spam_due_at": events.iso(request.can_spam_due_at),
        },
    )


def suppression_changed(row, action: str, address: str | None, target, opt_out) -> None:
    """An entry added (or added again) or lifted."""
    if action in ("add", "readd"):
        kind, at = events.SUPPRESSION_ADDED, row.updated_at
    elif action == "lift":
        kind, at = events.SUPPRESSION_LIFTED, row.lifted_at
    else:
        return  # a weightier reason for an entry already in force changes nothing downstream
    record(
        kind,
        tenant=target.tenant,
        address_hash=row.address_hash,
        occurred_at=at,
        opt_out=opt_out,
        data={
            "suppression_id": row.pk,
            "address": address,
            "address_hash": _hash_hex(row.address_hash),
            **_scope_fields(target.tenant, target.label, target.stream, target.topic),
            "reason": row.reason,
            "origin": row.origin,
            "expires_at": events.iso(row.expires_at),
            ("lifted_at" if kind == events.SUPPRESSION_LIFTED else "since"): events.iso(at),
        },
    )


def consent_withdrawn(record_row) -> None:
    record(
        events.CONSENT_WITHDRAWN,
        tenant=record_row.tenant,
        address_hash=record_row.address_hash,
        occurred_at=record_row.occurred_at,
        data={
            "record_id": record_row.pk,
            "address": record_row.address,
            "address_hash": _hash_hex(record_row.address_hash),
            "tenant": record_row.tenant.slug,
            "stream": record_row.stream.slug,
            "topic": record_row.topic.slug if record_row.topic_id else None,
            "basis": record_row.basis,
            "method": record_row.method,
            "occurred_at": events.iso(record_row.occurred_at),
        },
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
