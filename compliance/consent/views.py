"""`POST /api/v1/send-decisions`: a thin view that validates, calls one selector and answers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors as core
from compliance.consent import selectors
from compliance.consent.serializers import SendDecisionsAnswer, SendDecisionsRequest
from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.parsers import BatchJSONParser
from compliance.permissions import PermissionRequired
from compliance.replicas import relay_read

_NAMES = ("stream", "topic", "tenant", "jurisdiction")


def _denied(address: str, denial) -> dict:
    item = {"address": address, "reason": denial.reason, "rule": denial.rule}
    if denial.blocking is not None:
        item["suppression_reason"] = denial.blocking.reason
        item["scope"] = denial.blocking.scope
    return item


class SendDecisionsView(APIView):
    parser_classes = [BatchJSONParser]
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.CONSENT_READ}

    @extend_schema(request=SendDecisionsRequest, responses=SendDecisionsAnswer)
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise ServiceError("the body must be a JSON object", code="invalid")
        batch = data.get("addresses")
        # Checked by hand, as the batch check does: 100,000 field objects cost more than the work.
        if not isinstance(batch, list) or not all(isinstance(a, str) for a in batch):
            raise ServiceError("'addresses' must be a list of strings", code="invalid")
        if not all(isinstance(data.get(k), str | None) for k in _NAMES):
            raise ServiceError(
                "'stream', 'topic', 'tenant' and 'jurisdiction' must be strings", code="invalid"
            )
        tenant = core.tenant_for(api_key=request.auth, slug=data.get("tenant"))
        stream = core.stream_of(tenant, data.get("stream"))
        # A relay read: suppressions and consent from a read replica when one is healthy.
        result = relay_read(selectors.decide_many)(
            stream=stream,
            topic=core.topic_of(stream, data.get("topic")),
            addresses_=batch,
            jurisdiction=data.get("jurisdiction"),
        )
        return Response(
            {
                "checked": result.checked,
                "allowed": result.allowed,
                "denied": [_denied(address, denial) for address, denial in result.denied],
                "invalid": [{"address": a, "reason": r} for a, r in result.invalid],
            }
        )
