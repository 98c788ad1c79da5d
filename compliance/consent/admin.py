"""The ledger in the admin: read-only, searchable by address (through its hash), with each
address's state per purpose and the stored wordings with how many consents cite each."""

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from compliance.admin import ReadOnlyAdmin
from compliance.admin_scope import TenantScopedAdmin
from compliance.consent.models import (
    ConsentRecord,
    ConsentState,
    ConsentText,
    PendingConfirmation,
)
from suppression import addresses


class ByAddressHash:
    """Search by a whole address, matched through its keyed hash: the tables are indexed by
    hash, and an erased address is found that way too."""

    search_fields = ["address_hash"]  # shows the search box; the lookup is below
    search_help_text = "A whole e-mail address."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            normalised = addresses.normalise(term)
        except addresses.InvalidAddress:
            return queryset.none(), False
        digest = addresses.address_hash(normalised, settings.ADDRESS_HASH_KEY.encode())
        return queryset.filter(address_hash=digest), False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(TenantScopedAdmin, ByAddressHash, ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "address",
        "tenant",
        "purpose",
        "action",
        "basis",
        "method",
        "jurisdiction",
        "actor_label",
    ]
    list_filter = ["action", "method", "basis", "jurisdiction", "tenant"]
    list_select_related = ["tenant", "stream", "topic"]
    date_hierarchy = "occurred_at"
    exclude = ["address_hash"]


@admin.register(ConsentState)
class ConsentStateAdmin(TenantScopedAdmin, ByAddressHash, ReadOnlyAdmin):
    list_display = ["address", "tenant", "purpose", "action", "basis", "since"]
    list_filter = ["action", "basis", "tenant"]
    list_select_related = ["tenant", "stream", "topic", "record"]
    exclude = ["address_hash"]

    @admin.display(description="address")
    def address(self, obj):
        return obj.record.address or "[erased]"

    @admin.display(description="purpose")
    def purpose(self, obj):
        return f"{obj.stream.slug}/{obj.topic.slug}" if obj.topic_id else obj.stream.slug


@admin.register(ConsentText)
class ConsentTextAdmin(TenantScopedAdmin, ReadOnlyAdmin):
    list_display = ["id", "tenant", "excerpt", "created_at", "consents"]
    search_fields = ["body"]

    def get_queryset(self, request):
        cited = (
            ConsentRecord.objects.filter(text=OuterRef("pk"))
            .order_by()
            .values("text")
            .annotate(n=Count("*"))
            .values("n")
        )
        return super().get_queryset(request).annotate(consent_count=Coalesce(Subquery(cited), 0))

    @admin.display(description="wording")
    def excerpt(self, obj):
        return obj.body if len(obj.body) <= 120 else obj.body[:117] + "…"

    @admin.display(description="consents", ordering="consent_count")
    def consents(self, obj):
        return obj.consent_count


@admin.register(PendingConfirmation)
class PendingConfirmationAdmin(TenantScopedAdmin, ByAddressHash, ReadOnlyAdmin):
    list_display = ["requested_at", "address", "tenant", "stream", "topic", "status", "expires_at"]
    list_filter = ["status", "tenant"]
    exclude = ["address_hash", "token_hash"]
