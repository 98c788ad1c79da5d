"""An access export as a file to download: the JSON, or the ZIP of CSV files. Each download is
recorded in the audit trail with who fetched it and from where."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, JsonResponse

from compliance import audit
from compliance.dsr import access, bundle
from compliance.dsr.models import DataSubjectRequest


def _attachment(response: HttpResponse, name: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def json_file(dsr: DataSubjectRequest, *, http_request, via: str) -> HttpResponse:
    export = access.export_of(dsr)
    audit.record_access(
        audit.ACCESS_EXPORT,
        dsr.address_hash,
        tenant=dsr.tenant,
        detail={"request": dsr.pk, "form": "json", "via": via},
        request=http_request,
    )
    response = JsonResponse(export, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2})
    return _attachment(response, f"data-subject-request-{dsr.pk}.json")


def zip_file(dsr: DataSubjectRequest, *, http_request, via: str) -> HttpResponse:
    export = access.export_of(dsr)
    audit.record_access(
        audit.ACCESS_EXPORT,
        dsr.address_hash,
        tenant=dsr.tenant,
        detail={"request": dsr.pk, "form": "csv", "via": via},
        request=http_request,
    )
    response = HttpResponse(bundle.zip_of(export, access.KINDS), content_type="application/zip")
    return _attachment(response, f"data-subject-request-{dsr.pk}.zip")
