"""Delivering one endpoint's due events: claim a batch, POST it concurrently, record each outcome.

- A 2xx answer is the acknowledgement. Any other answer (a redirect is never followed), a
  timeout or a refused connection is a failed attempt, tried again after the next delay of
  `WEBHOOK_RETRY_DELAYS`; after the last it becomes a dead letter for staff to retry.
- Events for one address reach an endpoint in the order they happened: a batch holds only the
  oldest pending delivery of each address, so a later one waits while an earlier one retries.
- One endpoint is drained by one worker at a time (a PostgreSQL advisory lock), with its own
  connections; a slow or broken endpoint holds up only its own deliveries. A batch in which
  nothing got through ends the run: the endpoint is down and its retries are scheduled.
"""

from __future__ import annotations

import datetime
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef
from django.utils import timezone

from compliance import locks
from compliance.models import OptOutRequest
from compliance.webhooks import signing, targets
from compliance.webhooks.models import DownstreamEndpoint, WebhookDelivery

Status = WebhookDelivery.Status
# pg_advisory_lock's first key: this lock class, so it never meets another feature's locks.
_LOCK_CLASS = 0x77686B  # "whk"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempts: int
    event_id: str
    body: str
    opt_out_id: int | None


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    ok: bool
    status_code: int | None
    error: str


@dataclass
class Tally:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def _exclusive(endpoint_id: int):
    """Whether this process may drain the endpoint now (always, on SQLite)."""
    return locks.exclusive(_LOCK_CLASS, endpoint_id)


def _claim(endpoint_id: int, limit: int, now: datetime.datetime) -> list[Claimed]:
    """Up to `limit` due deliveries, oldest event first, each the oldest pending one of its
    address. Two index-driven queries per page, never a join of the backlog with itself, so a
    claim costs the same with a hundred or a million deliveries waiting."""
    claimed: list[Claimed] = []
    after = 0
    while len(claimed) < limit:
        page = list(
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint_id,
                status=Status.PENDING,
                next_attempt_at__lte=now,
                event_id__gt=after,
            )
            .order_by("event_id")
            .values_list("pk", "attempts", "event_id", "order_key")[:limit]
        )
        if not page:
            break
        after = page[-1][2]
        keys = {bytes(key) for *_, key in page}
        first = dict(
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint_id, status=Status.PENDING, order_key__in=keys
            )
            .values_list("order_key")
            .annotate(first=Min("event_id"))
            .values_list("order_key", "first")
        )
        heads = {pk: attempts for pk, attempts, event, key in page if first[bytes(key)] == event}
        if heads:
            rows = WebhookDelivery.objects.filter(pk__in=list(heads)).values_list(
                "pk", "event__public_id", "event__body", "event__opt_out_id"
            )
            claimed += [Claimed(pk, heads[pk], *rest) for pk, *rest in rows]
        if len(page) < limit:
            break
    claimed.sort(key=lambda c: c.delivery_id)
    return claimed[:limit]


def _session(pool: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False  # no proxy from the environment decides where events go
    return session


def _post(session, url: str, signer: signing.Signer, claimed: Claimed) -> Outcome:
    headers = signer.headers(claimed.event_id, claimed.body, timezone.now())
    try:
        response = session.post(
            url,
            data=claimed.body.encode(),
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        return Outcome(claimed, False, None, "timed out")
    except requests.RequestException as exc:
        return Outcome(claimed, False, None, f"{type(exc).__name__}: {exc}"[:500])
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(claimed, True, code, "")
    note = f"answered {code}"
    if 300 <= code < 400:
        note += f", a redirect to {response.headers.get('location', '?')} (not followed)"
    return Outcome(claimed, False, code, note[:500])


def retry_delays() -> list[float]:
    return [float(x) for x in settings.WEBHOOK_RETRY_DELAYS]


def _record(outcomes: list[Outcome], now: datetime.datetime, tally: Tally) -> None:
    """One UPDATE per distinct outcome, not one per delivery."""
    delays = retry_delays()
    groups: dict[tuple, list[int]] = defaultdict(list)
    propagated: set[int] = set()
    for outcome in outcomes:
        attempts = outcome.claimed.attempts + 1
        if outcome.ok:
            key = (Status.DELIVERED, outcome.status_code, "", None)
            tally.delivered += 1
            if outcome.claimed.opt_out_id:
                propagated.add(outcome.claimed.opt_out_id)
        elif attempts > len(delays):
            key = (Status.DEAD, outcome.status_code, outcome.error, None)
            tally.dead += 1
        else:
            key = (Status.PENDING, outcome.status_code, outcome.error, delays[attempts - 1])
            tally.failed += 1
        groups[key].append(outcome.claimed.delivery_id)
    with transaction.atomic():
        for (status, code, error, delay), ids in groups.items():
            fields = {
                "status": status,
                "attempts": F("attempts") + 1,
                "last_attempt_at": now,
                "last_status_code": code,
                "last_error": error,
            }
            if status == Status.DELIVERED:
                fields["delivered_at"] = now
            if delay is not None:
                fields["next_attempt_at"] = now + datetime.timedelta(seconds=delay)
            WebhookDelivery.objects.filter(pk__in=ids).update(**fields)
    # After the commit, not in it: endpoints drained side by side each see the others' committed
    # deliveries, so whichever commits last stops the clock.
    if propagated:
        stop_clocks(propagated, now)


def stop_clocks(opt_out_ids, now: datetime.datetime) -> int:
    """Opt-outs whose every event has reached every endpoint are propagated: their deadline
    clock stops. `opt_out_ids` may be ids or a queryset of them."""
    open_deliveries = WebhookDelivery.objects.filter(event__opt_out_id=OuterRef("pk")).exclude(
        status=Status.DELIVERED
    )
    return (
        OptOutRequest.objects.filter(pk__in=opt_out_ids, propagated_at__isnull=True)
        .exclude(Exists(open_deliveries))
        .update(propagated_at=now)
    )


def stop_open_clocks(limit: int = 10_000) -> int:
    """Stop the clock of open opt-outs whose deliveries are all done (a worker that died between
    recording a delivery and stopping the clock leaves one open)."""
    open_ids = OptOutRequest.objects.filter(propagated_at__isnull=True).values_list(
        "pk", flat=True
    )[:limit]
    return stop_clocks(list(open_ids), timezone.now())


def deliver_endpoint(endpoint_id: int, *, budget_seconds: float | None = None) -> Tally:
    """Send the endpoint's due deliveries until none is left, the endpoint fails a whole batch,
    or the time budget (`WEBHOOK_RUN_SECONDS`) is spent."""
    tally = Tally()
    budget = settings.WEBHOOK_RUN_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    with _exclusive(endpoint_id) as mine:
        if not mine:
            return tally
        endpoint = DownstreamEndpoint.objects.filter(pk=endpoint_id, is_active=True).first()
        if endpoint is None:
            return tally
        concurrency = settings.WEBHOOK_CONCURRENCY
        signer = signing.Signer(endpoint.secret)
        with _session(concurrency) as session, ThreadPoolExecutor(concurrency) as pool:
            while time.monotonic() < deadline:
                now = timezone.now()
                batch = _claim(endpoint_id, settings.WEBHOOK_BATCH, now)
                if not batch:
                    break
                try:
                    targets.check(
                        endpoint.url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
                    )
                except targets.RefusedTarget as exc:
                    outcomes = [Outcome(c, False, None, str(exc)[:500]) for c in batch]
                else:
                    outcomes = list(
                        pool.map(lambda c: _post(session, endpoint.url, signer, c), batch)
                    )
                _record(outcomes, timezone.now(), tally)
                if not any(o.ok for o in outcomes):
                    break
    return tally


def due_endpoints(now: datetime.datetime | None = None) -> list[int]:
    """Active endpoints with a delivery due: what the sweep nudges (one indexed probe each)."""
    now = now or timezone.now()
    return [
        endpoint_id
        for endpoint_id in DownstreamEndpoint.objects.filter(is_active=True).values_list(
            "pk", flat=True
        )
        if WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, status=Status.PENDING, next_attempt_at__lte=now
        ).exists()
    ]
