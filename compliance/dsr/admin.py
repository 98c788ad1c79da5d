"""Staff work data-subject requests here: verify one with a note (how the requester showed control
of the address), extend its deadline with a reason, refuse it with a reason, carry it out, or
record that a rectification or restriction was done. Every action is a step in its history.
A verified access request's page links to its export as a ZIP of CSV files, one per kind of
record. Staff with the add permission open a request for someone who wrote or phoned; the
requester still proves control of the address through the link mailed to it."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from compliance.admin_scope import TenantScopedAdmin, limit_tenant_choices
from compliance.dsr import access, downloads, services
from compliance.dsr.models import DataSubjectRequest, RequestStep
from compliance.errors import ServiceError
from compliance.models import Tenant

Status = DataSubjectRequest.Status


class StepInline(admin.TabularInline):
    model = RequestStep
    fields = ["occurred_at", "step", "note", "actor_label", "via"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OpenRequestForm(forms.Form):
    address = forms.CharField(max_length=320, help_text="The requester's e-mail address.")
    kind = forms.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    tenant = forms.ModelChoiceField(
        Tenant.objects.all(), required=False, empty_label="Every tenant of the operator"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        limit_tenant_choices(self.fields["tenant"], user)


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    months = forms.IntegerField(min_value=1, max_value=2, required=False)


def _with_note(action: str, title: str, *, months: bool = False):
    """An admin action that asks for a note first, then calls `action(row, note, months, user)`."""

    def run(modeladmin, request, queryset):
        form = NoteForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            for row in queryset:
                try:
                    ACTIONS[action](
                        row,
                        form.cleaned_data["note"],
                        form.cleaned_data["months"] or 1,
                        request.user,
                    )
                except ServiceError as exc:
                    modeladmin.message_user(request, f"{row}: {exc.message}", messages.ERROR)
                else:
                    modeladmin.message_user(request, f"{row}: done", messages.SUCCESS)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "rows": queryset,
            "action": action,
            "asks_months": months,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/dsr/note_confirm.html", context)

    run.__name__ = action
    run.short_description = title
    # Each action changes the request (and carrying one out erases or suppresses).
    run.allowed_permissions = ("change",)
    return run


def _carry_out_now(row, note, months, user):
    if row.kind in (DataSubjectRequest.Kind.RECTIFICATION, DataSubjectRequest.Kind.RESTRICTION):
        if row.status not in (
            DataSubjectRequest.Status.VERIFIED,
            DataSubjectRequest.Status.IN_PROGRESS,
        ):
            raise ServiceError("verify the request first", code="not_verified")
        services.fulfil(row, note)
    else:
        services.carry_out(row)


ACTIONS = {
    "verify": lambda row, note, months, user: services.verify_by_staff(row, user=user, note=note),
    "extend": lambda row, note, months, user: services.extend(row, months=months, reason=note),
    "refuse": lambda row, note, months, user: services.refuse(row, reason=note),
    "carry_out": _carry_out_now,
}


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(TenantScopedAdmin, admin.ModelAdmin):
    list_display = ["__str__", "kind", "tenant", "status", "received_at", "due", "handled_by"]
    list_filter = ["status", "kind", "tenant"]
    date_hierarchy = "received_at"
    inlines = [StepInline]
    fields = [
        "kind",
        "tenant",
        "address",
        "status",
        "status_reason",
        "received_at",
        "due",
        "extended_by_months",
        "extension_reason",
        "verified_at",
        "fulfilled_at",
        "handled_by",
        "csv_bundle",
    ]
    readonly_fields = [f for f in fields if f != "handled_by"]
    actions = [
        _with_note("verify", "Verify (say how the requester showed control of the address)"),
        _with_note("extend", "Extend the deadline (give the reason)", months=True),
        _with_note("refuse", "Refuse (give the reason)"),
        _with_note("carry_out", "Carry out now (note what was done for rectification/restriction)"),
    ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OpenRequestForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                row = services.open_request(
                    address=data["address"], kind=data["kind"], tenant=data["tenant"]
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Opened {row}; the requester was mailed a link to verify the address.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:dsr_datasubjectrequest_change", args=[row.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Open a data-subject request",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/dsr/open_form.html", context)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        own = [
            path(
                "<int:pk>/export.zip",
                self.admin_site.admin_view(self.export_view),
                name="dsr_datasubjectrequest_export",
            )
        ]
        return own + super().get_urls()

    @admin.display(description="Export")
    def csv_bundle(self, obj):
        if obj is None or not access.is_releasable(obj):
            return "Only a verified access request has an export."
        url = reverse("admin:dsr_datasubjectrequest_export", args=[obj.pk])
        return format_html('<a href="{}">Download CSV bundle</a>', url)

    def export_view(self, request, pk: int):
        row = get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=pk)
        if not self.has_view_permission(request, row):
            raise PermissionDenied
        try:
            access.require_releasable(row)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect("admin:dsr_datasubjectrequest_change", row.pk)
        return downloads.zip_file(row, http_request=request, via="admin")
