"""`POST /api/v1/consents` (record consents and withdrawals) and `GET /api/v1/consents?address=A`
(an address's state per purpose and its history)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors as core
from compliance.consent import double_opt_in, rules, selectors, services
from compliance.errors import NotFound, ServiceError
from compliance.key_permissions import KeyPermission
from compliance.parsers import LimitedJSONParser
from compliance.permissions import PermissionRequired

MAX_RECORDS = 10_000


class ConsentsParser(LimitedJSONParser):
    what = "a list of consents"

    def limit(self) -> int:
        return settings.CONSENT_MAX_BYTES


class EvidenceIn(serializers.Serializer):
    collected_at = serializers.DateTimeField(required=False)
    ip = serializers.CharField(required=False, allow_blank=True, max_length=45)
    user_agent = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    page_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    form_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    wording = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    wording_id = serializers.IntegerField(required=False, help_text="a stored wording's id")
    privacy_notice_version = serializers.CharField(required=False, allow_blank=True, max_length=100)


class ConsentIn(serializers.Serializer):
    address = serializers.CharField(max_length=320)
    purpose = serializers.CharField(max_length=101, help_text="STREAM or STREAM/TOPIC")
    action = serializers.ChoiceField(choices=list(rules.ACTION_FOR_VERB))
    basis = serializers.ChoiceField(choices=list(rules.BASES))
    method = serializers.ChoiceField(choices=list(rules.METHODS))
    jurisdiction = serializers.CharField(required=False, allow_blank=True, max_length=8)
    evidence = EvidenceIn(required=False)
    tenant = serializers.CharField(required=False, max_length=50)


class ConsentOut(serializers.Serializer):
    address = serializers.CharField()
    purpose = serializers.CharField()
    state = serializers.ChoiceField(choices=["granted", "withdrawn", "pending"])
    basis = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    record = serializers.IntegerField(allow_null=True, help_text="the ledger row written")


class PurposeState(serializers.Serializer):
    purpose = serializers.CharField()
    state = serializers.ChoiceField(choices=["granted", "withdrawn"])
    basis = serializers.CharField()
    since = serializers.DateTimeField()


class HistoryEntry(serializers.Serializer):
    id = serializers.IntegerField()
    purpose = serializers.CharField()
    action = serializers.CharField()
    basis = serializers.CharField()
    method = serializers.CharField()
    jurisdiction = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    evidence = serializers.DictField()
    cause = serializers.CharField()
    recorded_by = serializers.CharField()


class ConsentStateOut(serializers.Serializer):
    address = serializers.CharField()
    purposes = PurposeState(many=True)
    history = HistoryEntry(many=True)


class ConsentQuery(serializers.Serializer):
    address = serializers.CharField(max_length=320)
    tenant = serializers.CharField(required=False, max_length=50)


def _one_or_many(name: str, serializer, max_length: int | None = None):
    many = serializer(many=True, max_length=max_length) if max_length else serializer(many=True)
    return PolymorphicProxySerializer(
        component_name=name,
        serializers=[serializer, many],
        resource_type_field_name=None,
        many=False,
    )


class ConsentsView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.CONSENT_READ, "POST": KeyPermission.CONSENT_WRITE}
    parser_classes = [ConsentsParser]

    @extend_schema(
        request=_one_or_many("ConsentInOneOrMany", ConsentIn, MAX_RECORDS),
        responses={
            201: _one_or_many("ConsentOutOneOrMany", ConsentOut),
            202: _one_or_many("ConsentPendingOneOrMany", ConsentOut),
        },
        description="Record consents given or withdrawn, with their evidence: one record or a "
        f"list of up to {MAX_RECORDS:,}, all or none. 201 with each purpose's resulting state; "
        "202 with state `pending` when every record is a double opt-in whose confirmation mail "
        "was sent; 503 `confirmation_mail_failed` when one could not be sent (that double "
        "opt-in and those after it are not kept, so sending them again is safe).",
    )
    def post(self, request):
        many = isinstance(request.data, list)
        items = request.data if many else [request.data]
        if many and len(items) > MAX_RECORDS:
            raise ServiceError(
                f"at most {MAX_RECORDS} records per request", code="too_many", status=413
            )
        body = ConsentIn(data=items, many=True)
        if not body.is_valid():
            return _refused(_field_errors(body.errors))
        by_tenant: dict[int, tuple] = {}
        for index, item in enumerate(body.validated_data):
            tenant = _tenant(request, item.get("tenant"))
            by_tenant.setdefault(tenant.pk, (tenant, []))[1].append((index, item))
        try:
            prepared = _prepare_all(by_tenant, len(items))
        except services.ConsentInvalid as exc:
            return _refused(exc)
        language = getattr(request, "LANGUAGE_CODE", "")
        with transaction.atomic():  # all or none, a refused confirmation mail included
            answers = selectors.answers_after(
                services.record_prepared([p for p in prepared if p.method != rules.DOUBLE_OPT_IN])
            )
            pending = double_opt_in.start(
                [p for p in prepared if p.method == rules.DOUBLE_OPT_IN], language=language
            )
        results = _in_order(prepared, answers, pending)
        code = status.HTTP_202_ACCEPTED if not answers else status.HTTP_201_CREATED
        return Response(results if many else results[0], status=code)

    @extend_schema(
        parameters=[
            OpenApiParameter("address", str, required=True),
            OpenApiParameter("tenant", str, required=False),
        ],
        responses=ConsentStateOut,
        description="An address's current state per purpose and every ledger record about it, "
        "with its evidence, for the key's tenant (or `tenant`).",
    )
    def get(self, request):
        query = ConsentQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        tenant = _tenant(request, query.validated_data.get("tenant"))
        return Response(selectors.consent_of(tenant, query.validated_data["address"]))


def _field_errors(errors) -> services.ConsentInvalid:
    """DRF's per-record field errors in the shape the service's own refusals have."""
    found = []
    indexed = errors.items() if isinstance(errors, dict) else enumerate(errors)
    for index, fields in indexed:
        if not isinstance(fields, dict):  # the record itself: null, not an object
            found.append({"index": index, "field": "record", "detail": str(fields[0])})
            continue
        for name, messages in fields.items():
            if isinstance(messages, dict):  # evidence: {field: [messages]}
                found += [
                    {"index": index, "field": name, "detail": f"{name}.{inner}: {text[0]}"}
                    for inner, text in messages.items()
                ]
            elif name == "non_field_errors":  # the record itself is not an object
                found.append({"index": index, "field": "record", "detail": str(messages[0])})
            else:
                found.append({"index": index, "field": name, "detail": f"{name}: {messages[0]}"})
    return services.ConsentInvalid(found)


def _refused(exc: services.ConsentInvalid) -> Response:
    return Response(
        {"detail": exc.message, "code": exc.code, "errors": exc.errors},
        status=status.HTTP_400_BAD_REQUEST,
    )


def _tenant(request, slug: str | None):
    try:
        return core.tenant_for(api_key=request.auth, slug=slug)
    except NotFound as exc:  # a value in the body, not a resource in the URL
        raise ServiceError(exc.message, code="unknown_tenant") from None


def _prepare_all(by_tenant: dict, count: int) -> list[services.Prepared]:
    """Every record checked, in the request's order; ConsentInvalid lists each one refused with
    its index in the request."""
    prepared: list = [None] * count
    errors: list[dict] = []
    for tenant, indexed in by_tenant.values():
        try:
            checked = services.prepare(tenant, [_plain(item) for _, item in indexed])
        except services.ConsentInvalid as exc:
            errors += [{**e, "index": indexed[e["index"]][0]} for e in exc.errors]
            continue
        for (index, _), item in zip(indexed, checked, strict=True):
            prepared[index] = item
    if errors:
        raise services.ConsentInvalid(sorted(errors, key=lambda e: e["index"]))
    return prepared


def _plain(item: dict) -> dict:
    return {**item, "evidence": dict(item.get("evidence") or {})}


def _in_order(prepared, answers: list[dict], pending) -> list[dict]:
    answers_iter, pending_iter = iter(answers), iter(pending)
    results = []
    for item in prepared:
        if item.method == rules.DOUBLE_OPT_IN:
            confirmation = next(pending_iter)
            results.append(
                {
                    "address": item.address,
                    "purpose": item.purpose,
                    "state": "pending",
                    "basis": item.basis,
                    "since": confirmation.requested_at,
                    "record": None,
                }
            )
        else:
            results.append(next(answers_iter))
    return results
