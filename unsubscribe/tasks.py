"""Applying recorded opt-outs in the background."""

from celery import shared_task


@shared_task(name="unsubscribe.apply_pending")
def apply_pending_requests() -> int:
    """Apply the one-click opt-outs the web tier recorded (run every few seconds by beat)."""
    from unsubscribe import services

    return services.apply_pending_opt_outs()
