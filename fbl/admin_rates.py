"""Admin for compliance staff: the complaint-rate dashboard, the alerts raised, delivery batches.

"Complaint rates" in the admin index opens the dashboard: the last 30 days per tenant, stream,
campaign or mailbox provider, with the warning and alert lines marked. Staff limited to tenants
see only those tenants' mail.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from compliance import staff_scope
from compliance.admin import ReadOnlyAdmin
from compliance.admin_scope import TenantScopedAdmin
from fbl import rates as rules
from fbl import selectors
from fbl.models import DailyCount, DeliveryBatch, RateAlert

DAYS = 30

GROUPING_LABELS = {
    "tenant": "Tenant",
    "stream": "Stream",
    "campaign": "Campaign",
    "provider": "Mailbox provider",
}
LEVEL_FILTERS = {"": "All", "warning": "Over the warning line", "alert": "Over the alert line"}
MARKERS = {
    "alert": ("rate-alert", "ALERT"),
    "warning": ("rate-warning", "WARNING"),
    "ok": ("rate-ok", "ok"),
    "too_few": ("rate-too-few", "too few to judge"),
}


def marker(level: str):
    css, text = MARKERS[level]
    return format_html('<span class="rate-marker {}">{}</span>', css, text)


@admin.register(DailyCount)
class DailyCountAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    """The dashboard in place of a list of raw counts."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        by = request.GET.get("by", "tenant")
        if by not in selectors.GROUPINGS:
            by = "tenant"
        over = request.GET.get("over", "")
        if over not in LEVEL_FILTERS:
            over = ""
        tenants = list(staff_scope.tenants_for(request.user).order_by("slug"))
        tenant = next((t for t in tenants if t.slug == request.GET.get("tenant")), None)
        tenant_ids = staff_scope.tenant_ids_for(request.user) if tenant is None else None

        until = timezone.localdate()
        since = until - timedelta(days=DAYS - 1)
        dimensions = selectors.GROUPINGS[by]
        daily = selectors.rates(
            since, until, dimensions, per_day=True, tenant=tenant, tenant_ids=tenant_ids
        )
        totals = selectors.rates(since, until, dimensions, tenant=tenant, tenant_ids=tenant_ids)

        bad_days: dict[str, dict[str, int]] = {}
        for row in daily:
            if row.level in ("warning", "alert"):
                counted = bad_days.setdefault(row.label, {"warning": 0, "alert": 0})
                counted[row.level] += 1

        def shown(rows):
            if over:
                rows = [r for r in rows if rules.SEVERITY[r.level] >= rules.SEVERITY[over]]
            return [
                {
                    "row": r,
                    "marker": marker(r.level),
                    "warning_days": bad_days.get(r.label, {}).get("warning", 0),
                    "alert_days": bad_days.get(r.label, {}).get("alert", 0),
                }
                for r in rows
            ]

        totals.sort(key=lambda r: (-rules.SEVERITY[r.level], -(r.rate or 0), r.label))
        judge = selectors.thresholds()
        query = {"by": by, "over": over, "tenant": tenant.slug if tenant else ""}
        context = {
            **self.admin_site.each_context(request),
            "title": "Complaint rates",
            "opts": self.model._meta,
            "since": since,
            "until": until,
            "days": DAYS,
            "by": by,
            "by_label": GROUPING_LABELS[by],
            "over": over,
            "tenant": tenant,
            "tenants": tenants,
            "grouping_links": [
                (value, text, _query(query, by=value)) for value, text in GROUPING_LABELS.items()
            ],
            "level_links": [
                (value, text, _query(query, over=value)) for value, text in LEVEL_FILTERS.items()
            ],
            "tenant_links": [("", "All tenants", _query(query, tenant=""))]
            + [(t.slug, t.slug, _query(query, tenant=t.slug)) for t in tenants],
            "selected_tenant": tenant.slug if tenant else "",
            "totals": shown(totals),
            "daily": shown(daily),
            "warning_line": rules.percent(judge.warning),
            "alert_line": rules.percent(judge.alert),
            "minimum_deliveries": judge.minimum_deliveries,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/fbl/complaint_rates.html", context)


def _query(current: dict, **change) -> str:
    values = {**current, **change}
    return "?" + urlencode({k: v for k, v in values.items() if v})


@admin.register(RateAlert)
class RateAlertAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    """Every complaint rate that crossed a line, as raised and mailed to staff."""

    list_display = [
        "day",
        "shown_level",
        "grouping",
        "group",
        "shown_rate",
        "complaints",
        "deliveries",
        "created",
        "notified_at",
    ]
    list_filter = ["level", "grouping", "tenant"]
    date_hierarchy = "day"
    list_select_related = ["tenant", "stream"]

    @admin.display(description="level", ordering="level")
    def shown_level(self, obj):
        return marker(obj.level)

    @admin.display(description="group")
    def group(self, obj):
        return selectors.label(
            selectors.GROUPINGS[obj.grouping],
            obj.tenant,
            obj.stream,
            obj.campaign,
            obj.provider,
        )

    @admin.display(description="rate", ordering="rate")
    def shown_rate(self, obj):
        return rules.percent(obj.rate)


@admin.register(DeliveryBatch)
class DeliveryBatchAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    """Delivery totals relays posted to /api/v1/delivery-counts, by batch id."""

    list_display = ["batch_id", "tenant", "stream", "campaign", "day", "deliveries", "received_at"]
    list_filter = ["tenant"]
    search_fields = ["batch_id"]
    date_hierarchy = "day"
