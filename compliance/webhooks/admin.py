"""Downstream endpoints in the admin, and the dead letters staff can send again."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from compliance.admin import ReadOnlyAdmin
from compliance.admin_scope import TenantScopedAdmin
from compliance.errors import ServiceError
from compliance.webhooks import events
from compliance.webhooks.models import DeadLetter, DownstreamEndpoint, WebhookDelivery
from compliance.webhooks.services import endpoints


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="HTTPS.")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in events.TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = DownstreamEndpoint
        fields = ["url", "event_types", "tenant", "description", "is_active"]

    def clean_url(self):
        try:
            return endpoints.validate_url(self.cleaned_data["url"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_event_types(self):
        try:
            return endpoints.validate_event_types(self.cleaned_data["event_types"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(DownstreamEndpoint)
class DownstreamEndpointAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = EndpointForm
    list_display = ["url", "tenant", "types", "is_active", "created_at"]
    list_filter = ["is_active", "tenant"]
    readonly_fields = ["signing_secret", "created_at"]
    actions = ["new_secret"]

    @admin.display(description="events")
    def types(self, obj):
        return ", ".join(obj.event_types)

    @admin.display(description="signing secret")
    def signing_secret(self, obj):
        if not obj.pk:
            return "Made when the endpoint is saved."
        return format_html("<code>{}</code>", obj.secret)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = endpoints.add_endpoint(
            url=obj.url,
            event_types=obj.event_types,
            tenant=obj.tenant,
            description=obj.description,
        )
        obj.pk = created.pk
        obj.secret = created.secret

    @admin.action(description="Replace the signing secret", permissions=["change"])
    def new_secret(self, request, queryset):
        for endpoint in queryset:
            endpoints.new_secret(endpoint)
        self.message_user(request, f"New secrets for {queryset.count()} endpoint(s).")


class DeliveryColumns:
    list_display = [
        "event_type",
        "event_public_id",
        "endpoint",
        "status",
        "attempts",
        "last_attempt_at",
        "last_result",
    ]
    list_select_related = ["event", "endpoint"]

    @admin.display(description="event")
    def event_type(self, obj):
        return obj.event.event_type

    @admin.display(description="webhook-id")
    def event_public_id(self, obj):
        return obj.event.public_id

    @admin.display(description="last result")
    def last_result(self, obj):
        return obj.last_error or (f"HTTP {obj.last_status_code}" if obj.last_status_code else "")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin, DeliveryColumns, ReadOnlyAdmin):
    tenant_path = "endpoint__tenant"
    list_filter = ["status", "endpoint"]
    actions = ["retry"]

    def has_retry_permission(self, request):
        # Every field stays read-only; sending again needs the change permission.
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Send again from the first try", permissions=["retry"])
    def retry(self, request, queryset):
        count = endpoints.retry(queryset)
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


@admin.register(DeadLetter)
class DeadLetterAdmin(TenantScopedAdmin, DeliveryColumns, ReadOnlyAdmin):
    tenant_path = "endpoint__tenant"
    list_filter = ["endpoint"]
    actions = ["retry"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=WebhookDelivery.Status.DEAD)

    def has_retry_permission(self, request):
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Retry", permissions=["retry"])
    def retry(self, request, queryset):
        count = endpoints.retry(queryset)
        self.message_user(request, f"{count} dead letters queued again.", messages.SUCCESS)
