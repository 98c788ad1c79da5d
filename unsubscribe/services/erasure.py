"""The unsubscribe app's part of an erasure (compliance.dsr.erasure): a recipient's opt-outs
keep when, how and what, and lose the address, IP and user agent."""

from __future__ import annotations

from django.db.models import Q

from suppression import erasure_steps as erasure
from unsubscribe.models import UnsubscribeRequest


@erasure.register("unsubscribe_requests", order=50)
def erase_unsubscribe_requests(subject: erasure.Subject, batch: int) -> int:
    personal = Q(address__isnull=False) | Q(ip__isnull=False) | ~Q(user_agent="")
    ids = []
    # Applied and pending rows each through their own partial index (unsubscribe/models.py).
    for state in (Q(applied_at__isnull=False), Q(applied_at__isnull=True)):
        rows = UnsubscribeRequest.objects.filter(
            Q(address_hash=subject.address_hash) & state & personal
        )
        ids += rows.order_by("pk").values_list("pk", flat=True)[: batch - len(ids)]
    UnsubscribeRequest.objects.filter(pk__in=ids).update(address=None, ip=None, user_agent="")
    return len(ids)
