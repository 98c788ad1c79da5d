"""`POST /api/v1/preflight`: a raw message, as it will be sent, checked before it is sent.

The body is taken like a report's (`POST /api/v1/reports`): the bytes exactly as sent, so that
DKIM signatures can be verified, refused with 413 above the same size limit.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors as core
from compliance.check_results import STATUSES
from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.models import Stream
from compliance.permissions import PermissionRequired
from compliance.preflight.answer import preflight
from compliance.preflight.checks import CHECK_NAMES, NotAMessage
from fbl.views.reports import RawMessageParser

# Named StreamKindEnum in the schema (SPECTACULAR_SETTINGS, ENUM_NAME_OVERRIDES).
STREAM_KINDS = Stream.Kind.choices


class PreflightQuery(serializers.Serializer):
    stream = serializers.SlugField(max_length=50, required=False)
    tenant = serializers.SlugField(max_length=50, required=False)
    kind = serializers.ChoiceField(choices=STREAM_KINDS, required=False)
    mail_from = serializers.CharField(max_length=320, required=False)

    def validate(self, data):
        if "stream" in data and "kind" in data:
            raise serializers.ValidationError("give stream or kind, not both")
        if "tenant" in data and "stream" not in data:
            raise serializers.ValidationError("tenant is read only with stream")
        return data


class CheckOut(serializers.Serializer):
    name = serializers.ChoiceField(choices=CHECK_NAMES)
    status = serializers.ChoiceField(choices=STATUSES)
    message = serializers.CharField(help_text="what was found, for a person")


class PreflightOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=STREAM_KINDS, help_text="what the message was judged as")
    verdict = serializers.ChoiceField(choices=STATUSES, help_text="the worst status of the checks")
    checks = CheckOut(many=True)


class PreflightView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.PREFLIGHT}
    parser_classes = [RawMessageParser]

    @extend_schema(
        request={"message/rfc822": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "stream",
                str,
                description="judge the message as this stream's kind (commercial or "
                "transactional); not with `kind`",
            ),
            OpenApiParameter(
                "tenant", str, description="the stream's tenant (unbound keys; default: default)"
            ),
            OpenApiParameter(
                "kind",
                str,
                enum=Stream.Kind.values,
                description="commercial (the default) or transactional; not with `stream`",
            ),
            OpenApiParameter(
                "mail_from",
                str,
                description="the envelope sender (MAIL FROM), for SPF alignment; default: the "
                "message's Return-Path",
            ),
        ],
        responses={200: PreflightOut},
        description="Checks a raw RFC 5322 message, exactly as it will be sent, before it is "
        "sent: List-Unsubscribe with an https URI, List-Unsubscribe-Post, both signed by DKIM, "
        "the DKIM signature verifying, the From domain aligned for DMARC, a visible unsubscribe "
        "link, a postal address (commercial mail) and a Subject. Answers 200 with every check, "
        "whatever they find; nothing is stored.",
    )
    def post(self, request):
        query = PreflightQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        kind = _kind(request.auth, query.validated_data)
        raw = request.data
        if not isinstance(raw, bytes) or not raw.strip():  # DRF gives {} for an empty body
            raise ServiceError("the body must hold the raw message", code="empty_message")
        try:
            answer = preflight(raw, kind=kind, mail_from=query.validated_data.get("mail_from"))
        except NotAMessage as exc:
            raise ServiceError(str(exc), code="not_a_message") from None
        return Response(answer)


def _kind(api_key, query: dict) -> str:
    if "stream" not in query:
        return query.get("kind", Stream.Kind.COMMERCIAL)
    tenant = core.tenant_for(api_key=api_key, slug=query.get("tenant"))
    return core.stream_of(tenant, query["stream"]).kind
