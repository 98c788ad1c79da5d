"""KumoMTA log-hook records (`POST /api/v1/events/kumomta`), read by the pure fbl/kumomta.py.

The poster is our own relay with an API key; a record naming a tenant other than the key's
refuses the whole request (403), since a misrouted relay is a configuration error to see at once.
"""

from __future__ import annotations

from typing import Any, Final

from compliance.errors import ServiceError
from fbl import kumomta, ours
from fbl.events import EventError
from fbl.sources.base import EventSource, Reading, Taken, register

MAX_RECORDS: Final = 10_000


class KumoMtaSource(EventSource):
    name = kumomta.SOURCE
    other_tenant = "refuse"

    def read(self, body: Any, **details: Any) -> Reading:
        """The whole body is checked before anything is stored: a malformed record is a 400
        naming its index."""
        if isinstance(body, list) and len(body) > MAX_RECORDS:
            raise ServiceError(
                f"at most {MAX_RECORDS} records per request, got {len(body)}",
                code="too_many",
                status=413,
            )
        try:
            events, _ = kumomta.parse_records(body, hooks=ours.hooks())
        except EventError as exc:
            raise ServiceError(str(exc), code="invalid_record") from exc
        received = len(body) if isinstance(body, list) else 1
        return Reading(events=events, received=received, ignored=received - len(events))

    def answer(self, taken: Taken) -> dict[str, Any]:
        return {
            "received": taken.reading.received,
            "events": len(taken.reading.events),
            "outcomes": dict(taken.outcomes),
        }


SOURCE = register(KumoMtaSource())
