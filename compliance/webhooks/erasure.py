"""Erasure (GDPR Art. 17): stored events lose the address and keep its hash.

Events not yet delivered go out without it; the downstream system is told of the erasure
by the address hash it already holds."""

from __future__ import annotations

from compliance.webhooks.services import outbox
from suppression.erasure_steps import Subject, register


@register("webhook_events", order=70)
def forget_in_events(subject: Subject, batch: int) -> int:
    return outbox.forget_address(subject.address_hash, batch)
