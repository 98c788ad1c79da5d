"""Reads of the domains app."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from compliance.domains.models import DomainCheck, SendingDomain


def domains_for(tenant_ids: frozenset[int] | None) -> QuerySet[SendingDomain]:
    """The sending domains staff limited to `tenant_ids` see (None: every domain, the
    operator's own included; a set: only those tenants' domains)."""
    domains = SendingDomain.objects.all()
    if tenant_ids is not None:
        domains = domains.filter(tenant_id__in=tenant_ids)
    return domains


def _latest(field: str) -> Subquery:
    # One probe of the index domaincheck_latest per domain, however long its history.
    return Subquery(
        DomainCheck.objects.filter(domain=OuterRef("pk"))
        .order_by("-checked_at", "-id")
        .values(field)[:1]
    )


def with_latest_check(domains: QuerySet[SendingDomain]) -> QuerySet[SendingDomain]:
    """`domains` with the id, verdict and time of each one's latest check (None if never
    checked) as latest_id, latest_verdict, latest_checked_at: one query for a whole list."""
    return domains.annotate(
        latest_id=_latest("id"),
        latest_verdict=_latest("verdict"),
        latest_checked_at=_latest("checked_at"),
    )


def latest_checks(tenant_ids: frozenset[int] | None) -> list[DomainCheck]:
    """The latest check of each sending domain staff limited to `tenant_ids` see, by domain
    name; `check.domain` (and its tenant) come with it. A domain never checked has none."""
    latest = domains_for(tenant_ids).annotate(latest=_latest("id")).values("latest")
    return list(
        DomainCheck.objects.filter(id__in=latest)
        .select_related("domain", "domain__tenant")
        .order_by("domain__domain")
    )
