"""Named checks with a status, and the verdict over them: the one answer shape of the domain
health checks (`manage.py check_domain`) and the pre-send message check (`manage.py preflight`,
`POST /api/v1/preflight`):

    {"verdict": "pass" | "warn" | "fail",
     "checks": [{"name": ..., "status": "pass" | "warn" | "fail", "message": ...}, ...]}

The verdict is the worst status among the checks. Pure Python: no Django import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail"]

# Best first: the verdict is the status latest in this order.
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"check {self.name!r}: status {self.status!r} is not one of {STATUSES}"
            )

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of `statuses`; raises ValueError when there are none (nothing was judged)."""
    ranks = [STATUSES.index(status) for status in statuses]
    if not ranks:
        raise ValueError("no status to judge")
    return STATUSES[max(ranks)]


def verdict(checks: Iterable[Check]) -> Status:
    """The worst status among `checks`; raises ValueError for no checks at all."""
    return worst(check.status for check in checks)


def as_json(checks: Iterable[Check], **extra) -> dict:
    """The answer: `extra` keys first (e.g. domain=...), then "verdict" and "checks"."""
    checks = list(checks)
    return {**extra, "verdict": verdict(checks), "checks": [check.as_dict() for check in checks]}


def from_json(rows: Iterable[dict]) -> list[Check]:
    """Checks back from their stored form (a list of {"name", "status", "message"})."""
    return [Check(name=row["name"], status=row["status"], message=row["message"]) for row in rows]
