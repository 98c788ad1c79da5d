"""Complaint-rate lines and how a rate is judged against them.

Gmail and Yahoo bulk-sender rules (2024): keep the spam-complaint rate under 0.1% and never let
it reach 0.3%. A rate over WARNING is a warning, a rate over ALERT an alert; with fewer deliveries
than a minimum a rate says too little to be judged. Rates are compared exactly (complaints against
threshold x deliveries, in Decimal), so 1 complaint in 1,000 deliveries is exactly 0.1%.

No Django import here: the settings object is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal

__all__ = [
    "ALERT",
    "LEVELS",
    "SEVERITY",
    "WARNING",
    "Level",
    "Thresholds",
    "level",
    "percent",
    "rate",
]

WARNING: Final = Decimal("0.001")
ALERT: Final = Decimal("0.003")

Level = Literal["ok", "warning", "alert", "too_few"]
LEVELS: Final[tuple[Level, ...]] = ("ok", "warning", "alert", "too_few")
# How bad a level is, for sorting and for "is this worse than what was already raised".
SEVERITY: Final[dict[str, int]] = {"too_few": 0, "ok": 0, "warning": 1, "alert": 2}


def _decimal(value: Decimal | float | int | str) -> Decimal:
    # str() first: Decimal(0.001) would carry the binary float's error.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def rate(complaints: int, deliveries: int) -> Decimal | None:
    """Complaints per delivery, or None when nothing was delivered."""
    if deliveries <= 0:
        return None
    return Decimal(complaints) / Decimal(deliveries)


def level(
    complaints: int,
    deliveries: int,
    *,
    minimum_deliveries: int,
    warning: Decimal | float = WARNING,
    alert: Decimal | float = ALERT,
) -> Level:
    """The level of a rate: `ok`, `warning` (over `warning`), `alert` (over `alert`), or
    `too_few` when fewer than `minimum_deliveries` (or no) deliveries were counted."""
    if deliveries <= 0 or deliveries < minimum_deliveries:
        return "too_few"
    complaints_ = Decimal(complaints)
    if complaints_ > _decimal(alert) * deliveries:
        return "alert"
    if complaints_ > _decimal(warning) * deliveries:
        return "warning"
    return "ok"


@dataclass(frozen=True, slots=True)
class Thresholds:
    warning: Decimal = WARNING
    alert: Decimal = ALERT
    minimum_deliveries: int = 0

    @classmethod
    def from_settings(cls, settings) -> Thresholds:
        """From an object with COMPLAINT_RATE_WARNING, COMPLAINT_RATE_ALERT and
        COMPLAINT_RATE_MIN_DELIVERIES (Django's settings)."""
        return cls(
            warning=_decimal(settings.COMPLAINT_RATE_WARNING),
            alert=_decimal(settings.COMPLAINT_RATE_ALERT),
            minimum_deliveries=int(settings.COMPLAINT_RATE_MIN_DELIVERIES),
        )

    def level(self, complaints: int, deliveries: int) -> Level:
        return level(
            complaints,
            deliveries,
            minimum_deliveries=self.minimum_deliveries,
            warning=self.warning,
            alert=self.alert,
        )


def percent(value: Decimal | float | None, places: int = 3) -> str:
    """A rate as a percentage for people: Decimal("0.00125") -> "0.125%"; None -> "–"."""
    if value is None:
        return "–"
    shown = (_decimal(value) * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{shown}%"
