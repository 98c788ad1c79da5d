"""Which mailbox provider a recipient domain belongs to, for complaint rates per provider.

Gmail and Yahoo judge a sender by the complaint rate of the mail they receive, whatever domain
names their users have (Yahoo also runs AOL's mail), so domains are grouped into providers here.
Any other domain is its own provider, lower-cased as given.

No Django import here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PROVIDERS", "UNKNOWN", "provider_of"]

# The provider of mail whose recipient domain is missing.
UNKNOWN: Final = "unknown"
_NOT_IN_DOMAINS: Final = frozenset(" \t\r\n[]<>()\"',;:\\/")

# Country domains of Yahoo Mail. Not yahoo.co.jp: Yahoo! JAPAN is a separate provider.
_YAHOO_COUNTRIES = (
    "com",
    "ae",
    "at",
    "be",
    "ca",
    "ch",
    "cl",
    "cn",
    "co",
    "co.id",
    "co.il",
    "co.in",
    "co.kr",
    "co.nz",
    "co.th",
    "co.uk",
    "co.za",
    "com.ar",
    "com.au",
    "com.br",
    "com.co",
    "com.hk",
    "com.mx",
    "com.my",
    "com.pe",
    "com.ph",
    "com.sg",
    "com.tr",
    "com.tw",
    "com.vn",
    "cz",
    "de",
    "dk",
    "es",
    "fi",
    "fr",
    "gr",
    "hu",
    "ie",
    "in",
    "it",
    "nl",
    "no",
    "pl",
    "pt",
    "ro",
    "se",
)

# Country domains of Outlook.com under its older names.
_HOTMAIL_COUNTRIES = (
    "com",
    "at",
    "be",
    "ca",
    "ch",
    "cl",
    "co.id",
    "co.il",
    "co.in",
    "co.jp",
    "co.kr",
    "co.th",
    "co.uk",
    "co.za",
    "com.ar",
    "com.au",
    "com.br",
    "com.hk",
    "com.tr",
    "com.tw",
    "com.vn",
    "cz",
    "de",
    "dk",
    "es",
    "fi",
    "fr",
    "gr",
    "hu",
    "ie",
    "it",
    "lt",
    "lv",
    "my",
    "nl",
    "no",
    "ph",
    "pt",
    "rs",
    "se",
    "sg",
    "sk",
)
_LIVE_COUNTRIES = (
    "com",
    "at",
    "be",
    "ca",
    "cl",
    "cn",
    "co.in",
    "co.kr",
    "co.uk",
    "co.za",
    "com.ar",
    "com.au",
    "com.mx",
    "com.my",
    "com.pt",
    "com.sg",
    "de",
    "dk",
    "fi",
    "fr",
    "hk",
    "ie",
    "in",
    "it",
    "jp",
    "nl",
    "no",
    "ru",
    "se",
)
_OUTLOOK_COUNTRIES = (
    "com",
    "at",
    "be",
    "cl",
    "co.id",
    "co.il",
    "co.nz",
    "co.th",
    "com.ar",
    "com.au",
    "com.br",
    "com.gr",
    "com.pe",
    "com.tr",
    "com.vn",
    "cz",
    "de",
    "dk",
    "es",
    "fr",
    "hu",
    "ie",
    "in",
    "it",
    "jp",
    "kr",
    "lv",
    "my",
    "ph",
    "pt",
    "sa",
    "sg",
    "sk",
)

_DOMAINS_BY_PROVIDER: Final[dict[str, tuple[str, ...]]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "yahoo": (
        *(f"yahoo.{country}" for country in _YAHOO_COUNTRIES),
        "ymail.com",
        "rocketmail.com",
        # AOL mail runs on Yahoo's platform, and so does Verizon's former mail.
        "aol.com",
        "aol.co.uk",
        "aol.de",
        "aol.fr",
        "aim.com",
        "love.com",
        "wow.com",
        "games.com",
        "ygm.com",
        "netscape.net",
        "cs.com",
        "verizon.net",
    ),
    "microsoft": (
        *(f"hotmail.{country}" for country in _HOTMAIL_COUNTRIES),
        *(f"live.{country}" for country in _LIVE_COUNTRIES),
        *(f"outlook.{country}" for country in _OUTLOOK_COUNTRIES),
        "msn.com",
        "passport.com",
        "windowslive.com",
    ),
    "apple": ("icloud.com", "me.com", "mac.com"),
}

# recipient domain -> provider
PROVIDERS: Final[dict[str, str]] = {
    domain: provider for provider, domains in _DOMAINS_BY_PROVIDER.items() for domain in domains
}


def provider_of(recipient_domain: str) -> str:
    """The mailbox provider of a recipient domain (an address is accepted too): `gmail`,
    `yahoo`, `microsoft`, `apple`, or else the domain itself, lower-cased."""
    domain = (recipient_domain or "").rpartition("@")[2].strip().rstrip(".").lower()
    if "." not in domain or any(c in _NOT_IN_DOMAINS for c in domain):
        return UNKNOWN  # empty, or not a domain (a redaction such as "[redacted]")
    return PROVIDERS.get(domain, domain)
