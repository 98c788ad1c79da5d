"""Checks are kept as each domain's history: by the service, by the daily beat task, and read
back one latest check per domain for the dashboard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.celery import app
from compliance.domains import selectors, services, tasks
from compliance.domains.models import DomainCheck, SendingDomain
from compliance.errors import ServiceError

from .conftest import TIMEOUT


@pytest.fixture
def dns(settings, zone):
    settings.DOMAIN_NAMESERVERS = [zone.nameserver]
    settings.DOMAIN_DNS_TIMEOUT = TIMEOUT
    return zone


def test_a_check_is_kept_with_its_verdict_and_every_check(db, dns):
    domain = services.add_sending_domain(domain="Example.TEST", selectors=["s1", "K1024"])

    check = services.check_now(domain)

    assert domain.domain == "example.test"
    assert domain.dkim_selectors == ["s1", "k1024"]
    stored = DomainCheck.objects.get(pk=check.pk)
    assert stored.domain == domain
    assert stored.verdict == "warn"  # the 1024-bit key
    assert [row["name"] for row in stored.checks] == [
        "spf",
        "spf_lookups",
        "dkim:s1",
        "dkim:k1024",
        "dmarc",
        "mx",
    ]
    assert {row["status"] for row in stored.checks} == {"pass", "warn"}


def test_every_check_is_kept_as_history(db, dns):
    domain = services.add_sending_domain(domain="example.test", selectors=["s1"])

    services.check_now(domain)
    services.check_now(domain, selectors=["nosuchselector"])

    assert [c.verdict for c in domain.checks.order_by("checked_at", "id")] == ["pass", "fail"]


@pytest.mark.parametrize(
    ("domain", "selectors", "code"),
    [
        ("not a domain", [], "invalid"),
        ("example.test", ["bad selector!"], "invalid"),
    ],
)
def test_a_malformed_domain_or_selector_is_refused(db, domain, selectors, code):
    with pytest.raises(ServiceError) as refused:
        services.add_sending_domain(domain=domain, selectors=selectors)
    assert refused.value.code == code


def test_a_domain_is_watched_once(db):
    services.add_sending_domain(domain="example.test")
    with pytest.raises(ServiceError, match="already a sending domain"):
        services.add_sending_domain(domain="EXAMPLE.test.")


def test_the_beat_task_checks_every_domain_daily(db, dns, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["check-sending-domains"]
    assert entry["task"] == tasks.check_all.name == "domains.check_all"
    assert entry["schedule"] == 24 * 3600
    assert "domains.check_all" in app.tasks and "domains.check" in app.tasks

    good = services.add_sending_domain(domain="example.test", selectors=["s1"])
    bad = services.add_sending_domain(domain="nodmarc.test", selectors=["s1"])

    assert tasks.check_all.delay().get() == 2
    assert good.checks.get().verdict == "pass"
    assert bad.checks.get().verdict == "fail"


def test_a_check_of_a_domain_gone_since_it_was_queued_does_nothing(db):
    assert tasks.check.delay(123456).get() is None


def test_latest_checks_gives_each_domains_newest_check_for_the_staff_tenants(db, make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    ours = SendingDomain.objects.create(domain="operator.test")
    a = SendingDomain.objects.create(domain="acme.test", tenant=acme)
    g = SendingDomain.objects.create(domain="globex.test", tenant=globex)
    SendingDomain.objects.create(domain="never-checked.test", tenant=acme)
    now = timezone.now()
    for domain, verdicts in [(ours, "fp"), (a, "pfw"), (g, "wp")]:
        for days, verdict in enumerate(reversed(verdicts)):
            DomainCheck.objects.create(
                domain=domain,
                checked_at=now - timedelta(days=days),
                verdict={"p": "pass", "w": "warn", "f": "fail"}[verdict],
            )

    everything = selectors.latest_checks(None)
    only_acme = selectors.latest_checks(frozenset({acme.pk}))

    assert [(c.domain.domain, c.verdict) for c in everything] == [
        ("acme.test", "warn"),
        ("globex.test", "pass"),
        ("operator.test", "pass"),
    ]
    assert [(c.domain.domain, c.domain.tenant.slug, c.verdict) for c in only_acme] == [
        ("acme.test", "acme", "warn")
    ]
    assert selectors.latest_checks(frozenset()) == []
