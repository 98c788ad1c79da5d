"""The admin lists behind the dashboard's figures: changelist URLs with the filters that list
exactly the rows a figure counts."""

from __future__ import annotations

import datetime

from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from compliance.dashboard.selectors import Scope
from compliance.dsr.models import DataSubjectRequest
from compliance.models import OptOutRequest

# A figure of every tenant in the user's scope, as opposed to one tenant's (or the shared one).
EVERY_TENANT = object()

# The opt-outs whose time to apply is counted: all but imports (dashboard.sources).
TIMED_CHANNELS = ",".join(
    c for c in OptOutRequest.Channel.values if c != OptOutRequest.Channel.IMPORT
)
OPEN_REQUESTS = ",".join(DataSubjectRequest.OPEN)


def changelist(model: type[Model], **params) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    query = urlencode({name: value for name, value in params.items() if value is not None})
    return f"{url}?{query}" if query else url


def tenant_params(scope: Scope, tenant_id=EVERY_TENANT) -> dict[str, str]:
    """Filters for one tenant's rows (None: the shared ones), or for every tenant the user
    sees (nothing, when the user is not limited to tenants)."""
    if tenant_id is EVERY_TENANT:
        if not scope.limited:
            return {}
        # No tenant has id 0: a user limited to no tenant gets an empty list.
        return {"tenant__id__in": ",".join(str(i) for i in sorted(scope.tenant_ids)) or "0"}
    if tenant_id is None:
        return {"tenant__isnull": "True"}
    return {"tenant__id__exact": str(tenant_id)}


def day_params(field: str, since: datetime.date, until: datetime.date) -> dict[str, str]:
    """Rows whose `field` falls on `since` to `until` (UTC days, both included)."""
    if since == until:
        return {f"{field}__date": since.isoformat()}
    return {f"{field}__date__gte": since.isoformat(), f"{field}__date__lte": until.isoformat()}


def complaint_rates(by: str, tenant_slug: str | None = None) -> str:
    """fbl's complaint-rate page (its last 30 days), grouped by `by`, for one tenant or all."""
    url = reverse("admin:fbl_dailycount_changelist")
    return url + "?" + urlencode({"by": by, **({"tenant": tenant_slug} if tenant_slug else {})})


def sending_domains(scope: Scope, verdict: str) -> str | None:
    """The sending domains whose latest check gave `verdict` (the list's `latest_verdict`
    annotation, compliance.domains.selectors.with_latest_check), or None without the domain
    checks installed."""
    try:
        url = reverse("admin:domains_sendingdomain_changelist")
    except NoReverseMatch:
        return None
    return url + "?" + urlencode({"latest_verdict": verdict, **tenant_params(scope)})


def sending_domain(pk: int) -> str | None:
    """One sending domain's page, with its latest check and its history."""
    try:
        return reverse("admin:domains_sendingdomain_change", args=[pk])
    except NoReverseMatch:
        return None
