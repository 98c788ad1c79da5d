"""One signing key and one private DNS server (dnsmasq on loopback) publishing it, per module."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dns_server import DnsServer, dns_server_running

from .messages import KEY_NAME, compose, key_record, new_key, sign


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def dns(key) -> DnsServer:
    with dns_server_running({KEY_NAME: key_record(key)}) as server:
        yield server


@pytest.fixture(scope="module")
def good(key) -> bytes:
    """The good commercial message, signed."""
    return sign(compose(), key)


@pytest.fixture
def dkim_dns(settings, dns) -> DnsServer:
    """The service asks the private DNS server for DKIM keys."""
    settings.DKIM_NAMESERVERS = [dns.nameserver]
    settings.DKIM_DNS_TIMEOUT = 1.0
    return dns
