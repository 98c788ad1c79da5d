"""The tables the roll-up reads, and what each row adds to the day's figures.

Each source names a model, the columns read per row, when a row's figures are final, and how a
final row counts. A row read before it is final (an opt-out still waiting for downstream systems,
a report not yet parsed) is read again later (`PendingRow`), and counted once it is.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db.models import Model, Q

from compliance.dashboard import sketch
from compliance.models import OptOutRequest
from fbl.models import InboundMessage, RelayEvent

__all__ = ["SOURCES", "Source", "Tally"]

FIGURES = (
    "opt_outs_received",
    "opt_outs_applied",
    "applied_within_target",
    "applied_within_can_spam",
    "apply_seconds",
    "feedback_reports",
    "bounce_reports",
    "relay_feedback",
    "relay_bounces",
)

Key = tuple[datetime.date, int | None]


@dataclass
class Tally:
    """Figures to add, per (day, tenant id)."""

    counts: dict[Key, dict[str, int]] = field(default_factory=dict)
    sketches: dict[Key, sketch.Sketch] = field(default_factory=dict)

    def add(self, day: datetime.date, tenant_id: int | None, **figures: int) -> None:
        unknown = set(figures) - set(FIGURES)
        if unknown:
            raise ValueError(f"no such figure: {sorted(unknown)}")
        counts = self.counts.setdefault((day, tenant_id), dict.fromkeys(FIGURES, 0))
        for name, value in figures.items():
            counts[name] += value

    def add_apply_time(self, day: datetime.date, tenant_id: int | None, seconds: float) -> None:
        self.sketches.setdefault((day, tenant_id), sketch.Sketch()).add(seconds)

    def keys(self) -> set[Key]:
        return set(self.counts) | set(self.sketches)

    def items(self) -> Iterator[tuple[Key, dict[str, int], sketch.Sketch | None]]:
        for key in sorted(self.keys(), key=lambda k: (k[0], k[1] or 0)):
            yield key, self.counts.get(key, {}), self.sketches.get(key)


def day_of(moment: datetime.datetime) -> datetime.date:
    """The UTC day of a moment: the admin lists behind the figures filter by it."""
    return moment.astimezone(datetime.UTC).date()


@dataclass(frozen=True)
class Source:
    name: str
    model: type[Model]
    columns: tuple[str, ...]
    count: Callable[[dict, Tally], None]
    # Rows whose figures are final; None: every row is, once it is committed.
    final: Q | None = None


def _opt_out_received(row: dict, tally: Tally) -> None:
    tally.add(day_of(row["received_at"]), row["tenant_id"], opt_outs_received=1)


def _opt_out_clock(row: dict, tally: Tally) -> None:
    if row["channel"] == OptOutRequest.Channel.IMPORT:
        return
    stopped = row["propagated_at"]
    taken = max(0.0, (stopped - row["received_at"]).total_seconds())
    target, can_spam = row["provider_due_at"], row["can_spam_due_at"]
    day, tenant = day_of(stopped), row["tenant_id"]
    tally.add(
        day,
        tenant,
        opt_outs_applied=1,
        applied_within_target=int(target is not None and stopped <= target),
        applied_within_can_spam=int(can_spam is not None and stopped <= can_spam),
        apply_seconds=round(taken),
    )
    tally.add_apply_time(day, tenant, taken)


_REPORT_FIGURES = {"arf": "feedback_reports", "dsn": "bounce_reports"}
_EVENT_FIGURES = {"feedback": "relay_feedback", "bounce": "relay_bounces"}


def _inbound_message(row: dict, tally: Tally) -> None:
    figure = _REPORT_FIGURES.get(row["kind"])
    if figure:
        tally.add(day_of(row["received_at"]), row["tenant_id"], **{figure: 1})


def _relay_event(row: dict, tally: Tally) -> None:
    figure = _EVENT_FIGURES.get(row["kind"])
    if figure:
        tally.add(day_of(row["received_at"]), row["tenant_id"], **{figure: 1})


SOURCES: tuple[Source, ...] = (
    Source(
        name="opt_outs",
        model=OptOutRequest,
        columns=("received_at", "tenant_id"),
        count=_opt_out_received,
    ),
    Source(
        name="opt_out_clocks",
        model=OptOutRequest,
        columns=(
            "received_at",
            "tenant_id",
            "channel",
            "propagated_at",
            "provider_due_at",
            "can_spam_due_at",
        ),
        count=_opt_out_clock,
        final=Q(propagated_at__isnull=False),
    ),
    Source(
        name="inbound_messages",
        model=InboundMessage,
        columns=("received_at", "tenant_id", "kind"),
        count=_inbound_message,
        # The kind is known once the message was processed, whatever the outcome.
        final=~Q(status=InboundMessage.Status.RECEIVED),
    ),
    Source(
        name="relay_events",
        model=RelayEvent,
        columns=("received_at", "tenant_id", "kind"),
        count=_relay_event,
    ),
)
