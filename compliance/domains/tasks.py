from celery import shared_task
from django.db import DatabaseError

from compliance.domains import services
from compliance.domains.models import SendingDomain


@shared_task(name="domains.check_all")
def check_all() -> int:
    """Queue a check of every sending domain (celery beat, DOMAIN_CHECK_EVERY_SECONDS): one task
    each, so a domain whose DNS is slow holds up no other. Returns how many were queued."""
    ids = list(SendingDomain.objects.values_list("id", flat=True))
    for domain_id in ids:
        check.delay(domain_id)
    return len(ids)


@shared_task(
    name="domains.check",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def check(domain_id: int) -> str | None:
    """Check one sending domain and keep the result; its verdict, or None if it is gone. DNS
    trouble is a result, not an error: only a database that cannot store it is retried."""
    domain = SendingDomain.objects.filter(pk=domain_id).first()
    if domain is None:
        return None
    return services.check_now(domain).verdict
