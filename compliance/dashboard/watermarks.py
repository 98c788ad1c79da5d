"""How far a roll-up has read a table, by id, without losing rows that commit late.

A roll-up reads the rows whose id is above its watermark and moves the watermark to the highest
id it read. Ids are handed out when a row is inserted, not when its transaction commits: a long
import can commit rows below ids a one-click opt-out committed a second earlier. Those ids are
missing when the roll-up reads, so each run of missing ids below the watermark is kept as a gap
and read again on later runs until its rows arrive. A gap whose rows never come (a rolled-back
transaction, a deleted row) is dropped after `max_age` seconds. Every id is therefore counted
once: when it is first read above the watermark or inside a gap, never again.

No Django import here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_GAPS", "Gap", "Position", "advance"]

# A cap on the ranges re-read each run. Only a flood of concurrent writers rolled back at once
# comes near it; the oldest ranges are dropped first.
MAX_GAPS = 10_000


@dataclass(frozen=True, slots=True)
class Gap:
    """Ids `first` to `last` (both included) not yet seen, missing since `found_at` (epoch
    seconds)."""

    first: int
    last: int
    found_at: float

    def as_json(self) -> list:
        return [self.first, self.last, self.found_at]

    @classmethod
    def from_json(cls, value: Sequence) -> Gap:
        first, last, found_at = value
        return cls(int(first), int(last), float(found_at))


@dataclass(frozen=True, slots=True)
class Position:
    """The highest id read and the gaps below it."""

    last_id: int = 0
    gaps: tuple[Gap, ...] = ()


def _without(gap: Gap, filled: Sequence[int]) -> list[Gap]:
    """What remains of `gap` once the ids in `filled` (sorted) arrived."""
    pieces, start = [], gap.first
    for seen in filled:
        if seen < start or seen > gap.last:
            continue
        if seen > start:
            pieces.append(Gap(start, seen - 1, gap.found_at))
        start = seen + 1
    if start <= gap.last:
        pieces.append(Gap(start, gap.last, gap.found_at))
    return pieces


def advance(
    position: Position,
    *,
    new_ids: Iterable[int],
    filled_ids: Iterable[int] = (),
    now: float,
    max_age: float,
) -> Position:
    """The position after reading `new_ids` (ids above `position.last_id`) and `filled_ids`
    (ids found inside its gaps). Gaps older than `max_age` seconds are dropped.

    Raises ValueError for a new id at or below the watermark: it would be counted twice."""
    new = sorted(set(new_ids))
    if new and new[0] <= position.last_id:
        raise ValueError(f"id {new[0]} is not above the watermark {position.last_id}")
    filled = sorted(set(filled_ids))
    gaps = [piece for gap in position.gaps for piece in _without(gap, filled)]
    previous = position.last_id
    for found in new:
        if found > previous + 1:
            gaps.append(Gap(previous + 1, found - 1, now))
        previous = found
    gaps = [gap for gap in gaps if now - gap.found_at <= max_age]
    gaps.sort(key=lambda gap: gap.first)
    if len(gaps) > MAX_GAPS:
        newest = sorted(gaps, key=lambda gap: gap.found_at)[-MAX_GAPS:]
        gaps = sorted(newest, key=lambda gap: gap.first)
    return Position(last_id=previous, gaps=tuple(gaps))
