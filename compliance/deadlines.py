"""Deadline arithmetic, in one pure module. `_now` is the one clock, so tests can move it.

GDPR Art. 12(3): a data-subject request is answered within one month of its receipt, extendable
by two further months. A month is counted by the calendar (Regulation 1182/71, Art. 3(2)(c)): it
ends on the same day of the following month, or on that month's last day when it has no such day
(31 January + one month = 28 or 29 February).

Opt-outs: Gmail and Yahoo's bulk-sender rules (2024) ask for an unsubscribe honoured within 2 days
(48 hours); CAN-SPAM (15 U.S.C. 7704(a)(4), 16 CFR 316.5) within 10 business days, counted on the
US federal calendar: weekends and federal holidays are not business days, and a holiday falling
on a Saturday or Sunday is observed on the Friday before or the Monday after (5 U.S.C. 6103(b)),
as the `holidays` package lists it. Both are counted in the tenant's time zone: an opt-out
received on Friday evening in New York was received on Friday, whatever the UTC date. A CAN-SPAM
deadline ends when its last business day ends there.
"""

from __future__ import annotations

import datetime
import enum
import functools
import zoneinfo
from dataclasses import dataclass

import holidays
from dateutil.relativedelta import relativedelta

MAX_DSR_EXTENSION_MONTHS = 2
PROVIDER_OPT_OUT_LIMIT = datetime.timedelta(hours=48)
CAN_SPAM_BUSINESS_DAYS = 10
_US_HOLIDAYS = holidays.country_holidays("US")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def months_after(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` calendar months later, or that month's last day."""
    return day + relativedelta(months=months)


def dsr_due(received: datetime.datetime, *, extended_by: int = 0) -> datetime.date:
    """The day a data-subject request received at `received` must be answered by."""
    if not 0 <= extended_by <= MAX_DSR_EXTENSION_MONTHS:
        raise ValueError(f"a request can be extended by at most {MAX_DSR_EXTENSION_MONTHS} months")
    return months_after(received.date(), 1 + extended_by)


def is_business_day(day: datetime.date) -> bool:
    return day.weekday() < 5 and day not in _US_HOLIDAYS


@functools.lru_cache(maxsize=4096)
def business_days_after(day: datetime.date, count: int) -> datetime.date:
    """The `count`th US business day after `day` (`day` itself not counted)."""
    while count > 0:
        day += datetime.timedelta(days=1)
        count -= is_business_day(day)
    return day


def can_spam_due(received: datetime.datetime) -> datetime.date:
    """The last day an opt-out received at `received` may take effect under CAN-SPAM."""
    return business_days_after(received.date(), CAN_SPAM_BUSINESS_DAYS)


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this system knows (`Europe/Berlin`, `UTC`)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class OptOutPolicy:
    """A tenant's opt-out deadlines: its time zone, the CAN-SPAM business days and the mailbox
    providers' target in hours."""

    time_zone: str = "UTC"
    business_days: int = CAN_SPAM_BUSINESS_DAYS
    target_hours: int = int(PROVIDER_OPT_OUT_LIMIT.total_seconds() // 3600)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


DEFAULT_POLICY = OptOutPolicy()


def policy_of(tenant) -> OptOutPolicy:
    """The deadlines an opt-out of `tenant` (a Tenant, or None: shared by all) is held to;
    shared opt-outs keep the defaults."""
    return tenant.opt_out_policy if tenant is not None else DEFAULT_POLICY


@dataclass(frozen=True)
class OptOutDue:
    provider_due_at: datetime.datetime  # the mailbox providers' target (48 hours by default)
    can_spam_due_at: datetime.datetime  # the end of the last CAN-SPAM business day


def _end_of_day(day: datetime.date, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The instant `day` ends in `zone` (the next day's first moment), in UTC."""
    following = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time())
    return following.replace(tzinfo=zone).astimezone(datetime.UTC)


@functools.lru_cache(maxsize=4096)
def _can_spam_due_at(local_day: datetime.date, policy: OptOutPolicy) -> datetime.datetime:
    return _end_of_day(business_days_after(local_day, policy.business_days), policy.zone)


def local_date(moment: datetime.datetime, policy: OptOutPolicy) -> datetime.date:
    return moment.astimezone(policy.zone).date()


def opt_out_due_on(local_day: datetime.date, policy: OptOutPolicy) -> datetime.datetime:
    """The CAN-SPAM due time of every opt-out received on `local_day` in the policy's zone."""
    return _can_spam_due_at(local_day, policy)


def opt_out_due(received: datetime.datetime, policy: OptOutPolicy = OptOutPolicy()) -> OptOutDue:
    """Both due times of an opt-out received at `received` (an aware datetime)."""
    return OptOutDue(
        # In UTC: hours are elapsed time, whatever the clocks of the zone did meanwhile.
        provider_due_at=received.astimezone(datetime.UTC)
        + datetime.timedelta(hours=policy.target_hours),
        can_spam_due_at=_can_spam_due_at(local_date(received, policy), policy),
    )


class OptOutState(enum.IntEnum):
    """Where an open opt-out stands, each state graver than the one before. Time only moves an
    opt-out forward, so staff are told once per state."""

    ON_TIME = 0
    TARGET_SOON = 1  # the mailbox providers' target ends within the warning window
    TARGET_MISSED = 2  # past the mailbox providers' target, within CAN-SPAM's
    DUE_SOON = 3  # CAN-SPAM's deadline ends within the warning window
    OVERDUE = 4  # past CAN-SPAM's deadline

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {
    OptOutState.ON_TIME: "on time",
    OptOutState.TARGET_SOON: "48-hour target ends soon",
    OptOutState.TARGET_MISSED: "past the 48-hour target",
    OptOutState.DUE_SOON: "CAN-SPAM deadline ends soon",
    OptOutState.OVERDUE: "past the CAN-SPAM deadline",
}


def warning_line(
    now: datetime.datetime, policy: OptOutPolicy, business_days: int
) -> datetime.datetime:
    """A deadline ending before this instant is "due soon": the end of the `business_days`th
    business day after today, in the tenant's time zone."""
    return _end_of_day(business_days_after(local_date(now, policy), business_days), policy.zone)


def opt_out_state(
    due: OptOutDue,
    *,
    policy: OptOutPolicy = OptOutPolicy(),
    warn_business_days: int = 1,
    now: datetime.datetime | None = None,
) -> OptOutState:
    """The state of an opt-out not yet propagated everywhere, at `now` (default `_now()`)."""
    now = now or _now()
    if now >= due.can_spam_due_at:
        return OptOutState.OVERDUE
    soon = warning_line(now, policy, warn_business_days)
    if due.can_spam_due_at <= soon:
        return OptOutState.DUE_SOON
    if now >= due.provider_due_at:
        return OptOutState.TARGET_MISSED
    if due.provider_due_at <= soon:
        return OptOutState.TARGET_SOON
    return OptOutState.ON_TIME


class RequestState(enum.IntEnum):
    """Where an open data-subject request stands against its due day."""

    ON_TIME = 0
    DUE_SOON = 1
    OVERDUE = 2

    @property
    def label(self) -> str:
        return {0: "on time", 1: "due soon", 2: "overdue"}[self.value]


def request_state(
    due: datetime.date, *, warn_business_days: int = 1, now: datetime.datetime | None = None
) -> RequestState:
    """A request is answered by the end of its due day (UTC); due soon within the warning."""
    today = (now or _now()).astimezone(datetime.UTC).date()
    if today > due:
        return RequestState.OVERDUE
    if due <= business_days_after(today, warn_business_days):
        return RequestState.DUE_SOON
    return RequestState.ON_TIME


def opt_out_timing(received: datetime.datetime, applied: datetime.datetime | None) -> dict:
    """How long an opt-out took to apply, against both deadlines. An opt-out not yet applied is
    measured against `_now()`: it is late as soon as its deadline has passed."""
    until = applied or _now()
    taken = until - received
    due = can_spam_due(received)
    return {
        "applied": applied is not None,
        "seconds_to_apply": int(taken.total_seconds()) if applied else None,
        "within_48_hours": taken <= PROVIDER_OPT_OUT_LIMIT,
        "can_spam_due": due,
        "within_10_business_days": until.date() <= due,
    }
