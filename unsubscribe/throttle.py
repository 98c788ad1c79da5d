"""Per-client budgets for the recipient's pages (/u/), in Django's cache.

Only requests that cannot be a first opt-out are counted: page views, invalid tokens, wrong
bodies and repeats. A first opt-out is never counted nor refused, so a mailbox provider posting
many recipients' one-clicks from a few addresses is never held back (RFC 8058 section 3.2; CAN-SPAM
and the GDPR let no opt-out be refused). Fixed windows: one cache add or increment per counted
request, no database query.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from compliance.middleware import client_ip

log = logging.getLogger(__name__)


def over_budget(request) -> int | None:
    """Count this request against its client's budget. Returns the seconds until the budget
    renews when the client has used it up (the Retry-After of a 429), else None."""
    limit = settings.UNSUBSCRIBE_RATE_LIMIT
    period = settings.UNSUBSCRIBE_RATE_LIMIT_SECONDS
    if limit <= 0 or period <= 0:
        return None
    now = time.time()
    window = int(now // period)
    key = f"unsubscribe-budget:{client_ip(request) or '-'}:{window}"
    try:
        used = _count(key, timeout=period + 1)
    except Exception as exc:  # noqa: BLE001 - an unreachable cache must not fail an opt-out
        log.warning("cannot count the unsubscribe budget, letting the request through: %s", exc)
        return None
    if used <= limit:
        return None
    return max(1, math.ceil((window + 1) * period - now))


def _count(key: str, *, timeout: int) -> int:
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between the add and the increment
        cache.add(key, 1, timeout=timeout)
        return 1
