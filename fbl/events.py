"""Relay and ESP events in one shape, whatever their source (fbl/sources/).

A relay's log record (KumoMTA) or an ESP's tracking webhook (through django-anymail) says either
"this message was delivered" (counted for complaint rates) or "this recipient bounced or
complained" (a report, acted on like an ARF or DSN that arrived by mail). Each adapter turns its
source's records into `SourceEvent`s; `fbl.services.record_relay_event` stores each as a
`fbl.models.RelayEvent` row and acts on it, so the rules are written once.

No Django import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from fbl.report import ParsedReport

__all__ = ["EVENT_KINDS", "Context", "EventError", "EventKind", "SourceEvent"]

# delivery: one message accepted by the recipient's server (the denominator of complaint rates).
# bounce:   a permanent or transient failure for one recipient (report.kind == "dsn").
# feedback: a complaint or other feedback report (report.kind == "arf").
EventKind = Literal["delivery", "bounce", "feedback"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = ("delivery", "bounce", "feedback")


class EventError(ValueError):
    """A record that cannot be read as an event; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Context:
    """What the source knows about the original message, to attribute the event."""

    tenant: str | None = None  # tenant slug, when the relay tags its messages with one
    stream: str | None = None  # stream slug
    campaign: str | None = None
    sender: str | None = None  # envelope sender (MAIL FROM) of the original message
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One event. `source_id` identifies it at its source (the same record posted twice is
    recognised by it); `recipient` is the address the event is about; `report` carries the
    bounce or feedback details in the same type the mail parsers return."""

    source: str  # "kumomta", or "anymail:<esp>"
    kind: EventKind
    source_id: str
    recipient: str | None
    context: Context
    report: ParsedReport | None = None  # for bounce and feedback
    record: dict | None = None  # the record as received, kept as evidence
