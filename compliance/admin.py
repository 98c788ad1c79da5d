"""Admin for compliance staff: tenants, streams, topics, API keys, the audit trail, opt-outs
with their deadlines, and staff users with the tenants they are limited to."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.html import format_html

from compliance import deadline_selectors, deadlines, services, staff_scope
from compliance.admin_scope import OperatorOnlyAdmin, TenantScopedAdmin
from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.models import (
    ApiKey,
    AuditEvent,
    OptOutRequest,
    SendingIdentity,
    StaffTenant,
    Stream,
    Tenant,
    Topic,
)


class StreamInline(admin.TabularInline):
    model = Stream
    extra = 0
    fields = ["slug", "name", "kind"]


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin, admin.ModelAdmin):
    # The form shows every field, the deadlines' time zone, business days and hours included;
    # the model refuses a time zone that does not exist, which the form shows as its error.
    tenant_path = "pk"
    list_display = ["slug", "name", "jurisdiction", "time_zone", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [StreamInline]

    # Which tenants exist is the operator's to decide, not a tenant's staff's.
    def has_add_permission(self, request):
        every = staff_scope.tenant_ids_for(request.user) is staff_scope.EVERY_TENANT
        return every and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        every = staff_scope.tenant_ids_for(request.user) is staff_scope.EVERY_TENANT
        return every and super().has_delete_permission(request, obj)


class TopicInline(admin.TabularInline):
    model = Topic
    extra = 0
    fields = ["slug", "name", "description", "position", "is_active"]


@admin.register(Stream)
class StreamAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ["slug", "name", "tenant", "kind"]
    list_filter = ["kind", "tenant"]
    search_fields = ["slug", "name"]
    inlines = [TopicInline]


@admin.register(Topic)
class TopicAdmin(TenantScopedAdmin, admin.ModelAdmin):
    tenant_path = "stream__tenant"
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
class ApiKeyAdmin(TenantScopedAdmin, admin.ModelAdmin):
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
            fields = ["name", "permissions", "tenant", "operator_level"]
        else:
            fields = ["name", "operator_level", *self.readonly_fields]
        if staff_scope.tenant_ids_for(request.user) is not None:
            # An operator-level key's hard bounces reach every tenant: not a tenant's to mark.
            fields.remove("operator_level")
        return fields

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

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            services.revoke_api_key(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """Every tenant's changes and reads, with no tenant column to limit them by: for staff who
    see every tenant."""

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
class SendingIdentityAdmin(TenantScopedAdmin, admin.ModelAdmin):
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


class DeadlineFilter(admin.SimpleListFilter):
    """Opt-outs by where they stand against their deadlines, by queries on the stored due
    times (compliance.deadline_selectors). "Past the 48-hour target" includes overdue ones."""

    title = "deadline"
    parameter_name = "deadline"
    OPEN_VIEWS = ("open", "due_soon", "past_target", "overdue", "late", "due_today", "due_week")

    def lookups(self, request, model_admin):
        return [
            ("open", "open"),
            ("due_soon", "due soon"),
            ("past_target", "past the 48-hour target"),
            ("overdue", "overdue"),
            ("late", "late (past either deadline)"),
            ("due_today", "due today"),
            ("due_week", "due this week, not today"),
            ("propagated", "propagated"),
            ("within_target", "propagated within the 48-hour target"),
            ("within_can_spam", "propagated within the CAN-SPAM deadline"),
        ]

    def queryset(self, request, queryset):
        now = deadlines._now()
        match self.value():
            case "open":
                return queryset.filter(propagated_at__isnull=True)
            case "due_soon":
                days = deadline_selectors.warn_business_days()
                return queryset.filter(deadline_selectors.due_soon(now, days))
            case "past_target":
                return queryset.filter(deadline_selectors.past_target(now))
            case "overdue":
                return queryset.filter(deadline_selectors.overdue(now))
            case "late":
                return queryset.filter(deadline_selectors.late(now))
            case "due_today":
                return queryset.filter(deadline_selectors.due_today(now))
            case "due_week":
                return queryset.filter(deadline_selectors.due_this_week(now))
            case "propagated":
                return queryset.filter(propagated_at__isnull=False)
            case "within_target":
                return queryset.filter(deadline_selectors.stopped_within_target())
            case "within_can_spam":
                return queryset.filter(deadline_selectors.stopped_within_can_spam())
        return queryset


@admin.register(OptOutRequest)
class OptOutRequestAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    list_display = [
        "received_at",
        "channel",
        "tenant",
        "scope_label",
        "applied_at",
        "propagated_at",
        "target_due",
        "can_spam_due",
        "deadline",
    ]
    list_filter = [DeadlineFilter, "channel", "tenant"]
    list_select_related = ["tenant"]
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-id"]

    def get_ordering(self, request):
        # Open opt-outs: the most urgent first (the partial index `optout_open_by_due` is in
        # this order); everything else: the newest first.
        if request.GET.get(DeadlineFilter.parameter_name) in DeadlineFilter.OPEN_VIEWS:
            return ["can_spam_due_at", "received_at", "id"]
        return super().get_ordering(request)

    @admin.display(description="48-hour due", ordering="provider_due_at")
    def target_due(self, obj):
        return obj.provider_due_at

    @admin.display(description="CAN-SPAM due", ordering="can_spam_due_at")
    def can_spam_due(self, obj):
        return obj.can_spam_due_at

    @admin.display(description="deadline")
    def deadline(self, obj):
        if obj.propagated_at is not None:
            if obj.can_spam_due_at is not None and obj.propagated_at > obj.can_spam_due_at:
                return "propagated after the CAN-SPAM deadline"
            return "propagated"
        state = deadline_selectors.state_of(
            obj, now=deadlines._now(), business_days=deadline_selectors.warn_business_days()
        )
        if state is None:
            return "-"
        if state >= deadlines.OptOutState.TARGET_MISSED:
            return format_html("<strong>{}</strong>", state.label)
        return state.label


class StaffTenantInline(admin.TabularInline):
    model = StaffTenant
    fk_name = "user"
    fields = ["tenant"]
    extra = 0
    verbose_name = "tenant this user is limited to"
    verbose_name_plural = "Tenants this user is limited to (none: every tenant)"


# Staff users and groups: only for staff who see every tenant (a tenant-limited user who could
# edit users could widen themselves). A user's page shows the tenants they are limited to.
User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class StaffUserAdmin(OperatorOnlyAdmin, UserAdmin):
    inlines = [*UserAdmin.inlines, StaffTenantInline]


@admin.register(Group)
class StaffGroupAdmin(OperatorOnlyAdmin, GroupAdmin):
    pass
