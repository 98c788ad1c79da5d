"""Every write of the domains app: sending domains, and the checks kept as their history."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import transaction

from compliance.check_results import Check, verdict
from compliance.domains import checks as domain_checks
from compliance.domains.models import DomainCheck, SendingDomain
from compliance.errors import ServiceError
from compliance.models import Tenant


def add_sending_domain(
    *, domain: str, selectors: Sequence[str] = (), tenant: Tenant | None = None
) -> SendingDomain:
    """Watch `domain`. Raises ServiceError (code "invalid") for a malformed domain or selector,
    ("exists") for a domain already watched."""
    try:
        name = domain_checks.normalise_domain(domain)
        selectors = list(dict.fromkeys(domain_checks.normalise_selector(s) for s in selectors))
    except ValueError as exc:
        raise ServiceError(str(exc), code="invalid") from exc
    with transaction.atomic():
        if SendingDomain.objects.filter(domain=name).exists():
            raise ServiceError(f"{name} is already a sending domain", code="exists")
        return SendingDomain.objects.create(domain=name, dkim_selectors=selectors, tenant=tenant)


def check_now(
    sending_domain: SendingDomain,
    *,
    selectors: Sequence[str] | None = None,
    nameservers: Sequence[str] | None = None,
) -> DomainCheck:
    """Read the domain's DNS now (its own selectors unless others are given, the configured
    nameservers unless others are given) and keep the result in its history. Raises
    ValueError for a malformed selector or nameserver."""
    checks = domain_checks.check_domain(
        sending_domain.domain,
        selectors=sending_domain.dkim_selectors if selectors is None else selectors,
        nameservers=settings.DOMAIN_NAMESERVERS if nameservers is None else nameservers,
        timeout=settings.DOMAIN_DNS_TIMEOUT,
    )
    return record_check(sending_domain, checks)


def record_check(sending_domain: SendingDomain, checks: Sequence[Check]) -> DomainCheck:
    """Keep checks made elsewhere (`manage.py check_domain`) in the domain's history."""
    return DomainCheck.objects.create(
        domain=sending_domain,
        verdict=verdict(checks),
        checks=[check.as_dict() for check in checks],
    )
