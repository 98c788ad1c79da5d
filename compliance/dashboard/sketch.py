"""Times to apply an opt-out, kept as a count and a sum of seconds per time bucket, so that days
add up and a median can be read back without keeping every opt-out's time.

The buckets are finer where opt-outs usually land (seconds to minutes) and meet the deadlines
further out: 48 hours (Gmail and Yahoo, 2024) and 10 business days (CAN-SPAM, at most 14
calendar days). The median is read as the mean of the bucket holding the middle opt-out (of the
two middle ones' buckets, for an even count): exact when that bucket's times are alike, and
never outside the bucket.

No Django import here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["BOUNDS", "Sketch", "bucket_of"]

_MINUTE, _HOUR, _DAY = 60, 3600, 86400
# Upper bounds (seconds, excluded) of every bucket but the last, which holds everything longer.
BOUNDS: tuple[int, ...] = (
    1,
    2,
    5,
    10,
    20,
    30,
    _MINUTE,
    2 * _MINUTE,
    5 * _MINUTE,
    10 * _MINUTE,
    30 * _MINUTE,
    _HOUR,
    2 * _HOUR,
    4 * _HOUR,
    8 * _HOUR,
    12 * _HOUR,
    _DAY,
    36 * _HOUR,
    48 * _HOUR,
    3 * _DAY,
    5 * _DAY,
    7 * _DAY,
    10 * _DAY,
    14 * _DAY,
    30 * _DAY,
)
SIZE = len(BOUNDS) + 1


def bucket_of(seconds: float) -> int:
    """The bucket of a time to apply; a negative time (a clock step) counts as no time."""
    for index, bound in enumerate(BOUNDS):
        if seconds < bound:
            return index
    return len(BOUNDS)


def _sized(values: Iterable, cast) -> list:
    found = [cast(v) for v in list(values)[:SIZE]]
    return found + [cast(0)] * (SIZE - len(found))


@dataclass
class Sketch:
    counts: list[int] = field(default_factory=lambda: [0] * SIZE)
    seconds: list[float] = field(default_factory=lambda: [0.0] * SIZE)

    @classmethod
    def from_json(cls, value: Mapping | None) -> Sketch:
        """From `as_json()`'s form; an empty value is an empty sketch."""
        if not value:
            return cls()
        return cls(_sized(value.get("counts", ()), int), _sized(value.get("seconds", ()), float))

    def as_json(self) -> dict:
        return {"counts": list(self.counts), "seconds": [round(s, 3) for s in self.seconds]}

    @property
    def total(self) -> int:
        return sum(self.counts)

    def add(self, seconds: float) -> None:
        index = bucket_of(seconds)
        self.counts[index] += 1
        self.seconds[index] += max(0.0, seconds)

    def merge(self, other: Sketch) -> Sketch:
        return Sketch(
            [a + b for a, b in zip(self.counts, other.counts, strict=True)],
            [a + b for a, b in zip(self.seconds, other.seconds, strict=True)],
        )

    def _at(self, rank: int) -> float:
        """The time of the `rank`th opt-out (1-based, fastest first), as its bucket's mean."""
        below = 0
        for count, seconds in zip(self.counts, self.seconds, strict=True):
            if below + count >= rank:
                return seconds / count
            below += count
        raise ValueError(f"rank {rank} of {self.total} opt-outs")

    def median(self) -> float | None:
        """The median time to apply in seconds, or None for no opt-outs."""
        n = self.total
        if n == 0:
            return None
        return (self._at((n + 1) // 2) + self._at(n // 2 + 1)) / 2
