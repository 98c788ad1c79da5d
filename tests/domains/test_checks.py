"""compliance.domains.checks against a real DNS server on loopback (dnsmasq), not a mock: each
test domain in conftest.py is set up well or broken in one way."""

from __future__ import annotations

import pytest

from compliance.check_results import verdict
from compliance.domains.checks import check_domain
from tests.dns_server import free_port

from .conftest import TIMEOUT


@pytest.fixture
def check(zone):
    """check("example.test", "s1") -> (verdict, {name: Check})."""

    def run(domain: str, *selectors: str, nameservers=None):
        results = check_domain(
            domain,
            selectors=selectors,
            nameservers=nameservers or [zone.nameserver],
            timeout=TIMEOUT,
        )
        return verdict(results), {c.name: c for c in results}

    return run


def statuses(checks: dict) -> dict[str, str]:
    return {name: c.status for name, c in checks.items()}


def test_a_well_set_up_domain_passes_every_check(check):
    result, checks = check("example.test", "s1")

    assert result == "pass"
    assert list(checks) == ["spf", "spf_lookups", "dkim:s1", "dmarc", "mx"]
    assert statuses(checks) == dict.fromkeys(checks, "pass")
    assert "include:_spf.example.test" in checks["spf"].message
    assert checks["spf_lookups"].message.startswith("1 of at most 10 DNS lookups")
    assert "RSA 2048-bit key" in checks["dkim:s1"].message
    assert "p=reject" in checks["dmarc"].message
    assert "dmarc@example.test" in checks["dmarc"].message
    assert "DKIM relaxed, SPF strict" in checks["dmarc"].message
    assert checks["mx"].message == "mx.example.test (10)"


def test_a_domain_without_spf_fails(check):
    result, checks = check("nospf.test", "s1")

    assert result == "fail"
    assert checks["spf"].status == "fail"
    assert "no SPF record" in checks["spf"].message
    assert checks["spf_lookups"].status == "fail"
    assert (checks["dkim:s1"].status, checks["dmarc"].status) == ("pass", "pass")


def test_two_spf_records_fail(check):
    result, checks = check("twospf.test", "s1")

    assert result == "fail"
    assert checks["spf"].status == "fail"
    assert "more than one SPF record" in checks["spf"].message
    assert "permerror" in checks["spf"].message


def test_broken_spf_syntax_fails_and_says_where(check):
    _, checks = check("badspf.test", "s1")

    assert checks["spf"].status == "fail"
    assert "192.0.2.300" in checks["spf"].message


def test_spf_over_ten_lookups_through_includes_fails_the_lookup_count(check):
    result, checks = check("manyspf.test", "s1")

    assert result == "fail"
    assert checks["spf"].status == "pass"  # the record itself is well formed
    assert checks["spf_lookups"].status == "fail"
    assert "12/10" in checks["spf_lookups"].message


def test_servfail_on_an_spf_include_is_shown_as_such(check):
    _, checks = check("brokeninclude.test", "s1")

    assert checks["spf"].status == "fail"
    assert checks["spf"].message.startswith("SERVFAIL")
    assert "_spf.broken.test" in checks["spf"].message


def test_a_domain_without_dmarc_fails(check):
    result, checks = check("nodmarc.test", "s1")

    assert result == "fail"
    assert checks["dmarc"].status == "fail"
    assert "no DMARC record at _dmarc.nodmarc.test" in checks["dmarc"].message


def test_dmarc_p_none_is_a_warning_not_a_failure(check):
    # Gmail and Yahoo accept p=none for bulk senders; it protects nobody, though.
    result, checks = check("monitor.test", "s1")

    assert result == "warn"
    assert checks["dmarc"].status == "warn"
    assert "p=none" in checks["dmarc"].message
    assert {c.status for n, c in checks.items() if n != "dmarc"} == {"pass"}


def test_dmarc_without_a_reporting_address_is_a_warning(check):
    _, checks = check("norua.test", "s1")

    assert checks["dmarc"].status == "warn"
    assert "no rua=" in checks["dmarc"].message


def test_a_subdomain_without_dmarc_falls_back_to_its_organisational_domain(check):
    result, checks = check("mail.example.test", "s1")

    assert result == "pass"
    assert checks["dmarc"].status == "pass"
    assert "organisational domain example.test" in checks["dmarc"].message
    assert "sp=reject" in checks["dmarc"].message


def test_a_missing_dkim_key_fails(check):
    result, checks = check("example.test", "s1", "nosuchselector")

    assert result == "fail"
    assert checks["dkim:s1"].status == "pass"
    assert checks["dkim:nosuchselector"].status == "fail"
    assert "no DKIM key published at nosuchselector._domainkey.example.test" in (
        checks["dkim:nosuchselector"].message
    )


@pytest.mark.parametrize(
    ("selector", "status", "words"),
    [
        ("k1024", "warn", "RSA 1024-bit key"),
        ("k512", "fail", "RSA 512-bit key"),
        ("ed", "pass", "ed25519 key"),
        ("revoked", "fail", "revoked"),
        ("testing", "warn", "t=y"),
    ],
)
def test_dkim_keys_are_judged_by_type_and_size(check, selector, status, words):
    _, checks = check("example.test", selector)

    assert checks[f"dkim:{selector}"].status == status
    assert words in checks[f"dkim:{selector}"].message


def test_without_a_selector_dkim_is_not_checked_and_says_so(check):
    result, checks = check("example.test")

    assert list(checks) == ["spf", "spf_lookups", "dkim", "dmarc", "mx"]
    assert checks["dkim"].status == "warn"
    assert result == "warn"


def test_no_mx_and_no_address_fails(check):
    _, checks = check("nomx.test", "s1")

    assert checks["mx"].status == "fail"
    assert "no MX record and no address" in checks["mx"].message


def test_no_mx_but_an_address_is_a_warning(check):
    _, checks = check("addressonly.test", "s1")

    assert checks["mx"].status == "warn"
    assert "192.0.2.25" in checks["mx"].message


def test_a_null_mx_fails(check):
    _, checks = check("nullmx.test", "s1")

    assert checks["mx"].status == "fail"
    assert "null MX" in checks["mx"].message


def test_a_domain_that_does_not_exist_is_nxdomain_in_every_check(check):
    result, checks = check("nosuchdomain.test", "s1")

    assert result == "fail"
    assert statuses(checks) == dict.fromkeys(checks, "fail")
    for c in checks.values():
        assert c.message.startswith("NXDOMAIN: nosuchdomain.test does not exist")


def test_servfail_is_shown_as_such_in_every_check(check):
    result, checks = check("broken.test", "s1")

    assert result == "fail"
    for c in checks.values():
        assert (c.status, c.message.split(":")[0]) == ("fail", "SERVFAIL")


def test_a_nameserver_that_does_not_answer_is_a_timeout_never_a_pass(check):
    silent = f"127.0.0.1:{free_port()}"  # nobody listens there

    result, checks = check("example.test", "s1", nameservers=[silent])

    assert result == "fail"
    for c in checks.values():
        assert c.status == "fail"
        assert c.message.startswith(f"DNS timeout: no answer for MX example.test from {silent}")


def test_a_check_reads_dns_afresh_each_time(zone, check, keys):
    # checkdmarc caches answers process-wide by name alone; a check must not see them.
    zone.set_txt("_dmarc.later.test", "v=DMARC1; p=reject; rua=mailto:d@later.test")
    zone.publish(mx={"later.test": [(10, "mx.later.test")]}, txt={"later.test": "v=spf1 -all"})
    assert check("later.test")[1]["dmarc"].status == "pass"

    zone.set_txt("_dmarc.later.test", "v=DMARC1; p=none; rua=mailto:d@later.test")

    assert check("later.test")[1]["dmarc"].status == "warn"


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("", "a domain name is needed"),
        ("localhost", "at least two labels"),
        ("exa mple.test", "is not a domain name"),
        ("-bad.test", "may hold only letters, digits and inner hyphens"),
    ],
)
def test_a_malformed_domain_is_refused_with_the_reason(domain, words):
    with pytest.raises(ValueError, match=words):
        check_domain(domain, nameservers=["127.0.0.1:1"], timeout=TIMEOUT)


def test_a_nameserver_that_is_a_host_name_is_refused():
    with pytest.raises(ValueError, match="is not an IP address"):
        check_domain("example.test", nameservers=["dns.google"], timeout=TIMEOUT)


def test_domains_are_lower_cased_and_idns_become_a_labels(check):
    from compliance.domains.checks import normalise_domain

    assert normalise_domain("Example.TEST.") == "example.test"
    assert normalise_domain("bücher.test") == "xn--bcher-kva.test"
