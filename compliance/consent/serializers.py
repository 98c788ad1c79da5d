"""Shapes of the consent API, for its OpenAPI schema: the views check the (large) address lists
themselves, as the batch check does."""

from rest_framework import serializers

from compliance import jurisdictions
from compliance.consent import decisions
from suppression.serializers import InvalidAddress

REASONS = (
    decisions.SUPPRESSED,
    decisions.CONSENT_WITHDRAWN,
    decisions.NO_CONSENT,
    decisions.ERASED,
)


class SendDecisionsRequest(serializers.Serializer):
    stream = serializers.CharField(max_length=50)
    topic = serializers.CharField(max_length=50, required=False)
    tenant = serializers.CharField(max_length=50, required=False)
    jurisdiction = serializers.ChoiceField(
        choices=jurisdictions.JURISDICTIONS,
        required=False,
        help_text="whose law applies; the tenant's own jurisdiction when absent",
    )
    # Not email-formatted: an address that is none is answered in `invalid`, not refused.
    addresses = serializers.ListField(child=serializers.CharField(), max_length=100_000)


class DeniedAddress(serializers.Serializer):
    address = serializers.CharField()
    reason = serializers.CharField(help_text=f"one of {', '.join(REASONS)}")
    rule = serializers.CharField(help_text="the line of the decision table that denies it")
    suppression_reason = serializers.CharField(
        required=False, help_text="the blocking entry's reason (when suppressed or erased)"
    )
    scope = serializers.CharField(
        required=False, help_text="the blocking entry's scope (when suppressed or erased)"
    )


class SendDecisionsAnswer(serializers.Serializer):
    checked = serializers.IntegerField()
    allowed = serializers.IntegerField()
    denied = DeniedAddress(many=True)
    invalid = InvalidAddress(many=True)
