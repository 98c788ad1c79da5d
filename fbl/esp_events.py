"""ESP tracking webhooks in, as relay events, through django-anymail.

`fbl/views/esp.py` receives each configured ESP's webhook at
`/api/v1/events/esp/<esp>/tracking/`, decides who posted it (an API key or the operator's
shared secret), lets anymail check the ESP's own signature and normalise the payload into
`AnymailTrackingEvent`s; `relay_event` turns each into a `RelayEvent` with source
`anymail:<esp name>`, which `fbl.services.record_relay_event` acts on.

| anymail event  | event    | report: category                                            |
| -------------- | -------- | ----------------------------------------------------------- |
| `delivered`    | delivery | none (counted as a delivery)                                |
| `bounced`      | bounce   | DSN, failed: classified, class 5 when the text gives none (1) |
| `deferred`     | bounce   | DSN, delayed: transient, or policy when the text says so    |
| `complained`   | feedback | ARF, feedback type `abuse`                                  |
| `unsubscribed` | feedback | ARF, feedback type `opt-out`                                |
| anything else  | none     | queued, sent, rejected, failed, opened, clicked, ...        |

(1) Classified by `fbl.classification` from the MTA response, else from the ESP's description:
permanent (and `hard`) only for the dead-address class; a `blocked` or `spam` reject reason,
or policy wording, makes it policy.

Context: tenant, stream and campaign from the message's `metadata` keys `tenant`, `stream`,
`campaign`, else from tags written `tenant:SLUG`, `stream:SLUG`, `campaign:NAME`; the time is the
event's timestamp. `source_id` is the event type, the ESP's event id and a digest of type, id,
recipient, message id and time, so a webhook the ESP delivers twice is recognised, and an ESP
that reports several recipients under one event id gets one event each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason

from fbl.classification import classify, infer_status, is_hard
from fbl.events import Context, EventKind, RelayEvent
from fbl.report import Category, ParsedReport, Recipient, without_nul

__all__ = ["relay_event"]

_FEEDBACK_TYPES: Final[dict[str, str]] = {
    EventType.COMPLAINED: "abuse",
    EventType.UNSUBSCRIBED: "opt-out",
}
# Reject reasons (anymail.signals.RejectReason) that name a refusal of the mail, not of the
# recipient.
_POLICY_REASONS: Final = frozenset({RejectReason.BLOCKED, RejectReason.SPAM})
_CONTEXT_KEYS: Final = ("tenant", "stream", "campaign")


def relay_event(event: AnymailTrackingEvent, esp_name: str) -> RelayEvent | None:
    """The relay event for one anymail tracking event, or None for event types not acted on."""
    event_type = event.event_type
    recipient = without_nul((event.recipient or "").strip()) or None
    kind: EventKind
    if event_type == EventType.DELIVERED:
        kind, report = "delivery", None
    elif event_type in (EventType.BOUNCED, EventType.DEFERRED):
        kind, report = "bounce", _bounce(event, recipient)
    elif event_type in _FEEDBACK_TYPES:
        kind = "feedback"
        report = ParsedReport(
            kind="arf",
            feedback_type=_FEEDBACK_TYPES[event_type],
            user_agent=esp_name,
            arrival_date=event.timestamp,
            original_message_id=without_nul(event.message_id),
            recipients=(Recipient(address=recipient, found_by="provider_field"),),
            problems=() if recipient else ("the event names no recipient",),
        )
    else:
        return None
    return RelayEvent(
        source=f"anymail:{esp_name}",
        kind=kind,
        source_id=_source_id(event, recipient),
        recipient=recipient,
        context=Context(occurred_at=event.timestamp, **_context(event)),
        report=report,
        record=_record(event, esp_name),
    )


def _bounce(event: AnymailTrackingEvent, recipient: str | None) -> ParsedReport:
    deferred = event.event_type == EventType.DEFERRED
    # The MTA's reply says what happened to this message; an ESP's description is often a
    # fixed text per bounce type, read only when there is no reply.
    text = (event.mta_response or "").strip() or (event.description or "").strip() or None
    text = without_nul(text)
    status = infer_status(text, default_class="4" if deferred else "5")
    category: Category = classify(status, text)
    if event.reject_reason in _POLICY_REASONS:
        category = "policy"
    action = "delayed" if deferred else "failed"
    if deferred and category in ("permanent", "unknown"):
        category = "transient"  # the ESP will try again: a temporary failure
    return ParsedReport(
        kind="dsn",
        arrival_date=event.timestamp,
        original_message_id=without_nul(event.message_id),
        recipients=(
            Recipient(
                address=recipient,
                status=status,
                action=action,
                diagnostic=text,
                hard=is_hard(category, status, action),
                category=category,
                found_by="dsn_final_recipient",
            ),
        ),
    )


def _context(event: AnymailTrackingEvent) -> dict[str, str | None]:
    found: dict[str, str | None] = dict.fromkeys(_CONTEXT_KEYS)
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    for key in _CONTEXT_KEYS:
        value = metadata.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            found[key] = without_nul(str(value).strip())
    for tag in event.tags or []:
        if not isinstance(tag, str):
            continue
        key, sep, value = without_nul(tag).partition(":")
        key = key.strip().lower()
        if sep and key in found and found[key] is None and value.strip():
            found[key] = value.strip()
    return found


def _source_id(event: AnymailTrackingEvent, recipient: str | None) -> str:
    event_id = str(event.event_id) if event.event_id is not None else ""
    moment = event.timestamp.isoformat() if event.timestamp else ""
    parts = [event.event_type, event_id, recipient or "", event.message_id or "", moment]
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8", "replace")).hexdigest()
    return without_nul(f"{event.event_type}:{event_id[:100] or '-'}:{digest[:40]}")


def _record(event: AnymailTrackingEvent, esp_name: str) -> dict[str, Any]:
    """The event as received, in JSON: the normalised fields and the ESP's raw event."""
    return _json_safe(
        {
            "esp": esp_name,
            "event_type": event.event_type,
            "event_id": event.event_id,
            "timestamp": event.timestamp.isoformat() if event.timestamp else None,
            "message_id": event.message_id,
            "recipient": event.recipient,
            "reject_reason": event.reject_reason,
            "description": event.description,
            "mta_response": event.mta_response,
            "metadata": _json_safe(event.metadata),
            "tags": _json_safe(event.tags),
            "esp_event": _json_safe(event.esp_event),
        }
    )


def _json_safe(value: Any) -> Any:
    # Some ESPs post form data (a QueryDict) or objects; keep what can be kept as JSON.
    if hasattr(value, "lists") and callable(value.lists):
        value = {key: values for key, values in value.lists()}
    try:
        return without_nul(json.loads(json.dumps(value, default=str)))
    except (TypeError, ValueError):
        return without_nul(str(value))
