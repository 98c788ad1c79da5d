"""The reports app's part of an erasure (compliance.dsr.erasure): every stored message and
relay event that names the address, found through the mention index (fbl.services.mentions),
has it replaced by the placeholder: in the raw message (inside encoded parts too), the parsed
result, the note and the envelope; the event's record. Their mentions of it go."""

from __future__ import annotations

import gzip
import json

from fbl import redaction
from fbl.models import InboundMessage, Mention, RelayEvent
from suppression import erased
from suppression import erasure_steps as erasure


def _redact_json(value, address: str, placeholder: str):
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False)
    cleaned = erased.redact_text(text, address, placeholder)
    return value if cleaned == text else json.loads(cleaned)


def _mentions(subject: erasure.Subject, field: str, batch: int) -> list[Mention]:
    return list(
        Mention.objects.filter(
            address_hash=subject.address_hash, **{f"{field}__isnull": False}
        ).order_by("pk")[:batch]
    )


@erasure.register("fbl_messages", order=60)
def erase_from_messages(subject: erasure.Subject, batch: int) -> int:
    mentions = _mentions(subject, "message_id", batch)
    if not subject.address:
        return 0
    address, placeholder = subject.address, subject.placeholder
    ids = {m.message_id for m in mentions}
    for message in InboundMessage.objects.select_for_update().filter(pk__in=ids):
        raw = message.raw()
        cleaned = redaction.redact_message(raw, address, placeholder)
        InboundMessage.objects.filter(pk=message.pk).update(
            raw_gzip=gzip.compress(cleaned, compresslevel=6)
            if cleaned != raw
            else bytes(message.raw_gzip),
            parsed=_redact_json(message.parsed, address, placeholder),
            note=erased.redact_text(message.note, address, placeholder),
            envelope_sender=erased.redact_text(message.envelope_sender, address, placeholder),
            envelope_recipient=erased.redact_text(message.envelope_recipient, address, placeholder),
            dkim_results=erased.redact_text(message.dkim_results, address, placeholder),
        )
    Mention.objects.filter(pk__in=[m.pk for m in mentions]).delete()
    return len(mentions)


@erasure.register("fbl_relay_events", order=70)
def erase_from_relay_events(subject: erasure.Subject, batch: int) -> int:
    mentions = _mentions(subject, "relay_event_id", batch)
    if not subject.address:
        return 0
    ids = {m.relay_event_id for m in mentions}
    for event in RelayEvent.objects.select_for_update().filter(pk__in=ids):
        RelayEvent.objects.filter(pk=event.pk).update(
            record=_redact_json(event.record, subject.address, subject.placeholder),
            source_id=erased.redact_text(event.source_id, subject.address, subject.placeholder),
        )
    Mention.objects.filter(pk__in=[m.pk for m in mentions]).delete()
    return len(mentions)
