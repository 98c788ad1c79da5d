"""`POST /api/v1/unsubscribe-links`: List-Unsubscribe headers for the sending application."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors as core
from compliance.errors import ServiceError
from compliance.key_permissions import KeyPermission
from compliance.permissions import PermissionRequired
from compliance.schema import AddressField
from unsubscribe import links

MAX_LINKS = 10_000


class LinkRequest(serializers.Serializer):
    recipient = AddressField()
    stream = serializers.CharField(max_length=50)
    topic = serializers.CharField(max_length=50, required=False, allow_blank=True)
    campaign = serializers.CharField(max_length=255, required=False, allow_blank=True)
    tenant = serializers.CharField(max_length=50, required=False)


class LinkAnswer(serializers.Serializer):
    recipient = serializers.CharField()
    list_unsubscribe = serializers.CharField(help_text="the List-Unsubscribe header value")
    list_unsubscribe_post = serializers.CharField(help_text="List-Unsubscribe=One-Click")
    url = serializers.CharField()
    mailto = serializers.CharField(allow_null=True)


class UnsubscribeLinksView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.UNSUBSCRIBE_MINT}

    @extend_schema(
        # One link for one object, a list of links (at most MAX_LINKS) for a list.
        request=PolymorphicProxySerializer(
            component_name="LinkRequestOneOrMany",
            serializers=[LinkRequest, LinkRequest(many=True, max_length=MAX_LINKS)],
            resource_type_field_name=None,
            many=False,
        ),
        responses=PolymorphicProxySerializer(
            component_name="LinkAnswerOneOrMany",
            serializers=[LinkAnswer, LinkAnswer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
    )
    def post(self, request):
        many = isinstance(request.data, list)
        items = request.data if many else [request.data]
        if many and len(items) > MAX_LINKS:
            raise ServiceError(
                f"at most {MAX_LINKS} links per request", code="too_many", status=413
            )
        body = LinkRequest(data=items, many=True)
        body.is_valid(raise_exception=True)
        answers = []
        for item in body.validated_data:
            tenant = core.tenant_for(api_key=request.auth, slug=item.get("tenant"))
            stream = core.stream_of(tenant, item["stream"])
            link = links.mint_link(
                stream=stream,
                recipient=item["recipient"],
                topic=core.topic_of(stream, item.get("topic")),
                campaign=item.get("campaign") or None,
            )
            answers.append(
                {
                    "recipient": link.recipient,
                    "list_unsubscribe": link.list_unsubscribe,
                    "list_unsubscribe_post": link.list_unsubscribe_post,
                    "url": link.url,
                    "mailto": link.mailto,
                }
            )
        return Response(answers if many else answers[0])
