"""The steps of an erasure (GDPR Art. 17), registered by each app that keeps addresses.

Every app below the data-subject requests registers, from its own module, the steps that take
the address out of its tables (`register`); `compliance.dsr.erasure` runs them in order. The
registry lives here, in the lowest app they all use, so no app imports the layer above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q

from suppression import erased


@dataclass(frozen=True)
class Subject:
    """Whose data is erased: the normalised address (None once the request itself forgot it),
    its keyed hash, and the text that replaces the address where a row keeps its text."""

    address: str | None
    address_hash: bytes
    request: Any  # the data-subject request (compliance.dsr), for the steps that need it

    @property
    def placeholder(self) -> str:
        return erased.placeholder_for(self.address_hash)


def mentions_q(field: str, address: str) -> Q:
    """Rows whose text `field` holds any spelling of `address`, in any letter case."""
    return reduce(or_, (Q(**{f"{field}__icontains": s}) for s in erased.spellings(address)))


# A step takes the subject and a batch size and returns how many rows it changed; fewer than
# the batch means it is finished.
StepFunction = Callable[[Subject, int], int]


@dataclass(frozen=True)
class Step:
    name: str
    order: int
    run: StepFunction


_steps: dict[str, Step] = {}


def register(name: str, order: int) -> Callable[[StepFunction], StepFunction]:
    """Register an erasure step; lower `order` runs first."""

    def decorate(function: StepFunction) -> StepFunction:
        _steps[name] = Step(name, order, function)
        return function

    return decorate


def steps() -> list[Step]:
    return sorted(_steps.values(), key=lambda step: (step.order, step.name))
