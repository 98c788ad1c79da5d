"""Addresses in report fields: finding them (RFC 5322 addr-spec, loosened for real reports),
cleaning a field's value, recognising a redacted one (RFC 6590), and completing a local part
named without a domain from the returned original.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

from fbl.headers import MAX_DECODED_HEADER, header_all

__all__ = [
    "ADDRESS",
    "DOMAIN",
    "MAX_RECIPIENTS",
    "addresses_in",
    "clean",
    "complete_address",
    "first_address",
    "is_redacted",
]

# A limit on hostile mail (README, "Limits"), like those of fbl/headers.py: recipients read from
# one report. Postfix's default smtpd_recipient_limit, the most one SMTP transaction (and so one
# bounce) usually names.
MAX_RECIPIENTS: Final = 1000

# RFC 5322 3.4.1 addr-spec, loosened the way real reports need: a quoted local part, dots in a
# row (seen in Original-Recipient fields), and a domain without a dot (local delivery).
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# An apostrophe or backquote may sit inside a local part (o'brien@) but never opens one in real
# mail: there it is the quoting of the text around it ('user@host', smail's `user@host').
_ATOM_FIRST: Final = r"[A-Za-z0-9!#$%&*+/=?^_{|}~-]"
_LOCAL: Final = rf'(?:"[^"\r\n@]{{1,64}}"|{_ATOM_FIRST}{_ATOM}*(?:\.+{_ATOM}+)*\.*)'
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN: Final = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
ADDRESS: Final = re.compile(rf"(?<![A-Za-z0-9!#$%&*+/=?^_{{|}}~.-]){_LOCAL}@{DOMAIN}")

# Redacted local parts (RFC 6590): what providers write instead of the real one. A long hex
# string is a hashed local part (RFC 6590 redacts by hashing with a secret); "redacted",
# "hashed", "xxxx" and friends are placeholders written literally.
_REDACTED_LOCAL: Final = re.compile(
    r"(?i)^(?:\[?redacted\]?|removed|hidden|anonymi[sz]ed|hashed|masked|"
    r"x{2,}|\*+|_+|#+|-+|\.+|[0-9a-f]{32,})$"
)
_REDACTED_DOMAIN: Final = re.compile(r"(?i)^(?:\[?redacted\]?|x{2,}(?:\.x+)*)(?:\.[a-z]{2,})?$")
_REDACTED_WHOLE: Final = re.compile(
    r"(?i)^\s*[\[<(]?\s*(?:redacted|removed|hidden|x+)\s*[\]>)]?\s*$"
)


def addresses_in(value: str | None) -> list[str]:
    if not value:
        return []
    return [m.group(0) for m in ADDRESS.finditer(value)]


def first_address(value: str | None) -> str | None:
    if not value:
        return None
    match = ADDRESS.search(value)
    return match.group(0) if match else None


def clean(value: str | None) -> str | None:
    """An address from a report field: drop the RFC 3464 address-type ("rfc822;"), angle
    brackets, comments and surrounding space. Returns the text itself when it holds no address
    (a redaction placeholder, say), or None when empty."""
    if value is None:
        return None
    text = value.strip()
    if ";" in text[:16] and text.split(";", 1)[0].strip().isalnum():
        text = text.split(";", 1)[1].strip()  # RFC 3464 2.3.2 address-type ";" address
    found = first_address(text)
    if found:
        return found
    text = text.strip("<> \t")
    return text or None


def is_redacted(value: str | None) -> bool:
    """RFC 6590 lets a provider redact the recipient of a report; recognise what they write."""
    if not value:
        return False
    if _REDACTED_WHOLE.match(value):
        return True
    local, at, domain = value.rpartition("@")
    if not at:
        return bool(_REDACTED_LOCAL.match(value.strip("<>[] ")))
    local = local.strip('"')
    return bool(_REDACTED_LOCAL.match(local) or _REDACTED_DOMAIN.match(domain))


# Where the original message names its recipient: the header fields, and the delivery headers
# the receiving side adds (Delivered-To, X-Original-To, Envelope-To).
_ORIGINAL_RECIPIENT_FIELDS: Final = (
    "To",
    "Cc",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
)


def complete_address(value: str | None, enclosed: Message | None) -> str | None:
    """The full address a report means by a bare local part, from the returned original.

    A report may name a recipient without a domain ("Final-Recipient: rfc822; john"): RFC 3464
    2.3.2 asks for the address as the reporting MTA knew it, and a local delivery knows only
    the local part. The original's To/Cc/Delivered-To/X-Original-To says which address the
    sender used: the one with that local part, if exactly one has it. Never invents a domain
    (the reporting MTA's host name is not the recipient's): None when the original does not
    settle it, and for a value that already has a domain."""
    if not value or enclosed is None:
        return None
    local = value.strip().strip("<>").strip().rstrip("@").strip('"').lower()
    if not local or any(c in local for c in '@ \t<>,;:"'):
        return None
    found: dict[str, str] = {}
    for name in _ORIGINAL_RECIPIENT_FIELDS:
        for field in header_all(enclosed, name)[:MAX_RECIPIENTS]:
            for address in addresses_in(field[:MAX_DECODED_HEADER]):
                if address.rpartition("@")[0].strip('"').lower() == local:
                    found.setdefault(address.lower(), address)
    return next(iter(found.values())) if len(found) == 1 else None
