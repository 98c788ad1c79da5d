"""Rolling up the dashboard's figures: the only writer of DailyRollup, RollupSource and
PendingRow.

`roll_up()` reads, for each source table (dashboard.sources), the rows above its watermark,
the gaps below it (dashboard.watermarks) and the rows it saw before they were final, adds what
they count to the day's figures and moves the watermark, in one transaction per batch: a run
that fails adds nothing and moves nothing, so running it again is always safe. Runs do not
overlap: each batch locks every source's row, and a run that finds them locked stops at once.
The work of a run grows with the rows written since the last one, never with the tables' size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, Value
from django.utils import timezone

from compliance.dashboard import sketch, watermarks
from compliance.dashboard.models import DailyRollup, PendingRow, RollupSource
from compliance.dashboard.sources import FIGURES, SOURCES, Source, Tally

__all__ = ["RollUpResult", "roll_up"]

log = logging.getLogger(__name__)

# Rows read per source and transaction.
BATCH = 20_000
# A run stops starting new batches after this long; the next run (a minute later) goes on.
RUN_SECONDS = 45.0
# Ids still missing after this long belong to transactions that rolled back.
GAP_SECONDS = 3600.0
# Gap ranges asked for per query.
_RANGES_PER_QUERY = 500
_CHUNK = 10_000


def _now() -> float:
    """The clock gaps are aged by (epoch seconds); tests move it."""
    return time.time()


@dataclass
class RollUpResult:
    """Rows counted per source; `busy` when another run held the lock; `caught_up` when every
    source was read to its end."""

    counted: dict[str, int] = field(default_factory=dict)
    busy: bool = False
    caught_up: bool = True


def roll_up(*, batch: int = BATCH, max_seconds: float = RUN_SECONDS) -> RollUpResult:
    """Add every row written since the last run to the dashboard's figures. Raises ValueError
    for a batch under 1."""
    if batch < 1:
        raise ValueError(f"a batch is at least 1 row, got {batch}")
    names = sorted(source.name for source in SOURCES)
    for name in names:
        RollupSource.objects.get_or_create(name=name)
    result = RollUpResult(counted=dict.fromkeys(names, 0))
    began = time.monotonic()
    first = True
    while True:
        with transaction.atomic():
            locked = {
                row.name: row
                for row in RollupSource.objects.select_for_update(skip_locked=True)
                .filter(name__in=names)
                .order_by("name")
            }
            if len(locked) < len(names):
                result.busy = True
                return result
            tally = Tally()
            more = False
            for source in SOURCES:
                state = locked[source.name]
                counted, full = _read(source, state, tally, batch=batch, revisit=first)
                result.counted[source.name] += counted
                more |= full
            _add(tally)
        first = False
        if not more:
            result.caught_up = True
            return result
        if time.monotonic() - began > max_seconds:
            result.caught_up = False
            return result


def _rows(source: Source, condition: Q, *, limit: int | None = None) -> list[dict]:
    """The rows matching `condition` in id order, with their columns and whether they are
    final."""
    if source.final is None:
        final = Value(True)
    else:
        final = ExpressionWrapper(source.final, output_field=BooleanField())
    rows = (
        source.model.objects.filter(condition)
        .annotate(is_final=final)
        .order_by("pk")
        .values("pk", "is_final", *source.columns)
    )
    return list(rows[:limit] if limit is not None else rows)


def _read(
    source: Source, state: RollupSource, tally: Tally, *, batch: int, revisit: bool
) -> tuple[int, bool]:
    """Count the source's new rows (and, with `revisit`, its gaps and pending rows) into
    `tally`; move `state`. Returns (rows counted, whether a full batch was read)."""
    position = watermarks.Position(
        last_id=state.last_id, gaps=tuple(watermarks.Gap.from_json(g) for g in state.gaps)
    )
    counted = _revisit_pending(source, tally) if revisit else 0
    filled = []
    if revisit and position.gaps:
        gaps = list(position.gaps)
        for start in range(0, len(gaps), _RANGES_PER_QUERY):
            ranges = Q()
            for gap in gaps[start : start + _RANGES_PER_QUERY]:
                ranges |= Q(pk__range=(gap.first, gap.last))
            found = _rows(source, ranges)
            filled += [row["pk"] for row in found]
            counted += _count(source, found, tally)
    new = _rows(source, Q(pk__gt=position.last_id), limit=batch)
    counted += _count(source, new, tally)
    moved = watermarks.advance(
        position,
        new_ids=[row["pk"] for row in new],
        filled_ids=filled,
        now=_now(),
        max_age=GAP_SECONDS,
    )
    if len(moved.gaps) >= watermarks.MAX_GAPS:
        log.warning("%s: %d id gaps; the oldest are dropped", source.name, len(moved.gaps))
    state.last_id = moved.last_id
    state.gaps = [gap.as_json() for gap in moved.gaps]
    state.rolled_up_at = timezone.now()
    state.save(update_fields=["last_id", "gaps", "rolled_up_at"])
    return counted, len(new) >= batch


def _count(source: Source, rows: Iterable[dict], tally: Tally) -> int:
    """Count the final rows; remember the others for later runs."""
    counted, waiting = 0, []
    for row in rows:
        if row["is_final"]:
            source.count(row, tally)
            counted += 1
        else:
            waiting.append(PendingRow(source=source.name, row_id=row["pk"]))
    PendingRow.objects.bulk_create(waiting, batch_size=_CHUNK, ignore_conflicts=True)
    return counted


def _revisit_pending(source: Source, tally: Tally) -> int:
    """Count the pending rows of `source` that became final; forget those that were deleted."""
    if source.final is None:
        return 0
    pending = PendingRow.objects.filter(source=source.name)
    ready = _rows(source, Q(pk__in=pending.values("row_id")) & source.final)
    counted = _count(source, ready, tally)
    done = [row["pk"] for row in ready]
    for start in range(0, len(done), _CHUNK):
        pending.filter(row_id__in=done[start : start + _CHUNK]).delete()
    pending.filter(~Exists(source.model.objects.filter(pk=OuterRef("row_id")))).delete()
    return counted


def _add(tally: Tally) -> None:
    """Add the tally to the stored figures (the caller holds the roll-up's lock)."""
    keys = tally.keys()
    if not keys:
        return
    stored = {
        (row.day, row.tenant_id): row
        for row in DailyRollup.objects.filter(day__in={day for day, _ in keys})
    }
    created, changed = [], []
    for (day, tenant_id), counts, times in tally.items():
        row = stored.get((day, tenant_id))
        if row is None:
            row = DailyRollup(day=day, tenant_id=tenant_id)
            created.append(row)
        else:
            changed.append(row)
        for name, value in counts.items():
            setattr(row, name, getattr(row, name) + value)
        if times is not None:
            row.apply_times = sketch.Sketch.from_json(row.apply_times).merge(times).as_json()
    DailyRollup.objects.bulk_create(created, batch_size=1000)
    DailyRollup.objects.bulk_update(changed, [*FIGURES, "apply_times"], batch_size=1000)
