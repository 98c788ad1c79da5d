"""Reads of the downstream endpoints and their deliveries."""

from __future__ import annotations

from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, Q

from compliance.ttl_cache import TtlCache
from compliance.webhooks import events
from compliance.webhooks.models import DownstreamEndpoint, WebhookDelivery

# The events that carry an opt-out downstream: its clock runs until each is delivered.
PROPAGATING = frozenset({events.OPTOUT_CREATED, events.SUPPRESSION_ADDED})


class EndpointRef(NamedTuple):
    id: int
    tenant_id: int | None
    event_types: frozenset[str]


_active: TtlCache[list[EndpointRef]] = TtlCache(seconds=lambda: settings.LOOKUP_CACHE_SECONDS)


def active_endpoints() -> list[EndpointRef]:
    """Every active endpoint; each process keeps the list for LOOKUP_CACHE_SECONDS, since every
    opt-out asks."""

    def load() -> list[EndpointRef]:
        rows = DownstreamEndpoint.objects.filter(is_active=True).values_list(
            "pk", "tenant_id", "event_types"
        )
        return [EndpointRef(pk, tenant, frozenset(types)) for pk, tenant, types in rows]

    return _active.get_or_load("active", load)


def endpoints_for(event_type: str, tenant_id: int | None) -> list[int]:
    """The endpoints an event of `tenant_id` (None: shared by all tenants) goes to. An endpoint
    bound to a tenant gets that tenant's events only: a shared entry's address is not theirs to
    see (DESIGN.md, Tenants)."""
    return [
        e.id
        for e in active_endpoints()
        if event_type in e.event_types and (e.tenant_id is None or e.tenant_id == tenant_id)
    ]


def waits_for_downstream(tenant_id: int | None) -> bool:
    return any(endpoints_for(kind, tenant_id) for kind in PROPAGATING)


def status_counts() -> list[dict]:
    """Per endpoint: its URL, tenant, event types and how many deliveries are delivered, pending
    and dead."""
    counts = {
        row["endpoint"]: row
        for row in WebhookDelivery.objects.values("endpoint").annotate(
            delivered=Count("pk", filter=Q(status=WebhookDelivery.Status.DELIVERED)),
            pending=Count("pk", filter=Q(status=WebhookDelivery.Status.PENDING)),
            dead=Count("pk", filter=Q(status=WebhookDelivery.Status.DEAD)),
        )
    }
    report = []
    for endpoint in DownstreamEndpoint.objects.select_related("tenant").order_by("pk"):
        found = counts.get(endpoint.pk, {})
        report.append(
            {
                "endpoint": endpoint.pk,
                "url": endpoint.url,
                "tenant": endpoint.tenant.slug if endpoint.tenant else None,
                "events": list(endpoint.event_types),
                "active": endpoint.is_active,
                "delivered": found.get("delivered", 0),
                "pending": found.get("pending", 0),
                "dead": found.get("dead", 0),
            }
        )
    return report
