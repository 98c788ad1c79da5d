"""`POST /api/v1/events/kumomta`: KumoMTA log-hook records (bounces, feedback, deliveries), taken
in by fbl/sources/kumomta.py."""

import json

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.key_permissions import KeyPermission
from compliance.parsers import read_limited
from compliance.permissions import PermissionRequired
from fbl import sources

SOURCE = sources.get("kumomta")


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class RecordsParser(BaseParser):
    """JSON read from the stream. A Feedback record carries the whole reported message, so a
    body may be larger than the DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) that DRF's JSONParser
    holds it to; the bound here is the inbound report's (INBOUND_MAX_BYTES, four times)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_limited(
            stream,
            parser_context,
            limit=settings.INBOUND_MAX_BYTES * 4,
            what="a batch of log records",
        )
        try:
            return json.loads(raw, parse_constant=_no_constant)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from exc


class KumoMtaResponse(serializers.Serializer):
    code = serializers.IntegerField(help_text="SMTP reply code")
    enhanced_code = inline_serializer(
        "KumoMtaEnhancedCode",
        fields={
            "class": serializers.IntegerField(),
            "subject": serializers.IntegerField(),
            "detail": serializers.IntegerField(),
        },
        allow_null=True,
        help_text="RFC 3463 code, e.g. 5.1.1",
    )
    content = serializers.CharField(help_text="the rest of the reply")
    command = serializers.CharField(
        allow_null=True, required=False, help_text='the command answered, e.g. "RCPT TO:<...>"'
    )


class KumoMtaRecord(serializers.Serializer):
    """The fields of a KumoMTA log record that are read; the record is kept whole."""

    type = serializers.CharField(
        help_text="Delivery, Bounce, OOB, TransientFailure, Expiration, Feedback are acted on; "
        "other types (Reception, AdminBounce, Rejection, ...) are accepted and ignored"
    )
    id = serializers.CharField(help_text="the message's spool id")
    sender = serializers.CharField(required=False)
    recipient = serializers.CharField(help_text="required except for Feedback records")
    timestamp = serializers.IntegerField(help_text="unix seconds")
    event_time = serializers.DateTimeField(required=False, help_text="newer releases")
    num_attempts = serializers.IntegerField(required=False)
    response = KumoMtaResponse(required=False)
    bounce_classification = serializers.CharField(required=False)
    feedback_report = serializers.DictField(
        required=False, allow_null=True, help_text="the parsed ARF report of a Feedback record"
    )
    meta = serializers.DictField(
        required=False, help_text="`tenant`, `stream`, `campaign` attribute the event"
    )
    headers = serializers.DictField(required=False)


class EventsAnswer(serializers.Serializer):
    received = serializers.IntegerField(help_text="records in the body")
    events = serializers.IntegerField(help_text="records acted on (others are ignored types)")
    outcomes = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='events per outcome: "suppressed", "counted", "recorded", "duplicate", ...',
    )


class KumoMtaEventsView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.REPORTS_WRITE}
    parser_classes = [RecordsParser]

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="KumoMtaRecordOneOrMany",
            serializers=[KumoMtaRecord, KumoMtaRecord(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses=EventsAnswer,
        description="One KumoMTA log record (the JSON `configure_log_hook` writes), or a JSON "
        "array of them. The whole body is checked first: a malformed record answers 400 "
        "naming its index, and nothing is stored. Records are then stored and acted on in one "
        "transaction; a record posted again is acknowledged as a duplicate.",
    )
    def post(self, request):
        return Response(
            SOURCE.answer(SOURCE.take(request.data, provenance=SOURCE.provenance(request)))
        )
