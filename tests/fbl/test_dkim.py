"""fbl.dkim against a real signature, a real key in a real DNS server (dnsmasq on loopback)."""

from __future__ import annotations

import re
import string

import dns.nameserver
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fbl.dkim import Signature, resolver_for, trusted_domain, verify
from tests.dns_server import DnsServer, dns_server_running

from .messages import require_fixtures
from .signing import dkim_sign, key_record, new_key

DOMAIN = "fbl.example-provider.test"
KEY_NAME = f"s1._domainkey.{DOMAIN}"
TIMEOUT = 0.5  # seconds: every lookup here goes to loopback


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


def sign(message: bytes, key: rsa.RSAPrivateKey, *, selector: str = "s1", **options) -> bytes:
    return dkim_sign(message, key, domain=DOMAIN, selector=selector, **options)


@pytest.fixture(scope="module")
def report() -> bytes:
    """A real feedback-loop report (Return Path's FBL), with the CRLF line ends of the wire."""
    return re.sub(rb"\r?\n", b"\r\n", (require_fixtures() / "arf" / "arf-15.eml").read_bytes())


@pytest.fixture(scope="module")
def signed(report, key) -> bytes:
    return sign(report, key)


@pytest.fixture(scope="module")
def provider(key):
    """One DNS server for the module, publishing the provider's key (and two broken ones)."""
    records = {
        KEY_NAME: key_record(key),
        f"revoked._domainkey.{DOMAIN}": "v=DKIM1; k=rsa; p=",
        f"garbled._domainkey.{DOMAIN}": "v=DKIM1; k=rsa; p=not*base64",
    }
    with dns_server_running(records) as server:
        yield server


@pytest.fixture(scope="module")
def resolver(provider):
    return resolver_for([provider.nameserver], timeout=TIMEOUT)


def only(signatures: tuple[Signature, ...]) -> Signature:
    assert len(signatures) == 1, signatures
    return signatures[0]


# --- verify ------------------------------------------------------------------------------------


def test_a_signed_report_passes_and_is_trusted_for_its_parent_domain(signed, resolver):
    signatures = verify(signed, resolver=resolver)
    assert only(signatures) == Signature(DOMAIN, "s1", "pass", "signature verified")
    assert trusted_domain(signatures, ["example-provider.test"]) == DOMAIN
    assert trusted_domain(signatures, ["other-provider.test"]) is None


def test_an_rsa_sha1_signature_is_not_accepted(report, key, resolver):
    result = only(verify(sign(report, key, signature_algorithm=b"rsa-sha1"), resolver=resolver))
    assert result.result == "fail"
    assert "RFC 8301" in result.reason
    assert trusted_domain((result,), ["example-provider.test"]) is None


def test_a_body_length_limit_is_not_trusted_since_text_can_be_appended(report, key, resolver):
    limited = sign(report, key, length=True)
    result = only(verify(limited + b"Appended after signing.\r\n", resolver=resolver))
    assert result.result == "fail"
    assert "l=" in result.reason


def test_a_key_longer_than_one_txt_string_is_served_in_pieces(key, provider):
    assert len(key_record(key)) > 255  # so the record really is several character-strings
    answer = resolver_for([provider.nameserver], timeout=TIMEOUT).resolve(KEY_NAME, "TXT")
    assert len(answer[0].strings) > 1
    assert b"".join(answer[0].strings).decode() == key_record(key)


def test_a_body_altered_after_signing_fails(signed, resolver):
    altered = signed.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    assert altered != signed
    assert only(verify(altered, resolver=resolver)) == Signature(
        DOMAIN, "s1", "fail", "body hash did not verify"
    )


def test_a_signed_header_altered_after_signing_fails(signed, resolver):
    altered = signed.replace(b"Subject: Abuse Report", b"Subject: Abuse Report (edited)")
    assert altered != signed
    signature = only(verify(altered, resolver=resolver))
    assert (signature.result, signature.reason) == ("fail", "signature did not verify")
    assert trusted_domain([signature], [DOMAIN]) is None


def test_an_unsigned_header_may_change(signed, resolver):
    altered = signed.replace(b"Received: ", b"Received: from somewhere else ", 1)
    assert only(verify(altered, resolver=resolver)).result == "pass"


def test_an_unpublished_selector_is_a_permanent_error(report, key, resolver):
    signature = only(verify(sign(report, key, selector="s2"), resolver=resolver))
    assert signature == Signature(
        DOMAIN, "s2", "permerror", f"no key published at s2._domainkey.{DOMAIN}"
    )


@pytest.mark.parametrize("selector", ["revoked", "garbled"])
def test_an_unusable_key_record_is_a_permanent_error(report, key, resolver, selector):
    signature = only(verify(sign(report, key, selector=selector), resolver=resolver))
    assert signature.result == "permerror"
    assert signature.reason.startswith(f"bad key record at {selector}._domainkey.{DOMAIN}: ")


def test_a_key_that_does_not_match_fails(report, resolver):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = only(verify(sign(report, other), resolver=resolver))
    assert (signature.result, signature.reason) == ("fail", "signature did not verify")


def test_no_answer_from_dns_is_a_temporary_error(dns_server: DnsServer, key, signed):
    dns_server.set_txt(KEY_NAME, key_record(key))
    resolver = resolver_for([dns_server.nameserver], timeout=TIMEOUT)
    assert only(verify(signed, resolver=resolver)).result == "pass"

    dns_server.stop()
    assert only(verify(signed, resolver=resolver)) == Signature(
        DOMAIN, "s1", "temperror", f"DNS timeout looking up {KEY_NAME}"
    )


def test_every_signature_gets_its_own_result(report, key, resolver):
    twice = sign(sign(report, key, selector="s2"), key)  # the newest signature comes first
    assert [(s.selector, s.result) for s in verify(twice, resolver=resolver)] == [
        ("s1", "pass"),
        ("s2", "permerror"),
    ]


def test_a_message_without_a_signature_has_no_results(report, resolver):
    assert verify(report, resolver=resolver) == ()
    assert verify(b"", resolver=resolver) == ()
    assert trusted_domain((), ["example-provider.test"]) is None


def test_a_truncated_signature_from_the_corpus_is_a_permanent_error(resolver):
    # arf-20.eml carries a DKIM-Signature cut short to "d=example.net; ..." by whoever shared it.
    raw = (require_fixtures() / "arf" / "arf-20.eml").read_bytes()
    signature = only(verify(raw, resolver=resolver))
    assert (signature.domain, signature.result) == ("example.net", "permerror")
    assert signature.reason


HOSTILE = {
    "garbage": b"garbage",
    "empty": b"",
    "missing b=": b"v=1; a=rsa-sha256; d=%s; s=s1; h=from; bh=AAAA" % DOMAIN.encode(),
    "wrong b=": b"v=1; a=rsa-sha256; d=%s; s=s1; h=from; bh=AAAA; b=AAAA" % DOMAIN.encode(),
    "duplicate tags": b"v=1; d=a.test; d=b.test; s=s1; h=from; bh=AAAA; b=AAAA",
    "unknown algorithm": b"v=1; a=rot13; d=a.test; s=s1; h=from; bh=AAAA; b=AAAA",
    "bad canonicalization": b"v=1; a=rsa-sha256; c=fancy/odd; d=%s; s=s1; h=from; bh=AAAA; b=AAAA"
    % DOMAIN.encode(),
    "huge d=": b"v=1; a=rsa-sha256; d=" + b"a" * 100_000 + b"; s=s1; h=from; bh=AAAA; b=AAAA",
    "d= longer than a DNS name": b"v=1; a=rsa-sha256; d="
    + b".".join([b"a" * 63] * 5)
    + b"; s=s1; h=from; bh=AAAA; b=AAAA",
    "empty labels": b"v=1; a=rsa-sha256; d=a..test; s=.; h=from; bh=AAAA; b=AAAA",
    "huge l=": b"v=1; a=rsa-sha256; d=%s; s=s1; l=99999999999999999999; h=from; bh=AAAA; b=AAAA"
    % DOMAIN.encode(),
    "signed in the future": b"v=1; a=rsa-sha256; d=a.test; s=s1; t=99999999999; h=from; bh=AAAA;"
    b" b=AAAA",
    "not UTF-8": b"v=1; a=rsa-sha256; d=\xff\xfe.test; s=\x80; h=from; bh=AAAA; b=AAAA",
    "huge h=": b"v=1; a=rsa-sha256; d=%s; s=s1; h=%s; bh=AAAA; b=AAAA"
    % (DOMAIN.encode(), b":".join([b"from"] * 50_000)),
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_signature_never_passes_and_never_raises(report, resolver, value):
    signature = only(verify(b"DKIM-Signature: " + value + b"\r\n" + report, resolver=resolver))
    assert signature.result in ("fail", "permerror")
    assert signature.reason


def test_a_message_dkimpy_cannot_split_still_gets_one_result_per_signature(resolver):
    raw = b"DKIM-Signature: v=1; d=Evil.TEST; s=x\r\nthis line has no colon\r\n\r\nbody\r\n"
    signature = only(verify(raw, resolver=resolver))
    assert (signature.domain, signature.selector, signature.result) == (
        "evil.test",
        "x",
        "permerror",
    )
    assert signature.reason.startswith("unreadable message: ")
    assert verify(b" starts with a fold\r\n\r\n", resolver=resolver) == ()


TAG_VALUE = st.text(
    alphabet=string.ascii_letters + string.digits + "+/=.-_:@ \t", max_size=40
) | st.sampled_from([DOMAIN, "s1", "rsa-sha256", "relaxed/simple", "from:to:subject"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tags=st.dictionaries(st.sampled_from(list("vabcdhilqstxz") + ["bh"]), TAG_VALUE, max_size=12),
    noise=st.binary(max_size=60),
)
def test_random_signature_headers_never_pass_and_never_raise(report, resolver, tags, noise):
    value = "; ".join(f"{k}={v}" for k, v in tags.items()).encode() + noise
    signatures = verify(b"DKIM-Signature: " + value + b"\r\n" + report, resolver=resolver)
    assert all(s.result != "pass" and s.reason for s in signatures)


# --- trusted_domain ----------------------------------------------------------------------------


def passing(domain: str) -> Signature:
    return Signature(domain, "s", "pass", "signature verified")


@pytest.mark.parametrize(
    ("domain", "configured", "trusted"),
    [
        ("yahoo.com", ["yahoo.com"], True),
        ("fbl.yahoo.com", ["yahoo.com"], True),
        ("a.b.fbl.yahoo.com", ["yahoo.com"], True),
        ("fbl.yahoo.com", ["YAHOO.com."], True),
        ("fbl.yahoo.com.", ["yahoo.com"], True),
        ("yahoo.com", ["fbl.yahoo.com"], False),
        ("evilyahoo.com", ["yahoo.com"], False),
        ("yahoo.com.evil.net", ["yahoo.com"], False),
        ("yahoo.co", ["yahoo.com"], False),
        ("yahoo.com", [], False),
        ("yahoo.com", [""], False),
        ("", [""], False),
    ],
)
def test_trusted_domain_takes_a_configured_domain_or_its_subdomains(domain, configured, trusted):
    assert trusted_domain([passing(domain)], configured) == (domain if trusted else None)


def test_trusted_domain_takes_the_first_passing_configured_signature():
    signatures = [
        Signature("yahoo.com", "s", "fail", "signature did not verify"),
        Signature("yahoo.com", "s", "temperror", "DNS timeout"),
        passing("esp.example"),
        passing("fbl.yahoo.com"),
        passing("yahoo.com"),
    ]
    assert trusted_domain(signatures, ["yahoo.com"]) == "fbl.yahoo.com"
    assert trusted_domain(iter(signatures), iter(["esp.example", "yahoo.com"])) == "esp.example"
    assert trusted_domain(signatures, "yahoo.com") == "fbl.yahoo.com"


# --- resolver_for ------------------------------------------------------------------------------


def servers(resolver) -> list[tuple[str, int]]:
    assert all(isinstance(n, dns.nameserver.Do53Nameserver) for n in resolver.nameservers)
    return [(n.address, n.port) for n in resolver.nameservers]


def test_resolver_for_reads_addresses_and_ports():
    resolver = resolver_for(
        ["192.0.2.1", "192.0.2.2:5353", " 10.0.0.1 ", "::1", "[2001:db8::1]", "[::1]:5300"],
        timeout=1.5,
    )
    assert servers(resolver) == [
        ("192.0.2.1", 53),
        ("192.0.2.2", 5353),
        ("10.0.0.1", 53),
        ("::1", 53),
        ("2001:db8::1", 53),
        ("::1", 5300),
    ]
    assert (resolver.timeout, resolver.lifetime) == (1.5, 1.5)
    assert servers(resolver_for("127.0.0.1:5353")) == [("127.0.0.1", 5353)]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("localhost", "'localhost' is not an IP address"),
        ("dns.example:53", "'dns.example' is not an IP address"),
        ("", "'' is not an IP address"),
        ("192.0.2.1:", "the port must be a number from 1 to 65535"),
        ("192.0.2.1:0", "the port must be a number from 1 to 65535"),
        ("192.0.2.1:65536", "the port must be a number from 1 to 65535"),
        ("192.0.2.1:dns", "the port must be a number from 1 to 65535"),
        ("[::1", "write an IPv6 address as [ADDRESS]:PORT"),
        ("[::1]53", "write an IPv6 address as [ADDRESS]:PORT"),
        ("[example.test]:53", "'example.test' is not an IP address"),
        ("256.0.0.1", "'256.0.0.1' is not an IP address"),
    ],
)
def test_resolver_for_rejects_what_is_not_an_address(entry, message):
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        resolver_for(["192.0.2.1", entry])
    assert repr(entry) in str(raised.value)


def test_resolver_for_rejects_a_timeout_that_is_not_positive():
    with pytest.raises(ValueError, match="timeout must be positive"):
        resolver_for(["192.0.2.1"], timeout=0)
