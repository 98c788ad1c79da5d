"""`POST /api/v1/reports`: a raw report message over HTTP, taken in like one from the MTA
(fbl/sources/mail.py)."""

from django.conf import settings
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.parsers import LimitedBodyParser
from compliance.permissions import PermissionRequired
from fbl import sources
from fbl.models import InboundMessage

SOURCE = sources.get("mail")


class RawMessageParser(LimitedBodyParser):
    """The body as bytes: the message is stored exactly as sent. Larger than four times
    INBOUND_MAX_BYTES it is no report: refused before it is read."""

    media_type = "message/rfc822"
    what = "a message"

    def limit(self) -> int:
        return settings.INBOUND_MAX_BYTES * 4


class ReportAnswer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    duplicate = serializers.BooleanField()
    note = serializers.CharField()


class ReportsView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.REPORTS_WRITE}
    parser_classes = [RawMessageParser]

    @extend_schema(
        request={"message/rfc822": OpenApiTypes.BINARY},
        responses={201: ReportAnswer, 200: ReportAnswer},
    )
    def post(self, request):
        raw = request.data
        if not raw or not raw.strip():
            raise ServiceError("the body must hold the raw message", code="empty_message")
        message, created = SOURCE.take(
            raw, provenance=SOURCE.provenance(request), channel=InboundMessage.Source.HTTP
        )
        return Response(
            {
                "id": message.pk,
                "kind": message.kind,
                "status": message.status,
                "duplicate": not created,
                "note": message.note,
            },
            status=201 if created else 200,
        )
