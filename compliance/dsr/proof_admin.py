"""`/admin/proof/?address=A[&tenant=SLUG]`: the proof timeline for staff, and its CSV and PDF.
Every view and download is recorded in the audit trail (`audit.record_access`). Staff limited to
tenants ask for one of theirs and see what its API key would (its rows and the shared ones)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from compliance import audit
from compliance.admin_scope import limit_tenant_choices
from compliance.dsr import proof, proof_files
from compliance.errors import ServiceError
from compliance.models import Tenant

PERMISSION = "dsr.view_datasubjectrequest"


class ProofForm(forms.Form):
    address = forms.CharField(max_length=320)
    tenant = forms.ModelChoiceField(
        Tenant.objects.all(),
        required=False,
        to_field_name="slug",
        empty_label="every tenant",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        limit_tenant_choices(self.fields["tenant"], user)


def _proof(request) -> tuple[ProofForm, proof.Proof | None]:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = ProofForm(request.GET if "address" in request.GET else None, user=request.user)
    if not form.is_valid():
        return form, None
    tenant = form.cleaned_data["tenant"]
    try:
        found = proof.proof_of(form.cleaned_data["address"], tenant=tenant)
    except ServiceError as exc:
        form.add_error("address", exc.message)
        return form, None
    return form, found


def page(request):
    form, found = _proof(request)
    if found is not None:
        audit.record_access(audit.PROOF_PAGE, found.address_hash, tenant=found.tenant)
    context = {
        **admin.site.each_context(request),
        "title": "Proof of compliance",
        "form": form,
        "proof": found,
        "query": request.GET.urlencode(),
    }
    return TemplateResponse(request, "admin/dsr/proof.html", context)


def _download(request, what: str, content_type: str, extension: str, render):
    form, found = _proof(request)
    if found is None:
        return HttpResponse("give a valid address", status=400, content_type="text/plain")
    audit.record_access(what, found.address_hash, tenant=found.tenant)
    name = f"proof-{found.address_hash.hex()[:12]}.{extension}"
    return HttpResponse(
        render(found),
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def download_csv(request):
    return _download(request, audit.PROOF_CSV, "text/csv; charset=utf-8", "csv", proof_files.to_csv)


def download_pdf(request):
    return _download(
        request,
        audit.PROOF_PDF,
        "application/pdf",
        "pdf",
        lambda found: proof_files.to_pdf(found, generated_at=timezone.now()),
    )
