from django.contrib import admin

from fbl.models import InboundMessage


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """Every message that arrived, as kept; unrecognised ones wait here for staff review."""

    list_display = [
        "received_at",
        "source",
        "kind",
        "status",
        "envelope_recipient",
        "size",
        "truncated",
        "times_received",
    ]
    list_filter = ["status", "kind", "source", "truncated"]
    date_hierarchy = "received_at"
    exclude = ["raw_gzip"]
    readonly_fields = [f.name for f in InboundMessage._meta.fields if f.name != "raw_gzip"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
