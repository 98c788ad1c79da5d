"""ESP tracking webhooks in, as source events, through django-anymail: every ESP anymail takes
tracking webhooks from, at `/api/v1/events/esp/<esp>/tracking/` (fbl/views/esp.py).

Only the ESPs named in ESP_WEBHOOKS answer; any other name is a 404, so an ESP that is not set
up (Mailgun without its signing key, Amazon SES without boto3) is never half reachable. Who
posted decides how far the events reach (the "webhook" authentication of fbl/sources/base.py:
an API key as the basic-auth password or a Bearer header binds them to the key's tenant, the
operator's shared ANYMAIL_WEBHOOK_SECRET is an operator-level source). Anymail checks the ESP's
own signature where it has one and normalises the payload into `AnymailTrackingEvent`s;
`source_event` turns each into a `SourceEvent` with source `anymail:<esp name>`, which
`fbl.services.record_relay_event` acts on. An event naming a tenant other than the key's is
skipped and answered 200 ("other_tenant"): the ESP would otherwise post it again and again.

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

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError

from compliance.errors import NotFound, ServiceError
from fbl.classification import bounced_recipient, infer_status
from fbl.events import Context, EventKind, SourceEvent
from fbl.report import Category, ParsedReport, Recipient, without_nul
from fbl.sources.base import EventSource, Reading, Taken, register

__all__ = ["configured_view", "instantiate", "source_event", "tracking_views"]

log = logging.getLogger(__name__)

_FEEDBACK_TYPES: Final[dict[str, str]] = {
    EventType.COMPLAINED: "abuse",
    EventType.UNSUBSCRIBED: "opt-out",
}
# Reject reasons (anymail.signals.RejectReason) that name a refusal of the mail, not of the
# recipient.
_BLOCK_REASONS: Final = frozenset({RejectReason.BLOCKED, RejectReason.SPAM})
_CONTEXT_KEYS: Final = ("tenant", "stream", "campaign")
# The ESP will try a deferred message again: a temporary failure.
_RETRIED: Final[dict[Category, Category]] = {"permanent": "transient", "unknown": "transient"}


@functools.cache
def tracking_views() -> dict[str, type]:
    """Every ESP anymail can take tracking webhooks from: URL name → its view class."""
    from anymail import urls

    found = {}
    for pattern in urls.urlpatterns:
        route = str(pattern.pattern)
        if route.endswith("/tracking/"):
            found[route.split("/", 1)[0]] = pattern.callback.view_class
    return found


def configured_view(esp: str) -> type | None:
    if esp not in settings.ESP_WEBHOOKS:
        return None
    return tracking_views().get(esp)


def instantiate(view_class: type):
    """Anymail's view for one request. Who may post is decided by the source's authentication,
    so its own shared-secret check is switched off; the ESP's signature checks stay. Raises
    ImproperlyConfigured or AnymailError when the ESP is not set up."""
    view = view_class(webhook_secret="checked-by-the-service")
    view.basic_auth = []
    return view


class AnymailSource(EventSource):
    name = "anymail"
    authentication = "webhook"
    other_tenant = "skip"

    def view_class(self, esp: str) -> type:
        view_class = configured_view(esp)
        if view_class is None:
            known = ", ".join(settings.ESP_WEBHOOKS) or "none"
            raise NotFound(f"no webhook for ESP {esp!r} here; set up: {known}")
        return view_class

    def read(self, body: Any, *, esp: str, **details: Any) -> Reading:
        """`body` is the request itself: the ESP's signature covers more than its body."""
        request = body
        try:
            anymail_view = instantiate(self.view_class(esp))
        except (ImproperlyConfigured, AnymailError) as exc:  # the system check says so at start
            log.error("the %s webhook is not set up: %s", esp, exc)
            raise ServiceError(
                f"the {esp} webhook is not set up", code="not_configured", status=503
            ) from exc
        try:
            anymail_view.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            raise ServiceError(str(exc), code="invalid_signature") from exc
        try:
            tracked = anymail_view.parse_events(request)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # the ESP's payload is malformed, whatever anymail tripped on
            log.info("malformed %s webhook: %s", esp, exc)
            raise ServiceError(f"the body is not a {esp} tracking webhook") from exc
        events = [source_event(event, anymail_view.esp_name) for event in tracked]
        found = [event for event in events if event is not None]
        return Reading(events=found, received=len(tracked), ignored=len(events) - len(found))

    def answer(self, taken: Taken) -> dict[str, Any]:
        outcomes = dict(taken.outcomes)
        if taken.reading.ignored:
            outcomes["ignored"] = taken.reading.ignored
        return {"received": taken.reading.received, "outcomes": outcomes}


def source_event(event: AnymailTrackingEvent, esp_name: str) -> SourceEvent | None:
    """The source event for one anymail tracking event, or None for event types not acted on."""
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
    return SourceEvent(
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
    return ParsedReport(
        kind="dsn",
        arrival_date=event.timestamp,
        original_message_id=without_nul(event.message_id),
        recipients=(
            bounced_recipient(
                recipient,
                status=status,
                action="delayed" if deferred else "failed",
                diagnostic=text,
                category="blocked" if event.reject_reason in _BLOCK_REASONS else None,
                instead=_RETRIED if deferred else None,
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


SOURCE = register(AnymailSource())
