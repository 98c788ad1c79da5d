"""Deadline arithmetic, in one pure module. `_now` is the one clock, so tests can move it.

GDPR Art. 12(3): a data-subject request is answered within one month of its receipt, extendable
by two further months. A month is counted by the calendar (Regulation 1182/71, Art. 3(2)(c)): it
ends on the same day of the following month, or on that month's last day when it has no such day
(31 January + one month = 28 or 29 February).
"""

from __future__ import annotations

import datetime

from dateutil.relativedelta import relativedelta

MAX_DSR_EXTENSION_MONTHS = 2


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
