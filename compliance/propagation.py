"""Whether a new opt-out still has to reach downstream systems before its clock stops.

The downstream webhooks (`compliance.webhooks`) sit above the suppression list, which records
opt-outs; they register the answer here, in the core both use, so nothing imports upward. With
no answer registered nothing is downstream, and an opt-out is propagated once applied here.
"""

from __future__ import annotations

from collections.abc import Callable

_waits: Callable[[int | None], bool] = lambda tenant_id: False  # noqa: E731


def register(function: Callable[[int | None], bool]) -> None:
    """`function(tenant_id)` answers whether an opt-out of that tenant (None: shared) has an
    endpoint to reach."""
    global _waits
    _waits = function


def waits_for_downstream(tenant_id: int | None) -> bool:
    return _waits(tenant_id)
