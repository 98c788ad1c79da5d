"""`POST /api/v1/delivery-counts`: delivery totals from relays that send totals, not events."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors as core
from compliance.key_permissions import KeyPermission
from compliance.permissions import PermissionRequired
from fbl import services

MAX_DOMAINS = 100_000
MAX_COUNT = 10**12


class WholeNumber(serializers.IntegerField):
    """A JSON integer: not "12", 12.5 or true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class DomainCount(serializers.Serializer):
    domain = serializers.CharField(max_length=253, help_text="recipient domain, e.g. gmail.com")
    delivered = WholeNumber(min_value=0, max_value=MAX_COUNT)

    def validate_domain(self, value):
        value = value.strip().rstrip(".").lower()
        if not value or "@" in value or any(c.isspace() for c in value):
            raise serializers.ValidationError("a recipient domain such as gmail.com is required")
        return value


class DeliveryCountsRequest(serializers.Serializer):
    day = serializers.DateField(input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD (UTC)")
    stream = serializers.CharField(max_length=50)
    tenant = serializers.CharField(max_length=50, required=False)
    campaign = serializers.CharField(max_length=255, required=False, allow_blank=True)
    batch_id = serializers.CharField(
        max_length=200, help_text="the same batch posted again changes nothing"
    )
    counts = serializers.ListField(child=DomainCount(), allow_empty=False, max_length=MAX_DOMAINS)


class DeliveryCountsAnswer(serializers.Serializer):
    batch_id = serializers.CharField()
    deliveries = serializers.IntegerField(help_text="deliveries the batch added")
    duplicate = serializers.BooleanField(help_text="true when the batch was posted before")


class DeliveryCountsView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.REPORTS_WRITE}

    @extend_schema(
        request=DeliveryCountsRequest,
        responses={201: DeliveryCountsAnswer, 200: DeliveryCountsAnswer},
    )
    def post(self, request):
        body = DeliveryCountsRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        tenant = core.tenant_for(api_key=request.auth, slug=data.get("tenant"))
        stream = core.stream_of(tenant, data["stream"])
        result = services.add_delivery_counts(
            tenant=tenant,
            stream=stream,
            day=data["day"],
            campaign=data.get("campaign", ""),
            batch_id=data["batch_id"],
            counts=[(c["domain"], c["delivered"]) for c in data["counts"]],
        )
        return Response(
            {
                "batch_id": result.batch_id,
                "deliveries": result.deliveries,
                "duplicate": result.duplicate,
            },
            status=200 if result.duplicate else 201,
        )
