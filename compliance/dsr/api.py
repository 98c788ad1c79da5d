"""`POST /api/v1/data-subject-requests`, `GET /api/v1/data-subject-requests/{id}` and
`GET /api/v1/data-subject-requests/{id}/export` and `GET /api/v1/proof`."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import audit
from compliance import selectors as core
from compliance.dsr import access, proof, services
from compliance.dsr.models import DataSubjectRequest
from compliance.errors import NotFound, PermissionDenied, ServiceError
from compliance.key_permissions import KeyPermission
from compliance.permissions import PermissionRequired


class RequestIn(serializers.Serializer):
    address = serializers.CharField(max_length=320)
    kind = serializers.CharField(max_length=20, help_text=", ".join(DataSubjectRequest.Kind.values))
    tenant = serializers.CharField(
        max_length=50, required=False, help_text="omitted: every tenant (unbound keys only)"
    )


class RequestOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    due = serializers.DateField()
    received_at = serializers.DateTimeField()
    tenant = serializers.CharField(allow_null=True)
    extended_by_months = serializers.IntegerField()
    history = serializers.ListField(child=serializers.DictField())


class ExportOut(serializers.Serializer):
    request = serializers.IntegerField()
    address = serializers.CharField(allow_null=True)
    tenant = serializers.CharField(allow_null=True)
    generated_at = serializers.DateTimeField()
    consents = serializers.ListField(
        child=serializers.DictField(), help_text="each record with its evidence and wording"
    )
    consent_states = serializers.ListField(child=serializers.DictField())
    suppressions = serializers.ListField(
        child=serializers.DictField(), help_text="each entry with its history"
    )
    opt_outs = serializers.ListField(
        child=serializers.DictField(), help_text="when each was received and applied"
    )
    unsubscribe_requests = serializers.ListField(child=serializers.DictField())
    reports = serializers.ListField(
        child=serializers.DictField(), help_text="reports naming the address, with an excerpt"
    )
    requests = serializers.ListField(
        child=serializers.DictField(), help_text="data-subject requests with their steps"
    )


def answer(request: DataSubjectRequest, *, full: bool = True) -> dict:
    body = {"id": request.pk, "status": request.status, "due": request.due}
    if full:
        body |= {
            "kind": request.kind,
            "received_at": request.received_at,
            "tenant": request.tenant.slug if request.tenant_id else None,
            "extended_by_months": request.extended_by_months,
            "history": [
                {"step": s.step, "at": s.occurred_at, "note": s.note}
                for s in request.steps.order_by("occurred_at", "id")
            ],
        }
    return body


def _tenant(api_key, slug: str | None):
    """A bound key acts for its tenant; an unbound key for the one it names, or for all."""
    if api_key is not None and api_key.tenant_id is not None:
        return core.tenant_for(api_key=api_key, slug=slug)
    if not slug:
        return None
    try:
        return core.tenant_for(api_key=api_key, slug=slug)
    except NotFound as exc:  # a value in the body, not a resource in the URL
        raise ServiceError(exc.message, code="unknown_tenant") from None


def visible(api_key, pk: int) -> DataSubjectRequest:
    request = get_object_or_404(DataSubjectRequest.objects.select_related("tenant"), pk=pk)
    if api_key is not None and api_key.tenant_id is not None:
        if request.tenant_id != api_key.tenant_id:
            raise PermissionDenied("this request belongs to another tenant")
    return request


class RequestsView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.DSR_WRITE}

    @extend_schema(request=RequestIn, responses={201: RequestOut})
    def post(self, request):
        body = RequestIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        opened = services.open_request(
            address=data["address"],
            kind=data["kind"],
            tenant=_tenant(request.auth, data.get("tenant")),
            language=getattr(request, "LANGUAGE_CODE", ""),
        )
        return Response(answer(opened, full=False), status=status.HTTP_201_CREATED)


class RequestView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.DSR_READ}

    @extend_schema(responses=RequestOut)
    def get(self, request, pk: int):
        return Response(answer(visible(request.auth, pk)))


class ExportView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.DSR_READ}

    @extend_schema(
        responses={
            200: ExportOut,
            409: OpenApiResponse(
                response={"$ref": "#/components/schemas/Error"},
                description="Not an access request, or not verified (nothing is released "
                "before the requester shows control of the address).",
            ),
        },
        description="Everything held about the address of a verified access request (GDPR "
        "Art. 15). Each call is recorded in the audit trail.",
    )
    def get(self, request, pk: int):
        dsr = visible(request.auth, pk)
        access.require_releasable(dsr)
        export = access.export_of(dsr)
        audit.record_access(
            audit.ACCESS_EXPORT,
            dsr.address_hash,
            tenant=dsr.tenant,
            detail={"request": dsr.pk, "form": "json", "via": "api"},
            request=request._request,
        )
        return Response(export)


class ProofQuery(serializers.Serializer):
    address = serializers.CharField(max_length=320)
    tenant = serializers.CharField(max_length=50, required=False)


class ProofEntryOut(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=proof.KINDS)
    summary = serializers.CharField()
    details = serializers.DictField(help_text="what the entry holds, by kind")


class ProofOut(serializers.Serializer):
    address = serializers.CharField()
    tenant = serializers.CharField(allow_null=True)
    entries = ProofEntryOut(many=True)


class ProofView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.CONSENT_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter("address", str, required=True),
            OpenApiParameter(
                "tenant", str, required=False, description="omitted: every tenant (unbound keys)"
            ),
        ],
        responses=ProofOut,
        description="The address's compliance timeline, oldest first: consents with evidence, "
        "opt-outs with the time they took to apply against 48 hours and 10 US business days, "
        "suppressions and their history, reports that named it, data-subject requests. A key "
        "bound to a tenant sees that tenant's entries and shared ones. Each call is recorded in "
        "the audit trail.",
    )
    def get(self, request):
        query = ProofQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        slug = query.validated_data.get("tenant")
        api_key = request.auth
        bound = api_key is not None and api_key.tenant_id is not None
        tenant = core.tenant_for(api_key=api_key, slug=slug) if bound or slug else None
        found = proof.proof_of(query.validated_data["address"], tenant=tenant)
        audit.record_access(audit.PROOF_API, found.address_hash, tenant=tenant)
        return Response(found.as_dict())
