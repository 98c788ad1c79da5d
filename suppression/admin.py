"""Admin for compliance staff: search by address, filters, history, lift with a reason, imports."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from compliance import staff_scope
from compliance.admin_scope import TenantScopedAdmin, limit_tenant_choices
from compliance.errors import ServiceError
from compliance.models import Tenant
from suppression import import_formats, services
from suppression.models import (
    WITHHELD,
    ImportJob,
    Origin,
    Reason,
    Suppression,
    SuppressionEvent,
)
from suppression.scopes import parse_scope


class SuppressionEventInline(admin.TabularInline):
    model = SuppressionEvent
    fields = [
        "occurred_at",
        "action",
        "reason",
        "origin",
        "actor_label",
        "via",
        "note",
        "evidence_note",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("lifted", "Lifted"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        from django.utils import timezone

        from suppression.models import active_q

        if self.value() == "active":
            return queryset.filter(active_q())
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(lifted_at__isnull=True, expires_at__lte=timezone.now())
        return queryset


class SuppressionAddForm(forms.Form):
    address = forms.CharField(max_length=320)
    tenant = forms.ModelChoiceField(
        Tenant.objects.all(), required=False, empty_label="Shared by all tenants"
    )
    scope = forms.CharField(
        required=False,
        help_text="global, commercial, stream:SLUG or "
        "topic:STREAM/SLUG; empty takes the reason's default",
    )
    reason = forms.ChoiceField(choices=Reason.choices)
    note = forms.CharField(max_length=500, help_text="Why, for the history.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        limit_tenant_choices(self.fields["tenant"], user)


class LiftForm(forms.Form):
    note = forms.CharField(
        label="Reason for lifting",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the history of each entry.",
    )


@admin.register(Suppression)
class SuppressionAdmin(TenantScopedAdmin, admin.ModelAdmin):
    """Staff limited to tenants see their tenants' entries and the shared ones, as a tenant's
    API key does: a shared entry shows that the address is blocked and why, never its plain
    address, evidence or history (DESIGN.md, Tenants), and only staff who see every tenant
    lift it."""

    shared_rows_visible = True
    list_display = [
        "shown_address",
        "tenant",
        "scope_shown",
        "reason",
        "origin",
        "created_at",
        "state",
    ]
    list_filter = [ActiveFilter, "reason", "scope", "origin", "tenant", "created_at"]
    search_fields = ["address"]
    search_help_text = "An address, in any case or form: it is normalised and matched by hash."
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "stream", "topic__stream"]
    inlines = [SuppressionEventInline]
    actions = ["lift_selected"]
    readonly_fields = [
        "shown_address",
        "hash_hex",
        "tenant",
        "scope_shown",
        "reason",
        "origin",
        "evidence_note",
        "created_at",
        "updated_at",
        "expires_at",
        "lifted_at",
    ]
    fields = readonly_fields

    @admin.display(description="address", ordering="address")
    def shown_address(self, obj):
        if getattr(obj, "withheld", False):
            return WITHHELD
        return obj.address or "[erased]"

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if staff_scope.tenant_ids_for(request.user) is None:
            return rows
        return rows.annotate(
            withheld=ExpressionWrapper(Q(tenant__isnull=True), output_field=BooleanField())
        )

    def get_fields(self, request, obj=None):
        if self.is_shared(request, obj):
            return [f for f in self.fields if f != "evidence_note"]
        return super().get_fields(request, obj)

    def get_inlines(self, request, obj):
        # The history names who reported what: evidence a tenant never sees of a shared entry.
        return [] if self.is_shared(request, obj) else super().get_inlines(request, obj)

    @admin.display(description="hash")
    def hash_hex(self, obj):
        return bytes(obj.address_hash).hex()

    @admin.display(description="scope")
    def scope_shown(self, obj):
        return obj.scope_label

    @admin.display(description="state")
    def state(self, obj):
        return "active" if obj.is_active else ("lifted" if obj.lifted_at else "expired")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            digest = services.normalise_and_hash(term)[1]
        except ServiceError:
            # Not a whole address: fall back to a substring match on stored addresses, of
            # the user's tenants only (a shared entry's address is not theirs to search).
            matches = queryset.filter(address__icontains=term.lower())
            if staff_scope.tenant_ids_for(request.user) is not None:
                matches = matches.exclude(tenant__isnull=True)
            return matches, False
        return queryset.filter(address_hash=digest), False

    def has_change_permission(self, request, obj=None):
        # Entries change only through add and lift, which keep the history.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise DjangoPermissionDenied
        form = SuppressionAddForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                outcome = services.suppress(
                    target=parse_scope(data["tenant"], data["scope"], reason=data["reason"]),
                    address=data["address"],
                    reason=data["reason"],
                    origin=Origin.STAFF,
                    evidence=request.user,
                    evidence_note=data["note"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                verb = "Added" if outcome.changed else "Already listed:"
                self.message_user(request, f"{verb} {outcome.suppression}", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:suppression_suppression_change", args=[outcome.suppression.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a suppression",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/suppression/add_form.html", context)

    @admin.action(
        description="Lift selected suppressions (asks for a reason)", permissions=["change"]
    )
    def lift_selected(self, request, queryset):
        form = LiftForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            lifted, refused = 0, []
            for row in queryset:
                try:
                    services.lift(
                        suppression=row, note=form.cleaned_data["note"], user=request.user
                    )
                    lifted += 1
                except ServiceError as exc:
                    refused.append(f"{row}: {exc.message}")
            if lifted:
                self.message_user(request, f"Lifted {lifted} suppression(s).", messages.SUCCESS)
            for message in refused:
                self.message_user(request, message, messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Lift suppressions",
            "form": form,
            "rows": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/suppression/lift_confirm.html", context)


class ImportUploadForm(forms.Form):
    file = forms.FileField()
    format = forms.ChoiceField(
        required=False,
        choices=[("", "Recognise from the header row")]
        + [(name, fmt.label) for name, fmt in import_formats.FORMATS.items()],
    )
    tenant = forms.ModelChoiceField(
        Tenant.objects.all(), required=False, empty_label="Shared by all tenants"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        limit_tenant_choices(self.fields["tenant"], user)


@admin.register(ImportJob)
class ImportJobAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "tenant",
        "format_name",
        "status",
        "progress",
        "rows_added",
        "rows_existing",
        "rows_bad",
        "created_at",
    ]
    list_filter = ["status", "format_name"]
    readonly_fields = [
        "tenant",
        "format_name",
        "filename",
        "status",
        "progress",
        "rows_total",
        "rows_done",
        "rows_added",
        "rows_existing",
        "rows_bad",
        "bad_rows",
        "message",
        "created_by_label",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields

    @admin.display(description="progress")
    def progress(self, obj):
        return format_html(
            '<progress value="{}" max="100">{}%</progress> {}%',
            obj.percent,
            obj.percent,
            obj.percent,
        )

    @admin.display(description="bad rows")
    def bad_rows(self, obj):
        lines = [f"line {e['line']}: {e['error']} ({e['email']})" for e in obj.errors[:200]]
        return format_html("<pre>{}</pre>", "\n".join(lines)) if lines else "none"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        running = job is not None and job.status in (
            ImportJob.Status.QUEUED,
            ImportJob.Status.RUNNING,
        )
        extra_context = {**(extra_context or {}), "refresh_seconds": 2 if running else None}
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise DjangoPermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = services.queue_import(
                    content=upload.read(),
                    filename=upload.name,
                    format_name=form.cleaned_data["format"] or None,
                    tenant=form.cleaned_data["tenant"],
                )
            except ServiceError as exc:
                form.add_error("file", exc.message)
            else:
                self.message_user(
                    request,
                    f"Import #{job.pk} queued ({job.format_name}, {job.rows_total} rows).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:suppression_importjob_change", args=[job.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a suppression list",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/suppression/import_form.html", context)
