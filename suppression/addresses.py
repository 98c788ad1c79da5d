"""Email address normalisation and keyed hashing for the suppression list.

Two spellings of one mailbox must give one hash, or a suppressed address slips through under
another spelling. `normalise` therefore trims, applies Unicode NFC, lower-cases and puts the
domain in IDNA ASCII form. Syntax is checked by email-validator, which is too slow for bulk
imports, so plain ASCII addresses go through a regex that accepts only a subset of what
email-validator accepts and everything else goes to email-validator itself.

It imports nothing from Django, so any process can use it without settings or an app registry.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final

import email_validator

__all__ = [
    "EMAIL_VALIDATOR_OPTIONS",
    "InvalidAddress",
    "address_hash",
    "hash_address",
    "hash_many",
    "hasher",
    "normalise",
    "normalise_many",
]

# Every option is pinned rather than left to email-validator's defaults, because those defaults
# are mutable module globals: a change elsewhere in the process must not change what we accept,
# and the fast path below copies exactly these choices. No DNS (check_deliverability=False): an
# address is suppressed whether or not its domain resolves today. Internationalised local parts
# are real addresses (allow_smtputf8=True). Quoted local parts, IP literals and display names
# are refused: senders never need them and they would widen what counts as one mailbox.
# `allow_display_name` (2.2) and `strict` (2.3) are newer than the oldest version we support, so
# they are passed only if known. Versions without them never accept display names and always
# apply the 64-octet local part limit: stricter, never looser, than asked.
_WANTED_OPTIONS: Final[dict[str, bool]] = {
    "check_deliverability": False,
    "allow_smtputf8": True,
    "allow_empty_local": False,
    "allow_quoted_local": False,
    "allow_domain_literal": False,
    "allow_display_name": False,
    "strict": False,
    "test_environment": False,
    "globally_deliverable": True,
}
_ACCEPTED_OPTIONS: Final = inspect.signature(email_validator.validate_email).parameters
EMAIL_VALIDATOR_OPTIONS: Final[Mapping[str, bool]] = MappingProxyType(
    {name: value for name, value in _WANTED_OPTIONS.items() if name in _ACCEPTED_OPTIONS}
)

# RFC 5321 4.5.3.1: email-validator rejects any address longer than this in UTF-8 octets.
MAX_ADDRESS_LENGTH: Final = 254
_MAX_LOCAL_LENGTH: Final = 64


def _fast_pattern(special_use: Iterable[str]) -> re.Pattern[str]:
    """A regex that accepts a lower-cased ASCII address only if email-validator would too.

    The rejections email-validator makes for such input and how each is covered here:
    dot-atom local part of RFC 5322 atext; LDH labels of 1-63 characters without a leading or
    trailing hyphen; R-LDH labels ("ab--") are refused, and so are "xn--" labels, which
    email-validator decodes and checks as IDNA; at least one dot; a last label ending with a
    letter (here: all letters); special-use names; the 254-octet address limit, which also keeps
    the domain under its 253-octet limit. The local part limit of 64 octets is only enforced by
    email-validator in strict mode, so applying it here just sends the rare longer local part to
    the slow path.
    """
    atext = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
    label = r"(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    special = "|".join(re.escape(name.lower()) for name in special_use)
    return re.compile(
        rf"(?=.{{1,{MAX_ADDRESS_LENGTH}}}\Z)"
        rf"(?=[^@]{{1,{_MAX_LOCAL_LENGTH}}}@)"
        rf"{atext}+(?:\.{atext}+)*"
        "@"
        rf"(?!(?:.*\.)?(?:{special})\Z)"
        rf"(?:{label}\.)+[a-z]{{2,63}}\Z"
    )


# Built once from the special-use list as imported; the list is mutable in email-validator but
# nothing in this service changes it.
_FAST_MATCH: Final = _fast_pattern(email_validator.SPECIAL_USE_DOMAIN_NAMES).match


class InvalidAddress(ValueError):
    """An address that cannot be normalised; `reason` says what is wrong with it."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address!r} is not a valid email address: {reason}")
        self.address = address
        self.reason = reason


def _fast_path(stripped: str) -> str | None:
    """The normalised form of a common plain ASCII address, or None to use the slow path.

    For input the regex accepts, email-validator changes nothing but the domain's case, so the
    normalised form is simply the lower-cased input.
    """
    if not stripped.isascii():
        return None
    lowered = stripped.lower()
    return lowered if _FAST_MATCH(lowered) else None


def _fold(text: str) -> str:
    """NFC, lower-case, NFC again: a lower-cased letter can compose with a following mark
    (H + U+0331 has no precomposed form, h + U+0331 is U+1E96). email-validator would compose it
    too, but the fixed point that normalise promises should not rest on that."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())


def _slow_path(raw: str, stripped: str) -> str:
    """Validate with email-validator and build the normalised form from its parts."""
    folded = _fold(stripped)
    # A valid address is never longer than this, and email-validator's parsing is slow on huge
    # junk input, so refuse it before parsing.
    if len(folded) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(
            raw, f"the address is too long ({len(folded)} characters, at most {MAX_ADDRESS_LENGTH})"
        )
    try:
        valid = email_validator.validate_email(folded, **EMAIL_VALIDATOR_OPTIONS)
    except email_validator.EmailNotValidError as exc:
        raise InvalidAddress(raw, str(exc)) from exc
    # The local part is already folded; ascii_domain holds the A-labels (and is lower-case).
    return f"{valid.local_part}@{valid.ascii_domain.lower()}"


def normalise(raw: str) -> str:
    """The canonical form of an address: trimmed, NFC, lower-case, domain in IDNA ASCII form.

    Raises InvalidAddress if email-validator would reject it. normalise(normalise(x)) equals
    normalise(x).
    """
    stripped = raw.strip()
    if not stripped:
        raise InvalidAddress(raw, "the address is empty")
    fast = _fast_path(stripped)
    return fast if fast is not None else _slow_path(raw, stripped)


def address_hash(normalised: str, key: bytes) -> bytes:
    """HMAC-SHA256 of an already normalised address: 32 bytes.

    Keyed, so a leaked suppression list cannot be reversed by hashing a list of known addresses.
    """
    return hasher(key)(normalised.encode("utf-8"))


@functools.lru_cache(maxsize=8)
def hasher(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 under `key` as a function of the message (RFC 2104), with the keyed inner and
    outer SHA-256 states computed once: a batch check or an import hashes every address, and
    `hmac.digest` sets up both states again for each one, which costs more than the rest."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy

    def digest(message: bytes) -> bytes:
        state = inner()
        state.update(message)
        result = outer()
        result.update(state.digest())
        return result.digest()

    return digest


def hash_many(
    raws: Iterable[str], key: bytes
) -> tuple[dict[bytes, list[str]], list[tuple[str, str]]]:
    """Normalise and hash a batch: ({hash: the given spellings with that hash}, [(invalid
    address, reason)]). The same as `normalise` and `address_hash` one by one, with the fast path
    inlined: the batch check does this for up to 100,000 addresses per request."""
    digest = hasher(key)
    match = _FAST_MATCH
    by_hash: dict[bytes, list[str]] = {}
    invalid: list[tuple[str, str]] = []
    for raw in raws:
        stripped = raw.strip()
        normalised = stripped.lower()
        if not (stripped.isascii() and match(normalised)):
            try:
                normalised = normalise(raw)
            except InvalidAddress as exc:
                invalid.append((raw, exc.reason))
                continue
        spellings = by_hash.setdefault(digest(normalised.encode()), [])
        spellings.append(raw)
    return by_hash, invalid


def hash_address(raw: str, key: bytes) -> bytes:
    """address_hash(normalise(raw), key); raises InvalidAddress."""
    return address_hash(normalise(raw), key)


def normalise_many(raws: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Normalise a batch: (valid addresses in input order, invalid ones as (raw, reason))."""
    valid: list[str] = []
    invalid: list[tuple[str, str]] = []
    for raw in raws:
        try:
            valid.append(normalise(raw))
        except InvalidAddress as exc:
            invalid.append((raw, exc.reason))
    return valid, invalid
