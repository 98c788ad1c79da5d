from django.contrib import admin

from compliance.admin_scope import TenantScopedAdmin
from unsubscribe.models import UnsubscribeRequest


@admin.register(UnsubscribeRequest)
class UnsubscribeRequestAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """Evidence of recipients' opt-outs: read-only."""

    list_display = [
        "received_at",
        "channel",
        "tenant",
        "stream",
        "topic",
        "scope_label",
        "applied_at",
        "ip",
    ]
    list_filter = ["channel", "tenant", "breadth"]
    date_hierarchy = "received_at"
    exclude = ["address"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
