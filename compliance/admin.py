"""Admin for compliance staff: tenants, streams, topics, API keys and the audit trail."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from compliance import services
from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.models import (
    ApiKey,
    AuditEvent,
    OptOutRequest,
    SendingIdentity,
    Stream,
    Tenant,
    Topic,
)


class StreamInline(admin.TabularInline):
    model = Stream
    extra = 0
    fields = ["slug", "name", "kind"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "jurisdiction", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [StreamInline]


class TopicInline(admin.TabularInline):
    model = Topic
    extra = 0
    fields = ["slug", "name", "description", "position", "is_active"]


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tenant", "kind"]
    list_filter = ["kind", "tenant"]
    search_fields = ["slug", "name"]
    inlines = [TopicInline]


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "stream", "position", "is_active"]
    list_filter = ["is_active", "stream__tenant"]
    search_fields = ["slug", "name"]


class ApiKeyCreationForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        choices=KeyPermission.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "permissions", "tenant", "operator_level"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "tenant",
        "operator_level",
        "permission_list",
        "created_at",
        "last_used_at",
        "state",
    ]
    list_filter = ["tenant", "operator_level", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = [
        "prefix",
        "permissions",
        "tenant",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke_selected"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "permissions", "tenant", "operator_level"]
        return ["name", "operator_level", *self.readonly_fields]

    def has_delete_permission(self, request, obj=None):
        # Keys are revoked, not deleted, so the audit trail can still name them.
        return False

    @admin.display(description="permissions")
    def permission_list(self, obj):
        return ", ".join(obj.permissions)

    @admin.display(description="state")
    def state(self, obj):
        return "active" if obj.is_active else format_html("<strong>revoked</strong>")

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "operator_level"])
            return
        try:
            api_key, plain = services.issue_api_key(
                name=form.cleaned_data["name"],
                permissions=form.cleaned_data["permissions"],
                tenant=form.cleaned_data["tenant"],
                operator_level=form.cleaned_data.get("operator_level", False),
                created_by=request.user,
            )
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc
        obj.pk = api_key.pk
        obj.__dict__.update(api_key.__dict__)
        # Shown once: only its hash is kept.
        messages.warning(
            request,
            format_html(
                "New API key for {}: <code class='new-api-key'>{}</code> "
                "Copy it now; it will not be shown again.",
                api_key.name,
                plain,
            ),
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            services.revoke_api_key(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "actor_label", "via", "action", "model", "object_repr"]
    list_filter = ["action", "via", "model"]
    search_fields = ["actor_label", "object_repr", "object_pk"]
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SendingIdentity)
class SendingIdentityAdmin(admin.ModelAdmin):
    list_display = ["pattern", "tenant", "stream"]
    list_filter = ["tenant"]
    search_fields = ["pattern"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OptOutRequest)
class OptOutRequestAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "channel", "tenant", "scope_label", "applied_at"]
    list_filter = ["channel", "tenant"]
    date_hierarchy = "received_at"

