"""Reads of the dashboard. None of them grows with the big tables:

- open opt-outs come from the partial index `optout_open_by_due` (open rows only);
- opt-outs applied and report volumes from `DailyRollup` (days x tenants);
- complaint rates from fbl's `DailyCount` (days x tenants x streams x campaigns x providers);
- data-subject requests from their (status, due) index (open requests only);
- domain health from `compliance.domains` (one latest result per domain), when installed.

Every read takes a `Scope`: the tenants a staff user is limited to (compliance.staff_scope).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.db.models import Count, Q, Sum

from compliance import deadline_selectors, deadlines, staff_scope
from compliance.dashboard import sketch
from compliance.dashboard.models import DailyRollup, RollupSource
from compliance.dashboard.sources import FIGURES
from compliance.dsr.models import DataSubjectRequest
from compliance.models import Stream, Tenant
from fbl import rates as rate_rules
from fbl import selectors as fbl_selectors
from fbl.models import DailyCount

__all__ = [
    "OpenOptOuts",
    "RateGroup",
    "RequestsDue",
    "Scope",
    "Totals",
    "complaint_rates",
    "daily_totals",
    "domain_health",
    "open_opt_outs",
    "requests_due",
    "rolled_up_at",
    "scope_of",
    "totals_per_tenant",
]


@dataclass(frozen=True)
class Scope:
    """The tenants a user sees: None for every tenant (shared rows included)."""

    tenant_ids: frozenset[int] | None = None

    @property
    def limited(self) -> bool:
        return self.tenant_ids is not None

    def q(self, field_name: str = "tenant") -> Q:
        if self.tenant_ids is None:
            return Q()
        return Q(**{f"{field_name}__in": sorted(self.tenant_ids)})

    def tenants(self) -> dict[int, Tenant]:
        return {t.pk: t for t in Tenant.objects.filter(self.q("pk")).order_by("slug")}


def scope_of(user) -> Scope:
    return Scope(staff_scope.tenant_ids_for(user))


# --- open opt-outs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenOptOuts:
    """Open opt-outs of one tenant (None: shared) by deadline bucket. `late` counts those past
    either deadline, `overdue` those of them past CAN-SPAM's; `due_today` and `due_this_week`
    are not late and do not overlap."""

    tenant_id: int | None
    late: int
    overdue: int
    due_today: int
    due_this_week: int
    open: int


def open_opt_outs(scope: Scope, now: datetime.datetime) -> list[OpenOptOuts]:
    """One row per tenant with open opt-outs, in tenant id order (shared first)."""
    rows = (
        deadline_selectors.open_opt_outs()
        .filter(scope.q())
        .values("tenant_id")
        .annotate(
            late=Count("pk", filter=deadline_selectors.late(now)),
            overdue=Count("pk", filter=deadline_selectors.overdue(now)),
            due_today=Count("pk", filter=deadline_selectors.due_today(now)),
            due_this_week=Count("pk", filter=deadline_selectors.due_this_week(now)),
            open=Count("pk"),
        )
        .order_by("tenant_id")
    )
    return [OpenOptOuts(**row) for row in rows]


# --- roll-ups ------------------------------------------------------------------------------------


@dataclass
class Totals:
    """Figures of DailyRollup added up over some days (and tenants)."""

    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    times: sketch.Sketch = field(default_factory=sketch.Sketch)

    def add(self, row: dict) -> None:
        """Add one DailyRollup row (its values); its times to apply when it has them."""
        for name in FIGURES:
            self.figures[name] += row[name]
        if "apply_times" in row:
            self.times = self.times.merge(sketch.Sketch.from_json(row["apply_times"]))

    def merge(self, other: Totals) -> Totals:
        return Totals(
            {name: value + other.figures[name] for name, value in self.figures.items()},
            self.times.merge(other.times),
        )

    @property
    def median_seconds(self) -> float | None:
        return self.times.median()

    def share(self, part: str) -> float | None:
        """`part` (a figure) as a fraction of the opt-outs applied; None when none were."""
        applied = self.figures["opt_outs_applied"]
        return self.figures[part] / applied if applied else None


def _rollups(
    scope: Scope, since: datetime.date, until: datetime.date, *, times: bool
) -> Iterable[dict]:
    columns = ["day", "tenant_id", *FIGURES, *(["apply_times"] if times else [])]
    return (
        DailyRollup.objects.filter(scope.q(), day__gte=since, day__lte=until)
        .order_by("day", "tenant_key")
        .values(*columns)
    )


def totals_per_tenant(
    scope: Scope, since: datetime.date, until: datetime.date
) -> dict[int | None, Totals]:
    """{tenant id (None: shared): its figures from `since` to `until`, both included, with
    its times to apply}."""
    found: dict[int | None, Totals] = {}
    for row in _rollups(scope, since, until, times=True):
        found.setdefault(row["tenant_id"], Totals()).add(row)
    return found


def daily_totals(
    scope: Scope, since: datetime.date, until: datetime.date
) -> dict[datetime.date, Totals]:
    """{day: the figures of every tenant in scope that day}, every day from `since` to
    `until` present (without the times to apply)."""
    days = (until - since).days + 1
    found = {since + datetime.timedelta(days=i): Totals() for i in range(days)}
    for row in _rollups(scope, since, until, times=False):
        found[row["day"]].add(row)
    return found


def rolled_up_at() -> datetime.datetime | None:
    """When every source was last read (the oldest of them); None if one never was."""
    times = list(RollupSource.objects.values_list("rolled_up_at", flat=True))
    if not times or None in times:
        return None
    return min(times)


# --- complaint rates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RateGroup:
    """One group's deliveries and complaints over the window, and per day."""

    by: tuple[str, ...]
    tenant: Tenant | None
    stream: Stream | None
    campaign: str | None
    provider: str | None
    deliveries: int
    complaints: int
    daily: dict[datetime.date, tuple[int, int]]

    @property
    def label(self) -> str:
        return fbl_selectors.label(self.by, self.tenant, self.stream, self.campaign, self.provider)

    @property
    def rate(self) -> Decimal | None:
        return rate_rules.rate(self.complaints, self.deliveries)

    @property
    def level(self) -> rate_rules.Level:
        return fbl_selectors.thresholds().level(self.complaints, self.deliveries)

    def rate_on(self, day: datetime.date) -> Decimal | None:
        deliveries, complaints = self.daily.get(day, (0, 0))
        return rate_rules.rate(complaints, deliveries)


_COLUMNS = {"tenant": "tenant_id", "stream": "stream_id", "provider": "provider"}


def complaint_rates(
    scope: Scope, since: datetime.date, until: datetime.date, *, by: str = "tenant"
) -> list[RateGroup]:
    """Complaint rates per tenant, stream (within a tenant) or mailbox provider (within a
    tenant), most deliveries first. Raises ValueError for another grouping."""
    if by not in _COLUMNS:
        raise ValueError(f"cannot group complaint rates by {by!r}; choose from {list(_COLUMNS)}")
    dimensions = fbl_selectors.GROUPINGS[by]
    columns = [_COLUMNS[d] for d in dimensions]
    rows = (
        DailyCount.objects.filter(scope.q(), day__gte=since, day__lte=until)
        .values("day", *columns)
        .annotate(deliveries_=Sum("deliveries"), complaints_=Sum("complaints"))
        .order_by("day", *columns)
    )
    grouped: dict[tuple, dict[datetime.date, tuple[int, int]]] = {}
    for row in rows:
        key = tuple(row[c] for c in columns)
        grouped.setdefault(key, {})[row["day"]] = (
            int(row["deliveries_"] or 0),
            int(row["complaints_"] or 0),
        )
    tenants = Tenant.objects.in_bulk({k[0] for k in grouped if k[0] is not None})
    streams = (
        Stream.objects.in_bulk({k[1] for k in grouped if k[1] is not None})
        if "stream" in dimensions
        else {}
    )
    groups = []
    for key, daily in grouped.items():
        named = dict(zip(dimensions, key, strict=True))
        groups.append(
            RateGroup(
                by=dimensions,
                tenant=tenants.get(named.get("tenant")),
                stream=streams.get(named.get("stream")),
                campaign=None,
                provider=named.get("provider"),
                deliveries=sum(d for d, _ in daily.values()),
                complaints=sum(c for _, c in daily.values()),
                daily=daily,
            )
        )
    groups.sort(key=lambda g: (-g.deliveries, g.label))
    return groups


# --- data-subject requests -------------------------------------------------------------------


@dataclass(frozen=True)
class RequestsDue:
    """Open data-subject requests: past their due day, due within the warning window (by
    `soon_until`, not yet overdue), and all open ones."""

    overdue: int
    due_soon: int
    open: int
    today: datetime.date
    soon_until: datetime.date


def requests_due(scope: Scope, now: datetime.datetime, warn_business_days: int) -> RequestsDue:
    today = now.astimezone(datetime.UTC).date()
    soon_until = deadlines.business_days_after(today, warn_business_days)
    counts = DataSubjectRequest.objects.filter(
        scope.q(), status__in=DataSubjectRequest.OPEN
    ).aggregate(
        overdue=Count("pk", filter=Q(due__lt=today)),
        due_soon=Count("pk", filter=Q(due__gte=today, due__lte=soon_until)),
        open=Count("pk"),
    )
    return RequestsDue(**counts, today=today, soon_until=soon_until)


# --- domain health -------------------------------------------------------------------------------


def domain_health(scope: Scope) -> list | None:
    """The latest check of each sending domain in scope, or None when the domain checks
    (compliance.domains) are not installed."""
    if not apps.is_installed("compliance.domains"):
        return None
    from compliance.domains import selectors as domain_selectors

    return list(domain_selectors.latest_checks(scope.tenant_ids))
