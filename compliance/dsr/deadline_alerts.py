"""Data-subject requests due soon or overdue: staff are mailed once per change of state, as for
opt-outs (compliance.alerts holds the rules: who is told, locking, once per state).

A request is open until it is fulfilled, refused or expired unverified. Art. 12(3) GDPR: it is
answered within one month of receipt (`due`, counted by compliance.deadlines); it is "due soon"
once its due day falls within DEADLINE_WARNING_BUSINESS_DAYS business days and overdue the day
after. Extending a request sets a new due day and starts its alerts afresh (services.extend).
"""

from __future__ import annotations

import datetime

from django.conf import settings

from compliance import alerts, deadlines
from compliance.dsr.models import DataSubjectRequest

FOOTER = (
    "Art. 12(3) GDPR: a request is answered within one month of receipt, extendable by two "
    "further months with the reason told to the requester.",
    "Every open request, the soonest due first: /admin/dsr/datasubjectrequest/",
)


def _today(now: datetime.datetime) -> datetime.date:
    return now.astimezone(datetime.UTC).date()


def candidates(now: datetime.datetime, business_days: int):
    """Open requests due within the warning window or overdue, not yet told they are overdue."""
    latest = deadlines.business_days_after(_today(now), business_days)
    return (
        DataSubjectRequest.objects.filter(
            status__in=DataSubjectRequest.OPEN,
            due__lte=latest,
            alert_state__lt=deadlines.RequestState.OVERDUE,
        )
        .select_related("tenant")
        .order_by("due", "pk")
    )


def describe(request: DataSubjectRequest, state: deadlines.RequestState) -> list[str]:
    tenant = f"{request.tenant.name} ({request.tenant.slug})" if request.tenant else "every tenant"
    extended = f", extended by {request.extended_by_months} month(s)"
    return [
        f"Data-subject request #{request.pk}: {state.label}",
        f"  kind:      {request.get_kind_display()}",
        f"  tenant:    {tenant}",
        f"  status:    {request.get_status_display()}",
        f"  received:  {alerts.at(request.received_at, datetime.UTC)}",
        f"  due:       {request.due.isoformat()} (UTC)"
        + (extended if request.extended_by_months else ""),
        f"  admin:     {alerts.admin_path(request)}",
    ]


def sweep(*, now: datetime.datetime | None = None, business_days: int | None = None) -> int:
    """Tell staff of every open request whose deadline state rose; returns how many."""
    now = now or deadlines._now()
    if business_days is None:
        business_days = settings.DEADLINE_WARNING_BUSINESS_DAYS
    return alerts.tell_staff(
        candidates(now, business_days),
        state_of=lambda request: deadlines.request_state(
            request.due, warn_business_days=business_days, now=now
        ),
        describe=describe,
        noun="data-subject request",
        plural="data-subject requests",
        phrases={state: state.label for state in deadlines.RequestState},
        footer=FOOTER,
    )
