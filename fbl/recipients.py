"""Who a report is about: the recipient recovery order of DESIGN.md.

Recovery order (DESIGN.md, "Decisions"): our token in the enclosed message's List-Unsubscribe
header, our trace header, the VERP return path, `Original-Rcpt-To` (or a provider's own field
such as Outlook.com's `X-HmXmrOriginalRecipient`), the enclosed `To:`. The token format lives in
`unsubscribe/`, so it comes in through `RecoveryHooks.read_token`; without hooks the first two
rules are skipped. Addresses are found and cleaned by fbl/addresses.py, headers read by
fbl/headers.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Final

from fbl.addresses import (
    DOMAIN,
    MAX_RECIPIENTS,
    addresses_in,
    clean,
    first_address,
    is_redacted,
)
from fbl.headers import header, header_all
from fbl.report import FoundBy, Recipient

__all__ = [
    "DEFAULT_VERP_PREFIX",
    "RecoveryHooks",
    "list_unsubscribe_uris",
    "ours",
    "recover",
    "verp_decode",
]

DEFAULT_VERP_PREFIX: Final = r"bounces?"


@dataclass(frozen=True, slots=True)
class RecoveryHooks:
    """How to recognise our own mail inside a report.

    read_token: given a URL or token string (a List-Unsubscribe URI, or the trace header's
        value), returns the recipient address it stands for, or None. It must not raise; if it
        does, the rule is skipped.
    trace_header: the header our relays add to every message.
    verp_prefix: a regex for the local-part prefix of our VERP return paths
        (`bounces+alice=example.com@mail.sender.example` decodes to `alice@example.com`).
        None turns VERP decoding off.
    """

    read_token: Callable[[str], str | None] | None = None
    trace_header: str = "X-Compliance-Trace"
    verp_prefix: str | None = DEFAULT_VERP_PREFIX

    def verp_pattern(self) -> re.Pattern[str] | None:
        if not self.verp_prefix:
            return None
        return _verp_pattern(self.verp_prefix)


_VERP_CACHE: dict[str, re.Pattern[str]] = {}


def _verp_pattern(prefix: str) -> re.Pattern[str]:
    pattern = _VERP_CACHE.get(prefix)
    if pattern is None:
        # The last "=" splits local part from domain: a local part may itself contain "=".
        pattern = re.compile(
            rf"(?i)^(?:{prefix})\+(?P<local>[^@\s]+)=(?P<domain>{DOMAIN})@[^@\s]+$"
        )
        _VERP_CACHE[prefix] = pattern
    return pattern


def verp_decode(address: str | None, hooks: RecoveryHooks) -> str | None:
    pattern = hooks.verp_pattern()
    if pattern is None or not address:
        return None
    found = first_address(address) or address
    match = pattern.match(found.strip("<> "))
    if not match:
        return None
    return f"{match.group('local')}@{match.group('domain')}"


# --- recovery order --------------------------------------------------------------------------

_URI_IN_BRACKETS: Final = re.compile(r"<([^>]+)>")


def list_unsubscribe_uris(value: str) -> list[str]:
    """The URIs of a List-Unsubscribe value (RFC 2369 section 3.2: each in angle brackets);
    the whole value when it has none."""
    return [uri.strip() for uri in _URI_IN_BRACKETS.findall(value)] or [value.strip()]


def ours(
    enclosed: Message | None,
    hooks: RecoveryHooks,
    *,
    return_paths: Sequence[str | None] = (),
) -> tuple[str, FoundBy] | None:
    """The first three recovery rules, the ones that recognise our own mail: our token in the
    List-Unsubscribe header (RFC 2369 section 3.2, RFC 8058), our trace header, the VERP return
    path. Returns (address, rule) or None."""
    read = hooks.read_token
    if read is not None and enclosed is not None:
        for value in header_all(enclosed, "List-Unsubscribe"):
            for uri in list_unsubscribe_uris(value):
                found = _call(read, uri)
                if found:
                    return found, "token"
        trace = header(enclosed, hooks.trace_header)
        if trace:
            found = _call(read, trace)
            if found:
                return found, "trace_header"
    candidates = [header(enclosed, "Return-Path"), *return_paths]
    for candidate in candidates:
        found = verp_decode(candidate, hooks)
        if found:
            return found, "verp"
    return None


def _call(read: Callable[[str], str | None], value: str) -> str | None:
    try:
        found = read(value)
    except Exception:  # a broken hook costs one rule, not the report
        return None
    return found if isinstance(found, str) and found else None


def recover(
    *,
    enclosed: Message | None,
    hooks: RecoveryHooks,
    original_rcpt_to: Sequence[str] = (),
    provider_rcpt: Sequence[str] = (),
    return_paths: Sequence[str | None] = (),
) -> tuple[Recipient, ...]:
    """Recipients of a complaint (or of a bounce whose report names none), by the DESIGN.md
    order. A redacted address never becomes `address`: later rules are tried for a real one,
    and if none has one the first redacted value is returned with `redacted=True`."""
    mine = ours(enclosed, hooks, return_paths=return_paths)
    if mine is not None:
        return (Recipient(address=mine[0], found_by=mine[1]),)

    redacted: Recipient | None = None
    rules: list[tuple[FoundBy, list[str]]] = [
        ("original_rcpt_to", [v for v in original_rcpt_to if v]),
        ("provider_field", [v for v in provider_rcpt if v]),
        ("enclosed_to", _to_addresses(enclosed)),
    ]
    for rule, values in rules:
        found: list[Recipient] = []
        seen: set[str] = set()
        for value in values[:MAX_RECIPIENTS]:
            address = clean(value)
            if not address:
                continue
            if is_redacted(address):
                if redacted is None:
                    redacted = Recipient(
                        address=None, original_address=value.strip(), found_by=rule, redacted=True
                    )
                continue
            if first_address(address) is None:
                continue  # "undisclosed-recipients:;" and other non-addresses
            key = address.lower()
            if key not in seen:
                seen.add(key)
                found.append(Recipient(address=address, found_by=rule))
        if found:
            return tuple(found)
    return (redacted,) if redacted is not None else ()


def _to_addresses(enclosed: Message | None) -> list[str]:
    values = header_all(enclosed, "To")
    out: list[str] = []
    for value in values:
        found = addresses_in(value)
        if found:
            out.extend(found)
        elif value.strip():
            out.append(value.strip())
    return out
