"""Named checks, each pass, warn or fail with a message for a person, and the verdict over them.

The answer of the domain health check and of the pre-send message check has this one shape:
`{"verdict": "pass"|"warn"|"fail", "checks": [{"name", "status", "message"}, ...]}`, with any
extra keys (the domain checked, ...) first. The verdict is the worst status among the checks.
Pure: imports nothing from Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["FAIL", "PASS", "STATUSES", "WARN", "Check", "Status", "as_json", "verdict"]

Status = Literal["pass", "warn", "fail"]
PASS: Status = "pass"
WARN: Status = "warn"
FAIL: Status = "fail"
STATUSES: tuple[Status, ...] = (PASS, WARN, FAIL)  # from best to worst


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"a check's status is one of {', '.join(STATUSES)}, not {self.status!r}"
            )

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}


def verdict(checks: Iterable[Check]) -> Status:
    """The worst status among `checks`. Raises ValueError when there is none to judge."""
    statuses = [check.status for check in checks]
    if not statuses:
        raise ValueError("no checks to judge")
    return max(statuses, key=STATUSES.index)


def as_json(checks: Iterable[Check], **extra: Any) -> dict[str, Any]:
    """The answer shape: `extra` keys first, then the verdict and the checks in their order."""
    checks = list(checks)
    return {**extra, "verdict": verdict(checks), "checks": [check.as_dict() for check in checks]}
