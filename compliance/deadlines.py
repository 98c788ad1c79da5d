"""Deadline arithmetic, in one pure module. `_now` is the one clock, so tests can move it.

GDPR Art. 12(3): a data-subject request is answered within one month of its receipt, extendable
by two further months. A month is counted by the calendar (Regulation 1182/71, Art. 3(2)(c)): it
ends on the same day of the following month, or on that month's last day when it has no such day
(31 January + one month = 28 or 29 February).

Opt-outs: Gmail and Yahoo's bulk-sender rules (2024) ask for an unsubscribe honoured within 2 days
(48 hours); CAN-SPAM (15 U.S.C. 7704(a)(4), 16 CFR 316.5) within 10 business days, counted here on
the US federal calendar (weekends and federal holidays are not business days).
"""

from __future__ import annotations

import datetime

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


def business_days_after(day: datetime.date, count: int) -> datetime.date:
    """The `count`th US business day after `day` (`day` itself not counted)."""
    while count > 0:
        day += datetime.timedelta(days=1)
        count -= is_business_day(day)
    return day


def can_spam_due(received: datetime.datetime) -> datetime.date:
    """The last day an opt-out received at `received` may take effect under CAN-SPAM."""
    return business_days_after(received.date(), CAN_SPAM_BUSINESS_DAYS)


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
