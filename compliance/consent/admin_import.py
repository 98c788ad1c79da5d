"""The admin page for importing consent records from CSV (staff with the right to add records).

The import runs in the request: fine for the files staff upload by hand; a large export goes
through `manage.py import_consents`, which shows its progress.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from compliance import audit
from compliance.admin_scope import limit_tenant_choices
from compliance.consent import importing
from compliance.errors import ServiceError
from compliance.models import Tenant

SHOWN_ERRORS = 200


class ConsentImportForm(forms.Form):
    file = forms.FileField(help_text=f"CSV with a header; columns: {', '.join(importing.COLUMNS)}")
    tenant = forms.ModelChoiceField(Tenant.objects.all(), empty_label=None)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        limit_tenant_choices(self.fields["tenant"], user)


def upload(request):
    if not request.user.has_perm("consent.add_consentrecord"):
        raise PermissionDenied
    form = ConsentImportForm(request.POST or None, request.FILES or None, user=request.user)
    outcome = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            form.add_error("file", f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes")
        else:
            actor = audit.Actor(
                label=f"admin:{request.user.get_username()}", via="admin", user_id=request.user.pk
            )
            try:
                with audit.acting_as(actor):
                    outcome = importing.import_consents(
                        source=upload.file, tenant=form.cleaned_data["tenant"]
                    )
            except ServiceError as exc:
                form.add_error("file", exc.message)
    context = {
        **admin.site.each_context(request),
        "title": "Import consent records",
        "form": form,
        "outcome": outcome,
        "errors_shown": outcome.errors[:SHOWN_ERRORS] if outcome else [],
    }
    return TemplateResponse(request, "admin/consent/import_form.html", context)
