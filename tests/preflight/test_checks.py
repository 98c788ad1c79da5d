"""The pre-send checks on real messages, signed with dkimpy, their key served by dnsmasq."""

from __future__ import annotations

import pytest

from compliance.check_results import as_json
from compliance.preflight.checks import CHECK_NAMES, NotAMessage, check_message
from fbl.dkim import resolver_for
from tests.dns_server import free_port

from .messages import HTML, TEXT, UNSUBSCRIBE_URL, compose, sign

TIMEOUT = 1.0  # seconds: every lookup goes to loopback


@pytest.fixture(scope="module")
def resolver(dns):
    return resolver_for([dns.nameserver], timeout=TIMEOUT)


def run(raw: bytes, resolver, **options) -> dict[str, tuple[str, str]]:
    """{check name: (status, message)}, in the order answered."""
    return {c.name: (c.status, c.message) for c in check_message(raw, resolver=resolver, **options)}


def failing(results: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (status, _) in results.items() if status != "pass"}


def test_a_good_message_passes_every_check_in_the_documented_order(good, resolver):
    checks = check_message(good, resolver=resolver)
    assert (
        [c.name for c in checks]
        == list(CHECK_NAMES)
        == [
            "list_unsubscribe_https",
            "list_unsubscribe_post",
            "dkim_covers_list_unsubscribe",
            "dkim_valid",
            "dmarc_alignment",
            "unsubscribe_link_in_body",
            "postal_address",
            "subject",
        ]
    )
    assert {c.name: c.status for c in checks} == dict.fromkeys(CHECK_NAMES, "pass")
    assert as_json(checks)["verdict"] == "pass"
    messages = {c.name: c.message for c in checks}
    assert messages["list_unsubscribe_https"] == f"https URI: {UNSUBSCRIBE_URL}"
    assert messages["dkim_valid"] == "verified: d=example.test s=s1"
    assert "aligns with the verified DKIM signature of example.test" in messages["dmarc_alignment"]
    assert messages["unsubscribe_link_in_body"] == f"link 'Unsubscribe' to {UNSUBSCRIBE_URL}"
    assert messages["postal_address"] == "postal address: 12 Main Street, Springfield, IL 62704"


def _tampered(key) -> bytes:
    signed = sign(compose(), key)
    return signed.replace(b"20% off everything", b"90% off everything")


# Each bad message, and exactly the checks it fails, with words of their message.
BAD_MESSAGES = {
    "no List-Unsubscribe": (
        lambda key: sign(compose(list_unsubscribe=None), key),
        {"list_unsubscribe_https": "no List-Unsubscribe header"},
    ),
    "an http URI only": (
        lambda key: sign(compose(list_unsubscribe="<http://shop.example.test/u/tok123>"), key),
        {"list_unsubscribe_https": "only an http URI"},
    ),
    "a mailto URI only": (
        lambda key: sign(compose(list_unsubscribe="<mailto:unsubscribe@shop.example.test>"), key),
        {"list_unsubscribe_https": "no https URI, only mailto:"},
    ),
    "the wrong List-Unsubscribe-Post": (
        lambda key: sign(compose(list_unsubscribe_post="List-Unsubscribe=OneClick"), key),
        {"list_unsubscribe_post": "must be exactly List-Unsubscribe=One-Click"},
    ),
    "no List-Unsubscribe-Post": (
        lambda key: sign(compose(list_unsubscribe_post=None), key),
        {"list_unsubscribe_post": "no List-Unsubscribe-Post header"},
    ),
    "DKIM not signing the unsubscribe headers": (
        lambda key: sign(compose(), key, signed=["from", "to", "subject", "date"]),
        {
            "dkim_covers_list_unsubscribe": "d=example.test s=s1 does not sign list-unsubscribe "
            "or list-unsubscribe-post"
        },
    ),
    "the body changed after signing": (
        _tampered,
        {
            "dkim_valid": "body hash did not verify",
            "dkim_covers_list_unsubscribe": "which does not verify",
            "dmarc_alignment": "the DKIM signature of example.test does not verify",
        },
    ),
    "a From domain that does not align": (
        lambda key: sign(compose(from_="Shop <news@shop.other.test>"), key),
        {"dmarc_alignment": "DKIM signs for example.test, not under other.test"},
    ),
    "no unsubscribe link in the body": (
        lambda key: sign(
            compose(
                text="Our spring sale.\n\nExample Shop Ltd, 12 Main Street, Springfield, IL 62704",
                html=None,
            ),
            key,
        ),
        {"unsubscribe_link_in_body": "no visible link in the body says unsubscribe"},
    ),
    "no postal address": (
        lambda key: sign(
            compose(
                text=f"Our spring sale.\n\nUnsubscribe: {UNSUBSCRIBE_URL}\n",
                html=HTML.replace("12 Main Street<br>Springfield, IL 62704", ""),
            ),
            key,
        ),
        {"postal_address": "no postal address found in the body"},
    ),
    "an empty subject": (
        lambda key: sign(compose(subject=""), key),
        {"subject": "the Subject is empty"},
    ),
    "no subject": (
        lambda key: sign(compose(subject=None), key),
        {"subject": "the message has no Subject header"},
    ),
}


@pytest.mark.parametrize("case", BAD_MESSAGES, ids=str)
def test_each_bad_message_fails_its_checks_and_only_those(case, key, resolver):
    make, expected = BAD_MESSAGES[case]
    results = run(make(key), resolver)
    assert failing(results) == set(expected), results
    for name, words in expected.items():
        status, message = results[name]
        assert status == "fail"
        assert words in message


def test_a_dns_timeout_is_a_warning_never_a_pass(good):
    silent = resolver_for([f"127.0.0.1:{free_port()}"], timeout=0.3)  # nobody listens there
    results = run(good, silent)
    assert results["dkim_valid"][0] == "warn"
    assert "could not be verified" in results["dkim_valid"][1]
    assert results["dkim_covers_list_unsubscribe"][0] == "warn"
    assert results["dmarc_alignment"][0] == "warn"


def test_a_key_not_in_dns_fails(key, resolver):
    results = run(sign(compose(), key, selector="missing"), resolver)
    assert results["dkim_valid"] == (
        "fail",
        "no signature verifies: d=example.test s=missing: no key published at "
        "missing._domainkey.example.test",
    )


def test_an_unsigned_message_fails_the_dkim_checks(resolver):
    results = run(compose(), resolver)
    assert failing(results) == {"dkim_covers_list_unsubscribe", "dkim_valid", "dmarc_alignment"}
    assert results["dkim_valid"][1] == "the message has no DKIM-Signature header"
    assert results["dmarc_alignment"][1].endswith(
        "there is no DKIM signature; no envelope sender is known (no Return-Path, none given)"
    )


def test_spf_alignment_through_the_envelope_sender_passes_dmarc(key, resolver):
    # Signed by a provider's domain, sent from the shop's own bounce domain.
    raw = sign(compose(), key, domain="example.test")
    foreign = raw.replace(b"news@shop.example.test", b"news@shop.brand.test")
    assert run(foreign, resolver)["dmarc_alignment"][0] == "fail"

    given = run(foreign, resolver, mail_from="bounces@mail.brand.test")["dmarc_alignment"]
    assert given[0] == "pass"
    assert "envelope sender's domain mail.brand.test for SPF" in given[1]

    with_return_path = b"Return-Path: <bounces@brand.test>\r\n" + foreign
    assert run(with_return_path, resolver)["dmarc_alignment"][0] == "pass"


def test_alignment_uses_the_public_suffix_list(key, resolver):
    # co.uk is a public suffix: shop.example.co.uk and mail.other.co.uk are different
    # organisations, though both end in .co.uk.
    raw = sign(compose(from_="news@shop.example.co.uk"), key)
    status, message = run(raw, resolver, mail_from="b@mail.other.co.uk")["dmarc_alignment"]
    assert status == "fail"
    assert "not under example.co.uk" in message
    status, _ = run(raw, resolver, mail_from="b@bounce.example.co.uk")["dmarc_alignment"]
    assert status == "pass"


def test_two_from_addresses_fail_dmarc(key, resolver):
    raw = sign(compose(from_="a@shop.example.test, b@shop.example.test"), key)
    assert run(raw, resolver)["dmarc_alignment"] == (
        "fail",
        "From holds 2 addresses; DMARC needs exactly one (RFC 7489 section 6.6.1)",
    )


def test_a_transactional_message_needs_no_unsubscribe_and_no_address(key, resolver):
    receipt = sign(
        compose(
            list_unsubscribe=None,
            list_unsubscribe_post=None,
            text="Your order 1234 has shipped.",
            html=None,
        ),
        key,
        signed=["from", "to", "subject", "date"],
    )
    results = run(receipt, resolver, commercial=False)
    assert failing(results) == set()
    assert results["list_unsubscribe_https"][1].startswith("not needed: the message is transact")
    assert results["postal_address"][1] == "not needed: the message is transactional"
    # The same message sent as marketing fails everything a commercial message needs.
    assert failing(run(receipt, resolver)) == {
        "list_unsubscribe_https",
        "list_unsubscribe_post",
        "dkim_covers_list_unsubscribe",
        "unsubscribe_link_in_body",
        "postal_address",
    }


def test_a_transactional_message_with_broken_unsubscribe_headers_still_fails(key, resolver):
    raw = sign(compose(list_unsubscribe_post="yes"), key)
    assert failing(run(raw, resolver, commercial=False)) == {"list_unsubscribe_post"}


def test_a_hidden_unsubscribe_link_does_not_count(key, resolver):
    html = (
        '<p>Sale!</p><div style="display: none"><a href="https://shop.example.test/u/x">'
        "Unsubscribe</a></div><p hidden><a href='https://shop.example.test/u/y'>Opt out</a></p>"
        "<p>Example Shop Ltd, 12 Main Street, Springfield, IL 62704</p>"
    )
    raw = sign(compose(text="Sale!", html=html, list_unsubscribe="<https://e.test/u/1>"), key)
    assert run(raw, resolver)["unsubscribe_link_in_body"][0] == "fail"


def test_a_link_to_the_list_unsubscribe_uri_counts_whatever_its_text(key, resolver):
    html = f'<p>Sale!</p><p><a href="{UNSUBSCRIBE_URL}">No more of these</a></p>' + (
        "<p>Example Shop Ltd, 12 Main Street, Springfield, IL 62704</p>"
    )
    raw = sign(compose(text="Sale!", html=html), key)
    assert run(raw, resolver)["unsubscribe_link_in_body"] == (
        "pass",
        f"link 'No more of these' to {UNSUBSCRIBE_URL}",
    )


def test_a_preferences_link_alone_is_a_warning(key, resolver):
    html = (
        '<p>Sale!</p><p><a href="https://shop.example.test/p/1">Manage your email preferences'
        "</a></p><p>Example Shop Ltd, 12 Main Street, Springfield, IL 62704</p>"
    )
    status, message = run(sign(compose(text="Sale!", html=html), key), resolver)[
        "unsubscribe_link_in_body"
    ]
    assert status == "warn"
    assert "only a preferences link" in message


def test_a_german_message_with_abmelden_and_a_german_address_passes(key, resolver):
    html = (
        "<p>Unser Frühjahrsangebot.</p>"
        '<p><a href="https://shop.example.test/abmeldung?t=1">Vom Newsletter abmelden</a></p>'
        "<p>Beispiel GmbH · Hauptstraße 5 · 10115 Berlin</p>"
    )
    raw = sign(compose(text="Unser Frühjahrsangebot.", html=html, subject="Frühjahr"), key)
    results = run(raw, resolver)
    assert failing(results) == set()
    assert (
        results["postal_address"][1]
        == "postal address: Beispiel GmbH · Hauptstraße 5 · 10115 Berlin"
    )


def test_a_french_desinscrire_link_counts(key, resolver):
    html = (
        '<p>Soldes !</p><p><a href="https://shop.example.test/x">Se désinscrire</a></p>'
        "<p>Exemple SAS, 12 rue de la Paix, 75002 Paris</p>"
    )
    results = run(sign(compose(text="Soldes !", html=html), key), resolver)
    assert results["unsubscribe_link_in_body"] == (
        "pass",
        "link 'Se désinscrire' to https://shop.example.test/x",
    )
    assert results["postal_address"][0] == "pass"


def test_half_an_address_is_a_warning(key, resolver):
    raw = sign(compose(text=TEXT.replace("Springfield, IL 62704", "Springfield"), html=None), key)
    status, message = run(raw, resolver)["postal_address"]
    assert status == "warn"
    assert message == (
        "found '12 Main Street', but no postal code near it: check that the body shows a "
        "complete postal address"
    )


def test_a_po_box_with_a_zip_code_is_an_address(key, resolver):
    text = TEXT.replace(
        "12 Main Street\nSpringfield, IL 62704", "P.O. Box 1234, Springfield, IL 62704"
    )
    results = run(sign(compose(text=text, html=None), key), resolver)
    assert results["postal_address"] == (
        "pass",
        "postal address: P.O. Box 1234, Springfield, IL 62704",
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "the message is empty"),
        (b"  \r\n\r\n", "the message is empty"),
        (b"just some words\nand more\n", "no header fields of a message"),
        (b'{"subject": "json, not a message"}', "no header fields of a message"),
    ],
)
def test_bytes_that_are_no_message_are_refused(raw, why, resolver):
    with pytest.raises(NotAMessage, match=why):
        check_message(raw, resolver=resolver)


def test_a_hostile_message_gets_answers_not_exceptions(resolver):
    raw = (
        b"From: =?utf-8?q?=E2=80?= <@@>\r\nFrom: x\r\nSubject: \xff\xfe\r\n"
        b"List-Unsubscribe: <https://[::1/>, <\x00>\r\nDKIM-Signature: v=1; h=;; d=\r\n"
        b"Content-Type: text/html; charset=no-such-charset\r\n\r\n"
        + b"<div>" * 5000
        + b"<a href='https://x.test/unsubscribe'>Unsubscribe</a>"
    )
    checks = check_message(raw, resolver=resolver)
    assert [c.name for c in checks] == list(CHECK_NAMES)
    assert {c.name: c.status for c in checks}["dkim_valid"] == "fail"
