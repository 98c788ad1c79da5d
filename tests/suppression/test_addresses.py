"""Address normalisation and hashing: one mailbox, one hash; the fast path never disagrees with
email-validator."""

from __future__ import annotations

import hashlib
import hmac
import os
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import email_validator
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suppression.addresses import (
    EMAIL_VALIDATOR_OPTIONS,
    InvalidAddress,
    _fast_path,
    address_hash,
    hash_address,
    hasher,
    normalise,
    normalise_many,
)

KEY = b"k" * 32
REPO_ROOT = Path(__file__).resolve().parents[2]
slow_settings = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(raw: str) -> str:
    """email-validator called directly with the module's options, then lower-cased."""
    valid = email_validator.validate_email(raw.strip(), **EMAIL_VALIDATOR_OPTIONS)
    return f"{valid.local_part}@{valid.ascii_domain}".lower()


# --- Generated valid addresses, including Unicode local parts and IDNA domains -----------------

_LOCAL_ALPHABET = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-" + "éÉüÜßçÇøñİKΩωжЖ例"
_LABEL_ALPHABET = string.ascii_letters + string.digits + "üÜößéÉñçжЖмир例子"
_NORMAL_FORM = st.sampled_from(["NFC", "NFD"])

# Upper-case letters with marks whose lower-case forms compose or reorder under NFC.
_TRICKY_LETTERS = ["H\u0331", "J\u030c", "T\u0308", "W\u030a", "\u0130\u0316", "A\u0301"]
_atoms = st.lists(
    st.one_of(st.sampled_from(_LOCAL_ALPHABET), st.sampled_from(_TRICKY_LETTERS)),
    min_size=1,
    max_size=8,
).map("".join)
_local_parts = st.lists(_atoms, min_size=1, max_size=3).map(".".join)
_words = st.text(_LABEL_ALPHABET, min_size=1, max_size=10)
_labels = st.one_of(
    st.lists(_words, min_size=1, max_size=2).map("-".join),
    st.sampled_from(["xn--mnchen-3ya", "XN--BCHER-KVA", "xn--e1afmkfd"]),
)
_tlds = st.sampled_from(["com", "DE", "org", "co.uk", "рф", "xn--p1ai", "公司"])


@st.composite
def valid_addresses(draw: st.DrawFn) -> str:
    local = draw(_local_parts)
    labels = draw(st.lists(_labels, min_size=1, max_size=3))
    address = f"{local}@{'.'.join(labels)}.{draw(_tlds)}"
    padding = draw(st.sampled_from(["", " ", "\t", "\n ", "\u00a0"]))
    return padding + unicodedata.normalize(draw(_NORMAL_FORM), address) + padding


@given(valid_addresses())
@slow_settings
def test_generated_valid_addresses_normalise_idempotently(raw: str) -> None:
    once = normalise(raw)
    assert normalise(once) == once
    assert once == once.strip()
    assert once == unicodedata.normalize("NFC", once)
    assert once == once.lower()
    assert once.rpartition("@")[2].isascii()


@given(st.one_of(st.emails(), st.text(max_size=40)))
@slow_settings
def test_whatever_normalises_is_a_fixed_point(raw: str) -> None:
    try:
        once = normalise(raw)
    except InvalidAddress:
        return
    assert normalise(once) == once


# --- Spellings of one mailbox collide ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        (["Bob@Example.COM", "bob@example.com", "BOB@EXAMPLE.COM"], "bob@example.com"),
        (["bob@münchen.de", "bob@xn--mnchen-3ya.de", "BOB@MÜNCHEN.DE"], "bob@xn--mnchen-3ya.de"),
        (["josé@example.com", "jose\u0301@example.com", "JOSÉ@example.com"], "josé@example.com"),
        (["bob@mu\u0308nchen.de", "bob@m\u00fcnchen.de"], "bob@xn--mnchen-3ya.de"),
        (
            [
                "  bob@example.com",
                "bob@example.com\n",
                "\t bob@example.com \r\n",
                "\u3000bob@example.com",
            ],
            "bob@example.com",
        ),
    ],
)
def test_spellings_of_one_mailbox_normalise_alike(spellings: list[str], expected: str) -> None:
    assert {normalise(spelling) for spelling in spellings} == {expected}
    assert len({hash_address(spelling, KEY) for spelling in spellings}) == 1


def test_nfc_result_for_decomposed_local_part() -> None:
    result = normalise("Jose\u0301@example.com")
    assert result == "jos\u00e9@example.com"
    assert len(result.partition("@")[0]) == 4


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # "İ".lower() is "i" plus a combining dot above.
        ("İlker@Example.com", "i\u0307lker@example.com"),
        # Only the lower-case letter has a precomposed form with this mark.
        ("H\u0331@example.com", "\u1e96@example.com"),
        # Lower-casing puts a dot above (class 230) before a grave below (class 220).
        ("\u0130\u0316@example.com", "i\u0316\u0307@example.com"),
    ],
)
def test_lower_casing_is_followed_by_nfc(raw: str, expected: str) -> None:
    once = normalise(raw)
    assert once == expected
    assert normalise(once) == once


# --- Hashing ----------------------------------------------------------------------------------


def test_address_hash_is_hmac_sha256_of_the_utf8_address() -> None:
    digest = address_hash("josé@example.com", KEY)
    assert len(digest) == 32
    assert digest == hmac.new(KEY, "josé@example.com".encode(), hashlib.sha256).digest()


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_the_precomputed_hmac_equals_the_standard_library_for_any_key_and_message(
    key: bytes, message: bytes
) -> None:
    # Keys longer than SHA-256's 64-byte block are hashed first (RFC 2104 section 2).
    assert hasher(key)(message) == hmac.digest(key, message, "sha256")


def test_hash_address_hashes_the_normalised_form() -> None:
    assert hash_address(" Bob@Example.COM ", KEY) == address_hash("bob@example.com", KEY)


def test_hash_address_rejects_invalid_addresses() -> None:
    with pytest.raises(InvalidAddress):
        hash_address("not an address", KEY)


@given(st.lists(valid_addresses(), min_size=2, max_size=6))
@slow_settings
def test_distinct_normalised_addresses_hash_differently(raws: list[str]) -> None:
    normalised = {normalise(raw) for raw in raws}
    assert len({address_hash(address, KEY) for address in normalised}) == len(normalised)


@given(st.binary(min_size=16, max_size=64), st.binary(min_size=16, max_size=64))
def test_the_hash_depends_on_the_key(key_a: bytes, key_b: bytes) -> None:
    if key_a == key_b:
        return
    assert address_hash("bob@example.com", key_a) != address_hash("bob@example.com", key_b)


# --- The fast path agrees with email-validator ------------------------------------------------

_LOCAL_BITS = [
    "a", "Z", "0", "bob", "Bob.Smith", ".", "..", "-", "_", "+tag", "!", "#", "'", "`", "{}", "|",
    '"', '"quoted"', '"a b"', "\\", "(", ")", ",", ";", ":", " ", "<", ">", "[", "]", "@", "x" * 64,
]  # fmt: skip
_DOMAIN_LABELS = [
    "example", "EXAMPLE", "a", "b1", "-a", "a-", "a-b", "a--b", "ab--cd", "xn--mnchen-3ya",
    "xn--abc", "xn--", "XN--BCHER-KVA", "123", "1a", "x" * 63, "x" * 64, "test", "localhost",
    "local", "invalid", "onion", "arpa", "example", "com", "COM", "c", "c1", "co", "uk", "",
    "[127.0.0.1]", "[IPv6:::1]", "a_b", "a b", " ",
]  # fmt: skip
_PADDING = st.sampled_from(["", " ", "\t", "\n", " \r\n"])


@st.composite
def ascii_candidates(draw: st.DrawFn) -> str:
    """ASCII strings shaped like addresses, many of them subtly wrong."""
    local = "".join(draw(st.lists(st.sampled_from(_LOCAL_BITS), max_size=6)))
    at = draw(st.sampled_from(["@", "@", "@", "@@", "", "<", "@."]))
    domain = ".".join(draw(st.lists(st.sampled_from(_DOMAIN_LABELS), max_size=5)))
    return draw(_PADDING) + local + at + domain + draw(_PADDING)


def assert_agrees_with_email_validator(raw: str) -> None:
    try:
        expected = reference(raw)
    except email_validator.EmailNotValidError:
        with pytest.raises(InvalidAddress):
            normalise(raw)
        assert _fast_path(raw.strip()) is None
        return
    assert normalise(raw) == expected
    fast = _fast_path(raw.strip())
    assert fast is None or fast == expected == raw.strip().lower()


@given(st.one_of(ascii_candidates(), st.emails(), st.text(string.printable, max_size=30)))
@settings(max_examples=1000, deadline=None)
def test_fast_path_agrees_with_email_validator(raw: str) -> None:
    assert_agrees_with_email_validator(raw)


TYPICAL = [
    "bob@example.com",
    "Bob.Smith+news@Mail.Example.co.uk",
    "o'neil@example.ie",
    "x_1975@t-online.de",
    "first.last@sub.domain.museum",
    "a@b.co",
    "!#$%&'*+/=?^_`{|}~-@example.org",
    f"{'a' * 64}@example.com",
    f"a@{'b' * 63}.com",
    f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com",  # exactly 254 characters
]


@pytest.mark.parametrize("raw", TYPICAL)
def test_typical_addresses_take_the_fast_path(raw: str) -> None:
    assert len(raw) <= 254
    assert _fast_path(raw) == raw.lower() == reference(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # An A-label must be checked as IDNA.
        ("Bob@XN--MNCHEN-3YA.de", "bob@xn--mnchen-3ya.de"),
        # email-validator only needs the last character to be a letter.
        ("Bob@Example.1c", "bob@example.1c"),
        ("Bob@Example.c", "bob@example.c"),
        # Over 64 octets: still accepted when not strict.
        (f"{'A' * 65}@example.com", f"{'a' * 65}@example.com"),
        ("José@Example.com", "josé@example.com"),
    ],
)
def test_valid_but_unusual_addresses_take_the_slow_path(raw: str, expected: str) -> None:
    assert _fast_path(raw) is None
    assert normalise(raw) == expected


@pytest.mark.parametrize("name", email_validator.SPECIAL_USE_DOMAIN_NAMES)
def test_special_use_domains_are_rejected(name: str) -> None:
    for raw in (f"bob@mail.{name}", f"bob@{name}", f"bob@mail.{name.upper()}"):
        assert _fast_path(raw.lower()) is None
        with pytest.raises(InvalidAddress, match="special-use|period"):
            normalise(raw)


def test_validator_options_are_pinned() -> None:
    assert EMAIL_VALIDATOR_OPTIONS["check_deliverability"] is False
    assert EMAIL_VALIDATOR_OPTIONS["allow_smtputf8"] is True
    assert EMAIL_VALIDATOR_OPTIONS["test_environment"] is False


# --- Invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   \t", "empty"),
        ("bob.example.com", "@-sign"),
        ("bob@smith@example.com", "invalid characters"),
        ("bob smith@example.com", "invalid characters"),
        ("bob@example", "period"),
        (f"bob@{'a' * 64}.com", "periods cannot be separated by so many characters"),
        ("a@b..com", "two periods"),
        (".bob@example.com", "start with a period"),
        ("bob@-example.com", "hyphen"),
        ("bob@ab--cd.example.com", "two dashes"),
        ("bob@xn--abc-.com", "hyphen"),
        ("bob@xn--ls8h.la", "idna"),  # an emoji, not allowed by IDNA 2008
        ('"bob"@example.com', "quoting"),
        ("bob@[127.0.0.1]", "bracketed"),
        ("Bob <bob@example.com>", "display name"),
        ("bob@example.123", "top-level domain"),
        (f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 58}.com", "too long"),
        (f"{'a' * 300}@example.com", "too long"),
        ("x" * 1_000_000, "too long"),
    ],
)
def test_invalid_addresses_raise_with_a_reason(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalise(raw)
    assert caught.value.address == raw
    assert fragment.lower() in caught.value.reason.lower()
    assert isinstance(caught.value, ValueError)


# --- Batches ----------------------------------------------------------------------------------


def test_normalise_many_keeps_order_and_reports_invalid_ones() -> None:
    raws = ["Zed@Example.com", "nope", " amy@example.org ", "a@b..com", "bob@münchen.de", ""]
    valid, invalid = normalise_many(raws)
    assert valid == ["zed@example.com", "amy@example.org", "bob@xn--mnchen-3ya.de"]
    assert [raw for raw, _ in invalid] == ["nope", "a@b..com", ""]
    for raw, reason in invalid:
        with pytest.raises(InvalidAddress) as caught:
            normalise(raw)
        assert reason == caught.value.reason


def test_normalise_many_accepts_any_iterable() -> None:
    valid, invalid = normalise_many(address for address in ["A@B.com", "b@c.org"])
    assert (valid, invalid) == (["a@b.com", "b@c.org"], [])


# --- No Django --------------------------------------------------------------------------------


def test_module_imports_nothing_from_django() -> None:
    code = (
        "import sys, suppression.addresses; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=False)
    assert completed.returncode == 0
