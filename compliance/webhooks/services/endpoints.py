"""Adding and changing downstream endpoints, and sending dead letters again."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.errors import ServiceError
from compliance.models import Tenant
from compliance.webhooks import dispatch, events, signing, targets
from compliance.webhooks.models import DownstreamEndpoint, WebhookDelivery


def validate_url(url: str) -> str:
    url = (url or "").strip()
    try:
        targets.check(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
    except targets.RefusedTarget as exc:
        raise ServiceError(str(exc), code="refused_target") from exc
    return url


def validate_event_types(types: str | Iterable[str]) -> list[str]:
    try:
        return events.parse_types(types if isinstance(types, str) else list(types))
    except events.UnknownEventType as exc:
        raise ServiceError(str(exc), code="unknown_event_type") from exc


def add_endpoint(
    *,
    url: str,
    event_types: str | Iterable[str],
    tenant: Tenant | None = None,
    description: str = "",
) -> DownstreamEndpoint:
    """A new endpoint with a fresh secret. Raises ServiceError for a URL it must not reach or an
    unknown event type."""
    return DownstreamEndpoint.objects.create(
        url=validate_url(url),
        secret=signing.new_secret(),
        event_types=validate_event_types(event_types),
        tenant=tenant,
        description=description.strip()[:200],
    )


def new_secret(endpoint: DownstreamEndpoint) -> DownstreamEndpoint:
    """Replace the endpoint's secret; events sent from now on are signed with the new one."""
    endpoint.secret = signing.new_secret()
    endpoint.save(update_fields=["secret"])
    return endpoint


def retry(deliveries) -> int:
    """Send dead letters (or failing deliveries) again from the first try; returns how many."""
    ids = list(deliveries.values_list("pk", flat=True))
    with transaction.atomic():
        count = (
            WebhookDelivery.objects.filter(pk__in=ids)
            .exclude(status=WebhookDelivery.Status.DELIVERED)
            .update(
                status=WebhookDelivery.Status.PENDING,
                attempts=0,
                next_attempt_at=timezone.now(),
                last_error="",
            )
        )
        endpoint_ids = set(
            WebhookDelivery.objects.filter(pk__in=ids).values_list("endpoint_id", flat=True)
        )
        transaction.on_commit(lambda: dispatch.kick(endpoint_ids, force=True))
    return count
