"""Admin for compliance staff: every inbound message as kept, the review queue of untrusted
reports (accept to act on them, or reject), and relay events."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from compliance.admin import ReadOnlyAdmin
from compliance.admin_scope import TenantScopedAdmin
from compliance.errors import ServiceError
from fbl import (
    admin_rates,  # noqa: F401  (registers the complaint-rate dashboard)
    services,
)
from fbl.models import InboundMessage, RelayEvent


@admin.register(InboundMessage)
class InboundMessageAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    """Unrecognised messages and untrusted reports wait here for staff review. Those of no
    tenant (the operator's own MTA, unbound keys) are for staff who see every tenant."""

    def has_change_permission(self, request, obj=None):
        # Every field stays read-only; the permission is what the review actions require.
        return self.in_scope(request, obj) and admin.ModelAdmin.has_change_permission(
            self, request, obj
        )

    list_display = [
        "received_at",
        "source",
        "tenant",
        "kind",
        "feedback_type",
        "status",
        "dkim_domain",
        "envelope_recipient",
        "size",
        "times_received",
    ]
    list_filter = ["status", "kind", "feedback_type", "source", "tenant", "truncated"]
    date_hierarchy = "received_at"
    exclude = ["raw_gzip", "parsed"]
    readonly_fields = [
        *(f.name for f in InboundMessage._meta.fields if f.name not in ("raw_gzip", "parsed")),
        "parsed_result",
        "message_text",
    ]
    actions = ["accept_reports", "reject_reports"]

    @admin.display(description="parsed")
    def parsed_result(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.parsed, indent=2, ensure_ascii=False))

    @admin.display(description="message as received")
    def message_text(self, obj):
        return format_html("<pre>{}</pre>", obj.raw()[:200_000].decode("utf-8", "replace"))

    def _review(self, request, queryset, verb):
        done, refused = 0, []
        for message in queryset:
            try:
                if verb == "accept":
                    services.accept(message, user=request.user)
                else:
                    services.reject(message, user=request.user)
                done += 1
            except ServiceError as exc:
                refused.append(str(exc))
        if done:
            self.message_user(request, f"{verb.title()}ed {done} report(s).", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    @admin.action(description="Accept the selected reports and act on them", permissions=["change"])
    def accept_reports(self, request, queryset):
        self._review(request, queryset, "accept")

    @admin.action(description="Reject the selected reports", permissions=["change"])
    def reject_reports(self, request, queryset):
        self._review(request, queryset, "reject")


@admin.register(RelayEvent)
class RelayEventAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    list_display = ["received_at", "source", "tenant", "kind", "outcome", "occurred_at"]
    list_filter = ["source", "tenant", "kind", "outcome"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in RelayEvent._meta.fields]
