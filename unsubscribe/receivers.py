"""Reactions of the unsubscribe app to changes made elsewhere."""

from __future__ import annotations

from suppression.models import SuppressionEvent
from unsubscribe import services


def retire_repeats_on_lift(sender, instance: SuppressionEvent, created: bool, **kwargs) -> None:
    """An opt-out that is lifted (the recipient resubscribed in the preference centre, or staff
    lifted it with a reason) may be made again at once: the next click within the repeat window
    is a new opt-out and must be stored, not taken for a replay of the old one."""
    if created and instance.action == SuppressionEvent.Action.LIFT:
        services.retire_repeat_keys(
            tenant_id=instance.suppression.tenant_id, digest=bytes(instance.address_hash)
        )
