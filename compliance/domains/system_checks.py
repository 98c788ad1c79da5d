"""System checks of the domain-health settings: the service refuses to start misconfigured.

domains.E001 DOMAIN_NAMESERVERS, domains.E002 DOMAIN_DNS_TIMEOUT and DOMAIN_CHECK_EVERY_SECONDS.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from compliance.domains.resolver import CheckResolver


@register
def check_domain_nameservers(app_configs=None, **kwargs) -> list[Error]:
    if not settings.DOMAIN_NAMESERVERS:
        return []  # the system resolver
    try:
        CheckResolver(settings.DOMAIN_NAMESERVERS, timeout=1.0)
    except ValueError as exc:
        return [
            Error(
                f"DOMAIN_NAMESERVERS cannot be used: {exc}",
                hint="List DNS servers as IP, IP:PORT or [IPv6]:PORT, comma-separated.",
                id="domains.E001",
            )
        ]
    return []


@register
def check_domain_numbers(app_configs=None, **kwargs) -> list[Error]:
    schedule = settings.CELERY_BEAT_SCHEDULE.get("check-sending-domains", {}).get("schedule")
    errors = []
    for name, value in [
        ("DOMAIN_DNS_TIMEOUT", settings.DOMAIN_DNS_TIMEOUT),
        ("DOMAIN_CHECK_EVERY_SECONDS", schedule),
    ]:
        if value is not None and value <= 0:
            errors.append(
                Error(
                    f"{name} must be more than 0, got {value}",
                    hint=f"Set {name} as README.md's Configuration table describes.",
                    id="domains.E002",
                )
            )
    return errors
