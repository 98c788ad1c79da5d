"""Nudging endpoints' deliveries after a commit, without making the change wait for them.

With a broker, one `webhooks.deliver` task per endpoint is queued, at most once per
`WEBHOOK_KICK_SECONDS` per process: a burst of opt-outs queues a handful of tasks, each of which
drains every delivery due. Without one (the embedded default) delivery runs in a thread, so an
opt-out never waits on a slow endpoint either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

_last_kick: dict[int, float] = {}
_lock = threading.Lock()


def _due(endpoint_ids: Iterable[int], force: bool) -> list[int]:
    now = time.monotonic()
    chosen = []
    with _lock:
        for endpoint_id in endpoint_ids:
            if force or now - _last_kick.get(endpoint_id, -1e9) >= settings.WEBHOOK_KICK_SECONDS:
                _last_kick[endpoint_id] = now
                chosen.append(endpoint_id)
    return chosen


def kick(endpoint_ids: Iterable[int], *, force: bool = False) -> None:
    """Have each endpoint's due deliveries sent soon; `force` skips the once-per-interval limit."""
    from compliance.webhooks import tasks

    for endpoint_id in _due(endpoint_ids, force):
        if settings.CELERY_TASK_ALWAYS_EAGER:
            threading.Thread(
                target=_deliver_in_thread, args=(endpoint_id,), daemon=True, name="webhooks"
            ).start()
            continue
        try:
            tasks.deliver.delay(endpoint_id)
        except Exception:  # the broker is down: the sweep delivers them later
            log.warning("could not queue webhook delivery for endpoint %s", endpoint_id)


def _deliver_in_thread(endpoint_id: int) -> None:
    from compliance.webhooks.services import delivery

    try:
        delivery.deliver_endpoint(endpoint_id)
    except Exception:
        log.exception("webhook delivery for endpoint %s failed", endpoint_id)
    finally:
        connection.close()
