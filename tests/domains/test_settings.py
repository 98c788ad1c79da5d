"""The domain-health settings: the service refuses to start with ones it cannot use."""

from __future__ import annotations

import pytest
from django.test import override_settings

from compliance.domains import system_checks
from tests.support import run_manage, service_env


def errors(check, **values):
    with override_settings(**values):
        return [(e.id, e.msg) for e in check(None)]


def test_defaults_are_the_system_resolver_3_seconds_and_a_daily_check(settings):
    assert settings.DOMAIN_NAMESERVERS == []
    assert settings.DOMAIN_DNS_TIMEOUT == 3.0
    assert settings.CELERY_BEAT_SCHEDULE["check-sending-domains"]["schedule"] == 86400


@pytest.mark.parametrize("nameservers", [[], ["127.0.0.1"], ["127.0.0.1:5353", "[::1]:53"]])
def test_nameservers_given_as_addresses_are_accepted(nameservers):
    assert errors(system_checks.check_domain_nameservers, DOMAIN_NAMESERVERS=nameservers) == []


@pytest.mark.parametrize(
    ("nameservers", "words"),
    [
        (["dns.google"], "'dns.google' is not an IP address"),
        (["127.0.0.1:0"], "the port must be a number from 1 to 65535"),
    ],
)
def test_a_nameserver_that_is_no_address_is_refused(nameservers, words):
    [(check, message)] = errors(
        system_checks.check_domain_nameservers, DOMAIN_NAMESERVERS=nameservers
    )
    assert check == "domains.E001"
    assert message.startswith("DOMAIN_NAMESERVERS cannot be used") and words in message


def test_a_timeout_that_is_not_positive_is_refused():
    [(check, message)] = errors(system_checks.check_domain_numbers, DOMAIN_DNS_TIMEOUT=0)
    assert (check, message) == ("domains.E002", "DOMAIN_DNS_TIMEOUT must be more than 0, got 0")


def test_the_service_refuses_to_start_and_names_the_variables():
    env = service_env(DOMAIN_NAMESERVERS="resolver.example", DOMAIN_CHECK_EVERY_SECONDS="-1")

    result = run_manage("check", env=env)

    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert "(domains.E001) DOMAIN_NAMESERVERS cannot be used" in stderr
    assert "(domains.E002) DOMAIN_CHECK_EVERY_SECONDS must be more than 0, got -1.0" in stderr
    assert "Traceback" not in stderr
