"""Reads of the reports app: complaint rates per day, tenant, stream, campaign and provider.

Gmail and Yahoo bulk-sender rules (2024): keep the spam-complaint rate under 0.1% and never let
it reach 0.3%. Deliveries and feedback are counted per day, tenant, stream, campaign and mailbox
provider (`fbl.providers`) by `fbl.services`; rates are judged here by `fbl.rates` against the
COMPLAINT_RATE_* settings, per tenant, per stream, per campaign and per provider of a tenant
(GROUPINGS).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum

from compliance import staff_scope
from compliance.models import Stream, Tenant
from fbl import rates as rules
from fbl.models import DailyCount, InboundMessage, Mention

__all__ = [
    "DIMENSIONS",
    "GROUPINGS",
    "RateRow",
    "label",
    "rates",
    "rate_alert_recipients",
    "thresholds",
]

DIMENSIONS = ("tenant", "stream", "campaign", "provider")
# What each kind of alert groups by. Campaign names and providers are judged within a tenant:
# a mailbox provider measures a sender's own mail, not everybody's.
GROUPINGS: dict[str, tuple[str, ...]] = {
    "tenant": ("tenant",),
    "stream": ("tenant", "stream"),
    "campaign": ("tenant", "campaign"),
    "provider": ("tenant", "provider"),
}
_COLUMNS = {
    "tenant": "tenant_id",
    "stream": "stream_id",
    "campaign": "campaign",
    "provider": "provider",
}


def thresholds() -> rules.Thresholds:
    return rules.Thresholds.from_settings(settings)


@dataclass(frozen=True)
class RateRow:
    """Deliveries, feedback and the judged rate of one group (and one day with per_day). Fields
    not in `by` are None; within `by`, tenant and stream None mean "not attributed" and campaign
    "" means "no campaign"."""

    by: tuple[str, ...]
    day: date | None
    tenant: Tenant | None
    stream: Stream | None
    campaign: str | None
    provider: str | None
    deliveries: int
    complaints: int
    other_feedback: int
    rate: Decimal | None
    level: rules.Level

    @property
    def percent(self) -> str:
        return rules.percent(self.rate)

    @property
    def label(self) -> str:
        """The group as staff read it, e.g. "acme / marketing"."""
        return label(self.by, self.tenant, self.stream, self.campaign, self.provider)


def label(
    by: Sequence[str],
    tenant: Tenant | None,
    stream: Stream | None,
    campaign: str | None,
    provider: str | None,
) -> str:
    """A group as staff read it, e.g. "acme / marketing"."""
    parts = []
    if "tenant" in by:
        parts.append(tenant.slug if tenant else "(not attributed)")
    if "stream" in by:
        parts.append(stream.slug if stream else "(no stream)")
    if "campaign" in by:
        parts.append(campaign or "(no campaign)")
    if "provider" in by:
        parts.append(provider or "")
    return " / ".join(parts) or "all mail"


def rates(
    since: date,
    until: date,
    by: Sequence[str] = ("tenant",),
    *,
    per_day: bool = False,
    tenant: Tenant | None = None,
    tenant_ids: Collection[int] | None = None,
) -> list[RateRow]:
    """Deliveries, complaints, rate and level from `since` to `until` (both included), one row
    per group of `by` (any of DIMENSIONS), summed over the days, or one per group and day with
    `per_day` (newest day first). `tenant` narrows to one tenant's mail, `tenant_ids` to those
    tenants' (staff limited to them: mail of no tenant is left out too)."""
    unknown = set(by) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"cannot group by {sorted(unknown)}; choose from {DIMENSIONS}")
    by = tuple(d for d in DIMENSIONS if d in by)
    columns = (["day"] if per_day else []) + [_COLUMNS[d] for d in by]
    found = DailyCount.objects.filter(day__gte=since, day__lte=until)
    if tenant is not None:
        found = found.filter(tenant=tenant)
    if tenant_ids is not None:
        found = found.filter(tenant_id__in=tenant_ids)
    found = (
        found.values(*columns)
        .annotate(
            sum_deliveries=Sum("deliveries"),
            sum_complaints=Sum("complaints"),
            sum_other=Sum("other_feedback"),
        )
        .order_by(*columns)
    )
    found = list(found)
    tenants = Tenant.objects.in_bulk({r["tenant_id"] for r in found if r.get("tenant_id")})
    streams = Stream.objects.in_bulk({r["stream_id"] for r in found if r.get("stream_id")})
    judge = thresholds()
    rows = []
    for r in found:
        deliveries, complaints = int(r["sum_deliveries"] or 0), int(r["sum_complaints"] or 0)
        rows.append(
            RateRow(
                by=by,
                day=r.get("day"),
                tenant=tenants.get(r.get("tenant_id")),
                stream=streams.get(r.get("stream_id")),
                campaign=r.get("campaign"),
                provider=r.get("provider"),
                deliveries=deliveries,
                complaints=complaints,
                other_feedback=int(r["sum_other"] or 0),
                rate=rules.rate(complaints, deliveries),
                level=judge.level(complaints, deliveries),
            )
        )
    rows.sort(
        key=lambda row: (
            -(row.day.toordinal() if row.day else 0),
            row.tenant.slug if row.tenant else "",
            row.stream.slug if row.stream else "",
            row.campaign or "",
            row.provider or "",
        )
    )
    return rows


def rate_alert_recipients() -> list[str]:
    """Who is told about complaint rates: COMPLAINT_RATE_RECIPIENTS, else STAFF_ALERT_EMAILS,
    else every active staff user with an address who sees every tenant (the mail names any
    tenant's rates)."""
    configured = list(settings.COMPLAINT_RATE_RECIPIENTS) or list(settings.STAFF_ALERT_EMAILS)
    if configured:
        return configured
    users = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .exclude(email="")
        .exclude(pk__in=staff_scope.limited_user_ids())
    )
    return sorted(set(users.values_list("email", flat=True)))


def messages_mentioning(address_hash: bytes):
    """Stored messages that name the address anywhere (the erasure index, `fbl.Mention`): a
    few indexed rows instead of a search of every stored parse result."""
    mentioned = Mention.objects.filter(address_hash=address_hash, message__isnull=False)
    return InboundMessage.objects.filter(pk__in=mentioned.values("message_id"))
