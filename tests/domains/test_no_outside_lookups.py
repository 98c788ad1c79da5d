"""Nothing a domain check does leaves for the internet: every packet goes to the configured
nameserver, no host name is resolved by the system, and checkdmarc fetches nothing over HTTP
(its BIMI and MTA-STS checks, which would, are not used; its public-suffix list is the copy
bundled with publicsuffixlist)."""

from __future__ import annotations

import socket

import pytest

from compliance.domains.checks import check_domain

from .conftest import TIMEOUT

CASES = [
    ("example.test", ["s1", "k1024", "nosuchselector"]),
    ("mail.example.test", ["s1"]),  # DMARC found by walking up to example.test
    ("manyspf.test", []),  # a dozen includes
    ("extrua.test", ["s1"]),  # rua at another domain: its authorisation and MX are looked up
    ("expspf.test", ["s1"]),  # exp= is read on checkdmarc's own lookup path
    ("brokeninclude.test", []),
    ("addressonly.test", []),
    ("nosuchdomain.test", []),
]


@pytest.fixture
def destinations(zone, monkeypatch):
    """Where every socket of this process sends or connects to, and each system lookup."""
    seen: list = []
    real_sendto = socket.socket.sendto
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def sendto(self, data, *args):
        # The test's SERVFAIL upstream answers dnsmasq from this process: not the check's.
        if self.getsockname()[1] != zone.upstream_port:
            seen.append(args[-1])
        return real_sendto(self, data, *args)

    def connect(self, address):
        seen.append(address)
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        seen.append(("getaddrinfo", host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def test_every_lookup_goes_to_the_configured_nameserver(zone, destinations):
    for domain, selectors in CASES:
        check_domain(domain, selectors=selectors, nameservers=[zone.nameserver], timeout=TIMEOUT)

    assert len(destinations) > 50
    assert {tuple(d[:2]) for d in destinations} == {("127.0.0.1", zone.port)}


def test_reports_to_another_domain_that_does_not_take_them_are_a_warning(zone):
    checks = check_domain("extrua.test", selectors=["s1"], nameservers=[zone.nameserver])
    dmarc = next(c for c in checks if c.name == "dmarc")

    assert dmarc.status == "warn"
    assert "elsewhere.test does not indicate that it accepts DMARC reports" in dmarc.message


def test_an_spf_explanation_is_read_from_the_configured_nameserver(zone):
    checks = check_domain("expspf.test", selectors=["s1"], nameservers=[zone.nameserver])

    assert {c.name: c.status for c in checks}["spf"] == "pass"
