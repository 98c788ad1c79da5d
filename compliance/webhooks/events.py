"""The event types downstream systems subscribe to, and the JSON each sends (pure)."""

from __future__ import annotations

import datetime
import json

OPTOUT_CREATED = "optout.created"
SUPPRESSION_ADDED = "suppression.added"
SUPPRESSION_LIFTED = "suppression.lifted"
CONSENT_WITHDRAWN = "consent.withdrawn"
TYPES = (OPTOUT_CREATED, SUPPRESSION_ADDED, SUPPRESSION_LIFTED, CONSENT_WITHDRAWN)


class UnknownEventType(ValueError):
    pass


def parse_types(text: str | list[str]) -> list[str]:
    """`optout.created,suppression.added` (or a list) to the known types named, in order."""
    names = text.split(",") if isinstance(text, str) else text
    chosen = [name.strip() for name in names if name.strip()]
    unknown = sorted(set(chosen) - set(TYPES))
    if unknown:
        raise UnknownEventType(
            f"unknown event type {', '.join(unknown)}; choose from {', '.join(TYPES)}"
        )
    if not chosen:
        raise UnknownEventType(f"name at least one event type: {', '.join(TYPES)}")
    return list(dict.fromkeys(chosen))


def iso(moment: datetime.datetime | None) -> str | None:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z") if moment else None


def body(event_id: str, event_type: str, occurred_at: datetime.datetime, data: dict) -> str:
    """The request body: the same bytes on every attempt, so the signature covers what is sent."""
    return json.dumps(
        {"type": event_type, "id": event_id, "occurred_at": iso(occurred_at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )
