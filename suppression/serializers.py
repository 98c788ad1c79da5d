"""Input validation and output shapes of the suppression API. No decisions live here."""

from rest_framework import serializers

from compliance.schema import AddressField
from suppression.models import ImportJob, Origin, Reason, ScopeKind, Suppression


class CheckQuery(serializers.Serializer):
    address = AddressField()
    stream = serializers.CharField(max_length=50)
    topic = serializers.CharField(max_length=50, required=False)
    tenant = serializers.CharField(max_length=50, required=False)


class CheckAnswer(serializers.Serializer):
    address = serializers.CharField()
    suppressed = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    scope = serializers.CharField(allow_null=True)


class BatchCheckRequest(serializers.Serializer):
    """Documentation shape; the view validates the (large) list itself for speed. Exactly one
    of `addresses` and `hashes`."""

    stream = serializers.CharField(max_length=50)
    topic = serializers.CharField(max_length=50, required=False)
    tenant = serializers.CharField(max_length=50, required=False)
    # Not email-formatted: an address that is none is answered in `invalid`, not refused.
    addresses = serializers.ListField(
        child=serializers.CharField(), max_length=100_000, required=False
    )
    hashes = serializers.ListField(
        child=serializers.CharField(),
        max_length=100_000,
        required=False,
        help_text=(
            "Instead of `addresses`: their keyed hashes (HMAC-SHA256 of the normalised address "
            "under the service's ADDRESS_HASH_KEY) as 64 hexadecimal digits, as a relay's "
            "mirror holds them. The answer names each by `hash` instead of `address`."
        ),
    )


class SuppressedAddress(serializers.Serializer):
    address = serializers.CharField(required=False, help_text="as given (asked by addresses)")
    hash = serializers.CharField(required=False, help_text="as given (asked by hashes)")
    reason = serializers.CharField()
    scope = serializers.CharField()
    since = serializers.DateTimeField()


class InvalidAddress(serializers.Serializer):
    address = serializers.CharField(required=False, help_text="as given (asked by addresses)")
    hash = serializers.CharField(required=False, help_text="as given (asked by hashes)")
    reason = serializers.CharField()


class BatchCheckAnswer(serializers.Serializer):
    checked = serializers.IntegerField()
    suppressed = SuppressedAddress(many=True)
    invalid = InvalidAddress(many=True)


class SuppressionOut(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    scope = serializers.CharField(source="scope_label")
    address_hash = serializers.SerializerMethodField()
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = Suppression
        fields = [
            "id",
            "address",
            "address_hash",
            "tenant",
            "scope",
            "reason",
            "origin",
            "evidence_note",
            "created_at",
            "expires_at",
            "lifted_at",
            "active",
        ]

    def get_address_hash(self, obj) -> str:
        return bytes(obj.address_hash).hex()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("tenant_bound") and instance.tenant_id is None:
            # A tenant sees entries shared by every tenant as their hash only: never the plain
            # address or the evidence another tenant's or the operator's report left.
            data["address"] = None
            data["evidence_note"] = ""
        return data


class SuppressionPage(serializers.Serializer):
    """One page of the list, newest first (a cursor page: follow `next` for older entries)."""

    next = serializers.URLField(allow_null=True, help_text="the next page's URL, or null")
    previous = serializers.URLField(allow_null=True, help_text="the previous page's URL, or null")
    results = SuppressionOut(many=True)


class SuppressionIn(serializers.Serializer):
    address = AddressField()
    reason = serializers.ChoiceField(choices=Reason.choices)
    scope = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        help_text="global, commercial, stream:SLUG or topic:STREAM/SLUG",
    )
    tenant = serializers.CharField(
        max_length=50, required=False, help_text="tenant slug, or * for an entry shared by all"
    )
    expires_at = serializers.DateTimeField(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ListQuery(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Reason.choices, required=False)
    scope = serializers.ChoiceField(choices=ScopeKind.choices, required=False)
    origin = serializers.ChoiceField(choices=Origin.choices, required=False)
    tenant = serializers.CharField(required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    address = serializers.CharField(required=False)
    active = serializers.BooleanField(required=False, allow_null=True, default=None)


class LiftIn(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=True, required=False)


class ChangeOut(serializers.Serializer):
    cursor = serializers.CharField()
    action = serializers.CharField()
    suppressed = serializers.BooleanField()
    address_hash = serializers.CharField()
    address = serializers.CharField(allow_null=True)
    tenant = serializers.CharField(allow_null=True)
    scope = serializers.CharField()
    reason = serializers.CharField()
    at = serializers.DateTimeField()


class ChangesAnswer(serializers.Serializer):
    changes = ChangeOut(many=True)
    next = serializers.CharField()


class ImportJobOut(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    format = serializers.CharField(source="format_name")
    percent = serializers.IntegerField()
    errors = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "format",
            "filename",
            "tenant",
            "rows_total",
            "rows_done",
            "rows_added",
            "rows_existing",
            "rows_bad",
            "percent",
            "errors",
            "message",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_errors(self, obj) -> list[dict]:
        return obj.errors[:100]
