"""A private DNS server (dnsmasq on loopback) publishing one zone of test domains, each set up
well or broken in one way, and the DKIM keys they publish (made with cryptography)."""

from __future__ import annotations

import base64
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.dns_server import dns_server_running

TIMEOUT = 1.0  # seconds per lookup: every lookup here goes to loopback


def rsa_record(bits: int) -> str:
    if bits >= 1024:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    else:
        # cryptography refuses to generate keys this weak; a verifier only reads the modulus,
        # so any odd number of that many bits is such a key's public half.
        modulus = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        key = rsa.RSAPublicNumbers(65537, modulus).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def ed25519_record() -> str:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


GOOD_DMARC = "v=DMARC1; p=reject; rua=mailto:dmarc@example.test; adkim=r; aspf=s"


def well_set_up(domain: str, key: str, *, spf: str | None = "v=spf1 ip4:192.0.2.0/24 -all") -> dict:
    """TXT records of a domain that meets every rule with `key` at selector s1."""
    records = {
        f"_dmarc.{domain}": f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}",
        f"s1._domainkey.{domain}": key,
    }
    if spf is not None:
        records[domain] = spf
    return records


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    return {
        "2048": rsa_record(2048),
        "1024": rsa_record(1024),
        "512": rsa_record(512),
        "ed25519": ed25519_record(),
    }


@pytest.fixture(scope="session")
def zone(keys):
    """The running server; `zone.nameserver` is its "127.0.0.1:PORT"."""
    txt = {
        # Good: SPF through an include, DKIM 2048, DMARC reject with reports, MX.
        "example.test": "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test -all",
        "_spf.example.test": "v=spf1 ip4:198.51.100.0/24 -all",
        "_dmarc.example.test": GOOD_DMARC,
        "s1._domainkey.example.test": keys["2048"],
        "k1024._domainkey.example.test": keys["1024"],
        "k512._domainkey.example.test": keys["512"],
        "ed._domainkey.example.test": keys["ed25519"],
        "revoked._domainkey.example.test": "v=DKIM1; k=rsa; p=",
        "testing._domainkey.example.test": keys["2048"] + "; t=y",
        # A subdomain with no DMARC record of its own: example.test's applies.
        "mail.example.test": "v=spf1 ip4:192.0.2.10 -all",
        "s1._domainkey.mail.example.test": keys["2048"],
        # TXT records, but none of them SPF.
        **well_set_up("nospf.test", keys["2048"], spf=None),
        "nospf.test": "google-site-verification=abc123",
        **well_set_up("twospf.test", keys["2048"], spf=None),
        "twospf.test": ["v=spf1 ip4:192.0.2.1 -all", "v=spf1 ip4:192.0.2.2 -all"],
        **well_set_up("badspf.test", keys["2048"], spf="v=spf1 ip4:192.0.2.300 -all"),
        # 2 includes, each with 5 more: 12 lookups.
        **well_set_up(
            "manyspf.test",
            keys["2048"],
            spf="v=spf1 include:a.manyspf.test include:b.manyspf.test -all",
        ),
        "a.manyspf.test": "v=spf1 "
        + " ".join(f"include:c{i}.manyspf.test" for i in range(5))
        + " -all",
        "b.manyspf.test": "v=spf1 "
        + " ".join(f"include:c{i}.manyspf.test" for i in range(5, 10))
        + " -all",
        **{f"c{i}.manyspf.test": f"v=spf1 ip4:203.0.113.{i} -all" for i in range(10)},
        # SPF whose include lives in a zone that answers SERVFAIL.
        **well_set_up(
            "brokeninclude.test", keys["2048"], spf="v=spf1 include:_spf.broken.test -all"
        ),
        # Reports to another domain that does not say it takes them (RFC 9990 section 4).
        **well_set_up("extrua.test", keys["2048"]),
        "_dmarc.extrua.test": "v=DMARC1; p=reject; rua=mailto:reports@elsewhere.test",
        "elsewhere.test": "v=spf1 -all",
        # An explanation (exp=) checkdmarc reads on a lookup path of its own.
        **well_set_up("expspf.test", keys["2048"], spf="v=spf1 -all exp=why.expspf.test"),
        "why.expspf.test": "Mail from %{d} comes only from its own servers",
        "nodmarc.test": "v=spf1 -all",
        "s1._domainkey.nodmarc.test": keys["2048"],
        **well_set_up("monitor.test", keys["2048"]),
        "_dmarc.monitor.test": "v=DMARC1; p=none; rua=mailto:dmarc@monitor.test",
        **well_set_up("norua.test", keys["2048"]),
        "_dmarc.norua.test": "v=DMARC1; p=reject",
        **well_set_up("nomx.test", keys["2048"]),
        **well_set_up("addressonly.test", keys["2048"]),
        **well_set_up("nullmx.test", keys["2048"]),
    }
    mx = {
        name: [(10, f"mx.{name}")]
        for name in [
            "example.test",
            "mail.example.test",
            "nospf.test",
            "twospf.test",
            "badspf.test",
            "manyspf.test",
            "brokeninclude.test",
            "nodmarc.test",
            "monitor.test",
            "norua.test",
            "extrua.test",
            "elsewhere.test",
            "expspf.test",
        ]
    }
    mx["nullmx.test"] = [(0, ".")]
    with dns_server_running(txt) as server:
        server.publish(
            mx=mx, addresses={"addressonly.test": "192.0.2.25"}, servfail=["broken.test"]
        )
        yield server
