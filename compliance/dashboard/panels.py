"""The dashboard's panels as the template shows them: every figure with the admin list behind it,
the charts' coordinates, and only what the user may see (their tenants, the models they may
view)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.conf import settings

from compliance import deadline_selectors
from compliance.dashboard import charts, links, selectors
from compliance.dashboard.selectors import Scope, Totals
from compliance.dsr.models import DataSubjectRequest
from compliance.models import OptOutRequest, Tenant
from fbl import rates as rate_rules
from fbl import selectors as fbl_selectors
from fbl.models import DailyCount, InboundMessage, RelayEvent

# The window of the opt-out timing and the complaint rates (fbl's complaint-rate page shows
# the same 30 days), and of the report volumes.
DAYS = 30
VOLUME_DAYS = 14
# Complaint-rate lines drawn at once; the table below the chart lists every group.
CHART_LINES = 6
GROUPINGS = {"tenant": "Tenant", "stream": "Stream", "provider": "Mailbox provider"}
SHARED = "Shared (every tenant)"


@dataclass(frozen=True)
class Figure:
    """A number as shown, and the admin list of the rows it counts."""

    text: str
    href: str | None = None
    title: str = ""


def _count(value: int, href: str | None, title: str = "") -> Figure:
    return Figure(f"{value:,}", href, title)


def duration(seconds: float | None) -> str:
    """A time to apply as people read it: "40 s", "12 min", "5.5 h", "3.2 days"."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _share(totals: Totals, part: str) -> str:
    share = totals.share(part)
    return "–" if share is None else f"{share * 100:.1f}%"


@dataclass
class Context:
    """What every panel needs: who asks, which tenants they see, and when."""

    user: object
    scope: Scope
    now: datetime.datetime
    tenants: dict[int, Tenant] = field(default_factory=dict)

    @property
    def today(self) -> datetime.date:
        return self.now.astimezone(datetime.UTC).date()

    def may_view(self, model) -> bool:
        opts = model._meta
        return self.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")

    def tenant_label(self, tenant_id: int | None) -> str:
        if tenant_id is None:
            return SHARED
        tenant = self.tenants.get(tenant_id)
        return tenant.name if tenant else f"tenant {tenant_id}"


def dashboard(user, *, now: datetime.datetime, by: str = "tenant") -> dict:
    """Every panel the user may see, keyed by name; a panel the user may not see is None."""
    scope = selectors.scope_of(user)
    context = Context(user=user, scope=scope, now=now, tenants=scope.tenants())
    may_see_opt_outs = context.may_view(OptOutRequest)
    rolled_up_at = selectors.rolled_up_at()
    return {
        "scope_tenants": [t.name for t in context.tenants.values()] if scope.limited else None,
        "open_opt_outs": open_opt_outs(context) if may_see_opt_outs else None,
        "applied": applied(context) if may_see_opt_outs else None,
        "complaint_rates": complaint_rates(context, by) if context.may_view(DailyCount) else None,
        "volumes": volumes(context),
        "requests": requests(context) if context.may_view(DataSubjectRequest) else None,
        "domains": domains(context),
        "rolled_up_at": rolled_up_at,
        "stale": stale(rolled_up_at, now),
    }


# --- open opt-outs -------------------------------------------------------------------------------

_BUCKETS = (
    ("late", "late", "Past the 48-hour target or the CAN-SPAM deadline"),
    ("overdue", "overdue", "Of those, past the CAN-SPAM deadline"),
    ("due_today", "due_today", "A deadline ends today (the tenant's time zone)"),
    (
        "due_this_week",
        "due_week",
        f"A deadline ends within {deadline_selectors.WEEK_BUSINESS_DAYS} business days, not today",
    ),
    ("open", "open", "Not yet acknowledged by every downstream system"),
)


def open_opt_outs(context: Context) -> dict:
    rows = selectors.open_opt_outs(context.scope, context.now)

    def figures(counts: dict[str, int], tenant_id) -> dict[str, Figure]:
        tenant = links.tenant_params(context.scope, tenant_id)
        return {
            name: _count(
                counts[name], links.changelist(OptOutRequest, deadline=deadline, **tenant), title
            )
            for name, deadline, title in _BUCKETS
        }

    total = {name: sum(getattr(r, name) for r in rows) for name, _, _ in _BUCKETS}
    return {
        "rows": [
            {
                "label": context.tenant_label(r.tenant_id),
                **figures({name: getattr(r, name) for name, _, _ in _BUCKETS}, r.tenant_id),
            }
            for r in rows
        ],
        "total": {"label": "All", **figures(total, links.EVERY_TENANT)},
        "week_days": deadline_selectors.WEEK_BUSINESS_DAYS,
    }


# --- opt-outs applied ---------------------------------------------------------------------------


def applied(context: Context) -> dict:
    since = context.today - datetime.timedelta(days=DAYS - 1)
    per_tenant = selectors.totals_per_tenant(context.scope, since, context.today)
    window = links.day_params("propagated_at", since, context.today)

    def figures(totals: Totals, tenant_id) -> dict:
        base = {**window, "channel__in": links.TIMED_CHANNELS}
        base.update(links.tenant_params(context.scope, tenant_id))
        every = links.changelist(OptOutRequest, **base)
        return {
            "applied": _count(totals.figures["opt_outs_applied"], every),
            "within_target": Figure(
                _share(totals, "applied_within_target"),
                links.changelist(OptOutRequest, deadline="within_target", **base),
                f"{totals.figures['applied_within_target']:,} within the 48-hour target",
            ),
            "within_can_spam": Figure(
                _share(totals, "applied_within_can_spam"),
                links.changelist(OptOutRequest, deadline="within_can_spam", **base),
                f"{totals.figures['applied_within_can_spam']:,} within the CAN-SPAM deadline",
            ),
            "median": Figure(duration(totals.median_seconds), every, "median time to apply"),
        }

    total = Totals()
    rows = []
    for tenant_id in sorted(per_tenant, key=lambda t: (t is not None, t or 0)):
        totals = per_tenant[tenant_id]
        if not totals.figures["opt_outs_applied"]:
            continue
        total = total.merge(totals)
        rows.append({"label": context.tenant_label(tenant_id), **figures(totals, tenant_id)})
    return {
        "since": since,
        "until": context.today,
        "rows": rows,
        "total": {"label": "All", **figures(total, links.EVERY_TENANT)},
    }


# --- complaint rates -----------------------------------------------------------------------------


def complaint_rates(context: Context, by: str) -> dict:
    if by not in GROUPINGS:
        by = "tenant"
    since = context.today - datetime.timedelta(days=DAYS - 1)
    groups = selectors.complaint_rates(context.scope, since, context.today, by=by)
    judge = fbl_selectors.thresholds()
    days = [since + datetime.timedelta(days=i) for i in range(DAYS)]

    def page(group) -> str:
        return links.complaint_rates(by, group.tenant.slug if group.tenant else None)

    shown = groups[:CHART_LINES]
    chart = charts.line_chart(
        days,
        [
            charts.Series(
                label=group.label,
                values=[_as_float(group.rate_on(day)) for day in days],
                href=page(group),
            )
            for group in shown
        ],
        rules=[
            (f"{rate_rules.percent(judge.warning, 1)} (warning)", float(judge.warning)),
            (f"{rate_rules.percent(judge.alert, 1)} (alert)", float(judge.alert)),
        ],
        value_label=lambda v: rate_rules.percent(v, 2),
        least_top=float(judge.alert) * 1.2,
    )
    rows = []
    for group in sorted(groups, key=_worst_first):
        href = page(group)
        rows.append(
            {
                "label": group.label,
                "colour": chart.lines[shown.index(group)].colour if group in shown else None,
                "deliveries": _count(group.deliveries, href),
                "complaints": _count(group.complaints, href),
                "rate": Figure(rate_rules.percent(group.rate), href),
                "level": group.level,
            }
        )
    return {
        "by": by,
        "groupings": [(value, text) for value, text in GROUPINGS.items()],
        "chart": chart,
        "rows": rows,
        "shown": len(shown),
        "since": since,
        "until": context.today,
        "warning_line": rate_rules.percent(judge.warning, 1),
        "alert_line": rate_rules.percent(judge.alert, 1),
        "minimum_deliveries": judge.minimum_deliveries,
        "all_href": links.complaint_rates(by),
    }


def _as_float(value) -> float | None:
    return None if value is None else float(value)


def _worst_first(group) -> tuple:
    return (-rate_rules.SEVERITY[group.level], -(group.rate or 0), group.label)


# --- report and bounce volumes -------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """A figure of the volumes table, and the admin list of the rows it counts (by the day they
    arrived)."""

    figure: str
    heading: str
    model: type
    filters: dict


_VOLUME_COLUMNS = (
    _Column("opt_outs_received", "Opt-outs received", OptOutRequest, {}),
    _Column("feedback_reports", "Complaint reports (mail)", InboundMessage, {"kind__exact": "arf"}),
    _Column("bounce_reports", "Bounce reports (mail)", InboundMessage, {"kind__exact": "dsn"}),
    _Column("relay_feedback", "Feedback (relays)", RelayEvent, {"kind__exact": "feedback"}),
    _Column("relay_bounces", "Bounces (relays)", RelayEvent, {"kind__exact": "bounce"}),
)
# What the chart draws: complaints and bounces whichever way they came.
_CHARTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Opt-outs", ("opt_outs_received",)),
    ("Complaint reports", ("feedback_reports", "relay_feedback")),
    ("Bounces", ("bounce_reports", "relay_bounces")),
)


def volumes(context: Context) -> dict | None:
    columns = [c for c in _VOLUME_COLUMNS if context.may_view(c.model)]
    if not columns:
        return None
    until = context.today
    since = until - datetime.timedelta(days=VOLUME_DAYS - 1)
    daily = selectors.daily_totals(context.scope, since, until)
    every_tenant = links.tenant_params(context.scope)

    def cell(column: _Column, value: int, first: datetime.date, last: datetime.date) -> Figure:
        dates = links.day_params("received_at", first, last)
        return _count(
            value, links.changelist(column.model, **column.filters, **dates, **every_tenant)
        )

    rows = [
        {
            "day": day,
            "cells": [cell(c, totals.figures[c.figure], day, day) for c in columns],
        }
        for day, totals in sorted(daily.items(), reverse=True)
    ]
    total = {c.figure: sum(totals.figures[c.figure] for totals in daily.values()) for c in columns}
    days = sorted(daily)
    visible = {c.figure for c in columns}
    series = [
        charts.Series(
            label=label,
            values=[sum(daily[day].figures[f] for f in figures if f in visible) for day in days],
        )
        for label, figures in _CHARTED
        if visible & set(figures)
    ]
    return {
        "since": since,
        "until": until,
        "headings": [c.heading for c in columns],
        "rows": rows,
        "total": [cell(c, total[c.figure], since, until) for c in columns],
        "chart": charts.bar_chart(days, series, value_label=lambda v: f"{v:,.0f}"),
    }


# --- data-subject requests -----------------------------------------------------------------------


def requests(context: Context) -> dict:
    due = selectors.requests_due(
        context.scope, context.now, deadline_selectors.warn_business_days()
    )
    base = {"status__in": links.OPEN_REQUESTS, **links.tenant_params(context.scope)}

    def listed(**filters) -> str:
        return links.changelist(DataSubjectRequest, **base, **filters)

    return {
        "overdue": _count(due.overdue, listed(due__lt=due.today.isoformat())),
        "due_soon": _count(
            due.due_soon,
            listed(due__gte=due.today.isoformat(), due__lte=due.soon_until.isoformat()),
        ),
        "open": _count(due.open, listed()),
        "soon_until": due.soon_until,
    }


# --- domain health -------------------------------------------------------------------------------


def domains(context: Context) -> dict | None:
    """Sending domains by the verdict of their latest check (fail, warn, pass), and the ones
    that do not pass with the checks that did not. None when the user may not see them;
    {"installed": False} without the domain checks (compliance.domains)."""
    if not context.user.has_module_perms("domains"):
        return None
    latest = selectors.domain_health(context.scope)
    if latest is None:
        return {"installed": False}
    counts = {"fail": 0, "warn": 0, "pass": 0}
    problems = []
    # Each is a compliance.domains DomainCheck: its domain, verdict, time and checks, each
    # check {"name", "status", "message"} (compliance.check_results).
    for check in latest:
        counts[check.verdict] = counts.get(check.verdict, 0) + 1
        if check.verdict != "pass":
            problems.append(
                {
                    "domain": check.domain.domain,
                    "verdict": check.verdict,
                    "checked_at": check.checked_at,
                    "checks": [
                        f"{c['name']}: {c['message']}"
                        for c in check.checks
                        if c["status"] != "pass"
                    ],
                    "href": links.sending_domain(check.domain.pk),
                }
            )
    return {
        "installed": True,
        "counts": {
            verdict: _count(n, links.sending_domains(context.scope, verdict))
            for verdict, n in counts.items()
        },
        "problems": sorted(problems, key=lambda p: (p["verdict"] != "fail", p["domain"])),
    }


def stale(rolled_up_at: datetime.datetime | None, now: datetime.datetime) -> bool:
    """Whether the roll-up missed several runs (or never ran): the page then says so."""
    every = settings.CELERY_BEAT_SCHEDULE["roll-up-dashboard"]["schedule"]
    late_after = datetime.timedelta(seconds=max(600.0, 5 * every))
    return rolled_up_at is None or now - rolled_up_at > late_after
