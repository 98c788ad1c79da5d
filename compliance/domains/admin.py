"""Sending domains in the admin: each with its latest verdict, a "Check now" action and button,
and the history of its checks (read only). Staff limited to tenants see their tenants' domains,
not the operator's own (no tenant)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from compliance.admin import ReadOnlyAdmin
from compliance.admin_scope import TenantScopedAdmin
from compliance.domains import checks, selectors, services
from compliance.domains.models import DomainCheck, SendingDomain


class SelectorsField(forms.CharField):
    """DKIM selectors typed as text ("s1, google"), kept as a list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        try:
            found = [checks.normalise_selector(s) for s in text.replace(",", " ").split()]
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return list(dict.fromkeys(found))


class SendingDomainForm(forms.ModelForm):
    dkim_selectors = SelectorsField(
        required=False,
        label="DKIM selectors",
        help_text="The DKIM selectors its mail is signed with (the s= of its DKIM-Signature), "
        "separated by commas or spaces: keys are found only by selector.",
    )

    class Meta:
        model = SendingDomain
        fields = ["domain", "dkim_selectors", "tenant"]

    def clean_domain(self):
        try:
            return checks.normalise_domain(self.cleaned_data["domain"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


def _checks_table(check: DomainCheck | None):
    if check is None:
        return "Not checked yet."
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((row["name"], row["status"], row["message"]) for row in check.checks),
    )
    return format_html(
        "<p>{} at {}</p><table><thead><tr><th>check</th><th>status</th>"
        "<th>message</th></tr></thead><tbody>{}</tbody></table>",
        check.verdict,
        localtime(check.checked_at).strftime("%Y-%m-%d %H:%M %Z"),
        rows,
    )


@admin.register(SendingDomain)
class SendingDomainAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = SendingDomainForm
    list_display = ["domain", "tenant", "selectors", "last_verdict", "last_checked_at"]
    list_filter = ["tenant"]
    search_fields = ["domain"]
    readonly_fields = ["latest_check", "history", "created_at"]
    actions = ["check_selected"]

    def get_queryset(self, request):
        return selectors.with_latest_check(super().get_queryset(request).select_related("tenant"))

    def get_fields(self, request, obj=None):
        fields = ["domain", "dkim_selectors", "tenant"]
        return fields if obj is None else [*fields, "latest_check", "history", "created_at"]

    @admin.display(description="DKIM selectors")
    def selectors(self, obj):
        return ", ".join(obj.dkim_selectors) or "none"

    @admin.display(description="last verdict", ordering="latest_verdict")
    def last_verdict(self, obj):
        return obj.latest_verdict or "not checked"

    @admin.display(description="last checked", ordering="latest_checked_at")
    def last_checked_at(self, obj):
        return obj.latest_checked_at

    @admin.display(description="latest check")
    def latest_check(self, obj):
        return _checks_table(DomainCheck.objects.filter(pk=obj.latest_id).first())

    @admin.display(description="history")
    def history(self, obj):
        url = reverse("admin:domains_domaincheck_changelist") + f"?domain__id__exact={obj.pk}"
        return format_html('<a href="{}">Every check of {}</a>', url, obj.domain)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/check/",
                self.admin_site.admin_view(self.check_view),
                name="domains_sendingdomain_check",
            )
        ]
        return own + super().get_urls()

    def _check(self, request, domain: SendingDomain) -> None:
        check = services.check_now(domain)
        level = {"pass": messages.SUCCESS, "warn": messages.WARNING}.get(
            check.verdict, messages.ERROR
        )
        self.message_user(request, f"Checked {domain.domain}: {check.verdict}", level)

    @admin.action(description="Check now", permissions=["change"])
    def check_selected(self, request, queryset):
        for domain in queryset:
            self._check(request, domain)

    def check_view(self, request, pk: int):
        """The "Check now" button of a domain's page (POST only: a check writes history)."""
        domain = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, domain):
            raise PermissionDenied
        self._check(request, domain)
        return redirect("admin:domains_sendingdomain_change", domain.pk)


@admin.register(DomainCheck)
class DomainCheckAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    tenant_path = "domain__tenant"
    list_display = ["domain", "checked_at", "verdict"]
    list_filter = ["verdict", "domain"]
    list_select_related = ["domain"]
    date_hierarchy = "checked_at"
    fields = ["domain", "checked_at", "verdict", "table"]
    readonly_fields = fields

    @admin.display(description="checks")
    def table(self, obj):
        return _checks_table(obj)
