"""Delivery tasks: one endpoint at a time, and a sweep for retries that fall due."""

from celery import shared_task

from compliance.webhooks import dispatch
from compliance.webhooks.services import delivery


@shared_task(name="webhooks.deliver")
def deliver(endpoint_id: int) -> dict:
    tally = delivery.deliver_endpoint(endpoint_id)
    return {"delivered": tally.delivered, "failed": tally.failed, "dead": tally.dead}


@shared_task(name="webhooks.sweep")
def sweep() -> int:
    """Nudge every endpoint with a delivery due (retries, and anything a nudge missed), and stop
    the clocks a worker stopped on its way to doing so."""
    due = delivery.due_endpoints()
    dispatch.kick(due, force=True)
    delivery.stop_open_clocks()
    return len(due)
