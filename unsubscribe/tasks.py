"""Applying recorded opt-outs in the background."""

from celery import shared_task
from django.db import OperationalError

from unsubscribe.models import UnsubscribeRequest


@shared_task(
    name="unsubscribe.apply_request",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=None,
)
def apply_unsubscribe_request(request_id: int) -> None:
    from unsubscribe import services

    request = UnsubscribeRequest.objects.filter(pk=request_id).first()
    if request is None or request.applied_at is not None:
        return
    services.apply(request)


@shared_task(name="unsubscribe.apply_pending")
def apply_pending_requests() -> int:
    """The safety net: requests older than half a minute whose task was lost."""
    from unsubscribe import services

    return services.apply_pending()
