"""Recipient domains grouped into mailbox providers, for complaint rates per provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from fbl.providers import PROVIDERS, provider_of

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("domain", "provider"),
    [
        ("gmail.com", "gmail"),
        ("googlemail.com", "gmail"),
        ("yahoo.com", "yahoo"),
        ("yahoo.co.uk", "yahoo"),
        ("yahoo.fr", "yahoo"),
        ("yahoo.de", "yahoo"),
        ("yahoo.com.br", "yahoo"),
        ("ymail.com", "yahoo"),
        ("rocketmail.com", "yahoo"),
        ("aol.com", "yahoo"),
        ("aim.com", "yahoo"),
        ("outlook.com", "microsoft"),
        ("outlook.de", "microsoft"),
        ("hotmail.com", "microsoft"),
        ("hotmail.co.uk", "microsoft"),
        ("hotmail.fr", "microsoft"),
        ("live.com", "microsoft"),
        ("live.fr", "microsoft"),
        ("msn.com", "microsoft"),
        ("icloud.com", "apple"),
        ("me.com", "apple"),
        ("mac.com", "apple"),
    ],
)
def test_known_domains_belong_to_their_provider(domain, provider):
    assert provider_of(domain) == provider


def test_case_a_trailing_dot_and_a_whole_address_do_not_matter():
    assert provider_of("GMail.COM") == "gmail"
    assert provider_of("gmail.com.") == "gmail"
    assert provider_of(" Pat.Doe@Yahoo.co.uk ") == "yahoo"


def test_other_domains_are_their_own_provider_lower_cased_as_given():
    assert provider_of("Example.ORG") == "example.org"
    assert provider_of("jo@mail.example.co.uk") == "mail.example.co.uk"
    assert provider_of("web.de") == "web.de"


def test_yahoo_japan_is_not_yahoo():
    # Yahoo! JAPAN runs its own mail, with its own view of a sender.
    assert provider_of("yahoo.co.jp") == "yahoo.co.jp"


@pytest.mark.parametrize("value", ["", "   ", "[redacted]", "someone@redacted", "not a domain"])
def test_no_domain_is_unknown(value):
    assert provider_of(value) == "unknown"


def test_the_table_holds_only_lower_case_domains():
    assert all(domain == domain.lower().strip() and "." in domain for domain in PROVIDERS)
    assert set(PROVIDERS.values()) == {"gmail", "yahoo", "microsoft", "apple"}
