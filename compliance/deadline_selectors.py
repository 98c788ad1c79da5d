"""Which opt-outs are open, due soon or late: queries on their stored due times.

An opt-out is open until every downstream system acknowledged it (`propagated_at` is NULL); the
partial index `optout_open_by_due` holds exactly those rows. "Due soon" is counted in business
days of the tenant's time zone (`deadlines.warning_line`), so the queries compare each zone's
rows with that zone's line: one condition per time zone in use, never a loop over rows.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import F, Q, QuerySet

from compliance import deadlines
from compliance.models import OptOutRequest, Tenant

DEFAULT_POLICY = deadlines.DEFAULT_POLICY
policy_of = deadlines.policy_of
# "Due this week": a deadline ends within this many business days after today.
WEEK_BUSINESS_DAYS = 5


def warn_business_days() -> int:
    return settings.DEADLINE_WARNING_BUSINESS_DAYS


def warning_lines(now: datetime.datetime, business_days: int) -> dict[str, datetime.datetime]:
    """{time zone in use: the instant before which a deadline there is "due soon"}. Shared
    opt-outs (no tenant) count in the default policy's zone."""
    zones = set(Tenant.objects.values_list("time_zone", flat=True).distinct())
    zones.add(DEFAULT_POLICY.time_zone)
    return {
        zone: deadlines.warning_line(now, deadlines.OptOutPolicy(time_zone=zone), business_days)
        for zone in sorted(zones)
    }


def _in_zone(zone: str) -> Q:
    in_zone = Q(tenant__time_zone=zone)
    if zone == DEFAULT_POLICY.time_zone:
        in_zone |= Q(tenant__isnull=True)
    return in_zone


def open_opt_outs() -> QuerySet[OptOutRequest]:
    return OptOutRequest.objects.filter(propagated_at__isnull=True)


def due_soon(now: datetime.datetime, business_days: int) -> Q:
    """Open, neither deadline passed, and one of them ends within the warning window: the
    states TARGET_SOON and DUE_SOON of `deadlines.opt_out_state`."""
    soon = Q()
    for zone, line in warning_lines(now, business_days).items():
        ends_soon = Q(can_spam_due_at__lte=line) | Q(
            provider_due_at__gt=now, provider_due_at__lte=line
        )
        soon |= _in_zone(zone) & ends_soon
    return Q(propagated_at__isnull=True, can_spam_due_at__gt=now) & soon


def past_target(now: datetime.datetime) -> Q:
    """Open and past the mailbox providers' target (overdue ones included)."""
    return Q(propagated_at__isnull=True, provider_due_at__lte=now)


def overdue(now: datetime.datetime) -> Q:
    """Open and past the CAN-SPAM deadline."""
    return Q(propagated_at__isnull=True, can_spam_due_at__lte=now)


def state_of(
    opt_out: OptOutRequest, *, now: datetime.datetime, business_days: int
) -> deadlines.OptOutState | None:
    """Where an open opt-out stands (None: propagated, or recorded without due times)."""
    if opt_out.propagated_at is not None or opt_out.can_spam_due_at is None:
        return None
    due = deadlines.OptOutDue(
        provider_due_at=opt_out.provider_due_at, can_spam_due_at=opt_out.can_spam_due_at
    )
    return deadlines.opt_out_state(
        due, policy=policy_of(opt_out.tenant), warn_business_days=business_days, now=now
    )


def late(now: datetime.datetime) -> Q:
    """Open and past either deadline."""
    return Q(propagated_at__isnull=True) & (
        Q(provider_due_at__lte=now) | Q(can_spam_due_at__lte=now)
    )


def _ends_by(line: datetime.datetime) -> Q:
    return Q(provider_due_at__lte=line) | Q(can_spam_due_at__lte=line)


def due_today(now: datetime.datetime) -> Q:
    """Open, neither deadline passed, and one of them ends before today ends in the tenant's
    time zone."""
    today = Q()
    for zone, end in warning_lines(now, 0).items():
        today |= _in_zone(zone) & _ends_by(end)
    return Q(propagated_at__isnull=True, provider_due_at__gt=now, can_spam_due_at__gt=now) & today


def due_this_week(now: datetime.datetime) -> Q:
    """Open, neither deadline ends today, and one of them ends within WEEK_BUSINESS_DAYS
    business days after today (in the tenant's time zone). Disjoint from `due_today`."""
    ends_today = warning_lines(now, 0)
    week = Q()
    for zone, end in warning_lines(now, WEEK_BUSINESS_DAYS).items():
        after_today = Q(provider_due_at__gt=ends_today[zone], can_spam_due_at__gt=ends_today[zone])
        week |= _in_zone(zone) & after_today & _ends_by(end)
    return Q(propagated_at__isnull=True) & week


def stopped_within_target() -> Q:
    """Propagated by the mailbox providers' target (48 hours by default)."""
    return Q(propagated_at__isnull=False, propagated_at__lte=F("provider_due_at"))


def stopped_within_can_spam() -> Q:
    """Propagated by the CAN-SPAM deadline."""
    return Q(propagated_at__isnull=False, propagated_at__lte=F("can_spam_due_at"))


def alert_candidates(now: datetime.datetime, business_days: int) -> QuerySet[OptOutRequest]:
    """Open opt-outs that may stand graver than staff were last told: every one with a deadline
    before the latest warning line of any zone, short of those already told they are overdue.
    The exact state of each is `state_of`."""
    latest = max(warning_lines(now, business_days).values())
    return (
        open_opt_outs()
        .filter(can_spam_due_at__isnull=False, alert_state__lt=deadlines.OptOutState.OVERDUE)
        .filter(Q(provider_due_at__lte=latest) | Q(can_spam_due_at__lte=latest))
        .select_related("tenant")
        .order_by("can_spam_due_at", "pk")
    )
