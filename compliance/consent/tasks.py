from celery import shared_task

from compliance.consent import double_opt_in


@shared_task(name="consent.expire_confirmations")
def expire_confirmations() -> int:
    """Sign-ups nobody confirmed in time are marked expired (their links already refuse)."""
    return double_opt_in.expire()
