"""The pre-send message check: does this message, exactly as it will be sent, comply?

`check_message` reads the raw RFC 5322 bytes and answers the checks below, in this order, each
pass, warn or fail with a message for a person (compliance/check_results.py):

| name                           | what passes                                                   |
| ------------------------------ | ------------------------------------------------------------- |
| `list_unsubscribe_https`       | one List-Unsubscribe header with an https URI (RFC 8058 3.1)   |
| `list_unsubscribe_post`        | List-Unsubscribe-Post is exactly `List-Unsubscribe=One-Click`  |
| `dkim_covers_list_unsubscribe` | a verifying DKIM signature's h= lists both headers (RFC 8058 4)|
| `dkim_valid`                   | a DKIM signature verifies against the key in DNS (RFC 6376)    |
| `dmarc_alignment`              | the From domain aligns, relaxed, with the d= of a verified     |
|                                | DKIM signature or the envelope sender's domain (RFC 7489 3.1)  |
| `unsubscribe_link_in_body`     | a visible body link says unsubscribe, opt out, abmelden, ...  |
|                                | or leads to the List-Unsubscribe https URI                     |
| `postal_address`               | the body shows a postal address (15 U.S.C. 7704(a)(5)(A)(iii)) |
| `subject`                      | one Subject header, not empty                                  |

A transactional message (not `commercial`) need not carry unsubscribe headers, an opt-out link
or a postal address (CAN-SPAM governs commercial mail; Gmail and Yahoo ask for one-click
unsubscribe on subscribed mail): their absence passes, while headers it does carry are still
checked. A DKIM key that DNS could not give (timeout, SERVFAIL) is a warning, never a pass.

SPF itself cannot be judged before sending (it depends on the sending server's address); its
alignment can, from the envelope sender given or the message's Return-Path.

Pure apart from DNS: imports nothing from Django. Raises NotAMessage for bytes that are no
message; every other problem of the message is a check's answer.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

import dns.resolver
from dkim.util import parse_tag_value
from publicsuffixlist import PublicSuffixList

from compliance.check_results import Check, Status
from compliance.preflight.body import Body, Link, visible_body
from compliance.preflight.postal import find_postal_address
from fbl import dkim

__all__ = ["CHECK_NAMES", "NotAMessage", "check_message", "organisational_domain", "read_message"]

ONE_CLICK = "List-Unsubscribe=One-Click"
PASS: Status = "pass"
WARN: Status = "warn"
FAIL: Status = "fail"


class NotAMessage(Exception):
    """The bytes are no RFC 5322 message; the text says why, for a person."""


def read_message(raw: bytes) -> EmailMessage:
    """`raw` parsed (policy.default). Raises NotAMessage when empty or without header fields."""
    if not raw.strip():
        raise NotAMessage("the message is empty")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not any(name.lower() in _MESSAGE_HEADERS for name in message.keys()):
        raise NotAMessage(
            "no header fields of a message: it starts with lines such as 'From: ...' and "
            "'Subject: ...', then an empty line and the body"
        )
    return message


# One of these makes bytes a message to check (and its absence, say, a JSON document not one).
_MESSAGE_HEADERS = frozenset(
    "from sender to cc subject date message-id mime-version content-type dkim-signature "
    "list-unsubscribe return-path received".split()
)


def check_message(
    raw: bytes,
    *,
    resolver: dns.resolver.Resolver,
    commercial: bool = True,
    mail_from: str | None = None,
) -> list[Check]:
    """The checks of CHECK_NAMES, in that order. `resolver` is asked for DKIM keys (see
    fbl.dkim.resolver_for); `mail_from` is the envelope sender, if known (else the message's
    Return-Path is used). Raises NotAMessage."""
    message = read_message(raw)
    facts = _Facts(
        message=message, raw=raw, resolver=resolver, commercial=commercial, mail_from=mail_from
    )
    return [_run(name, check, facts) for name, check in _CHECKS.items()]


def _run(name: str, check: Callable[[_Facts], tuple[str, str]], facts: _Facts) -> Check:
    try:
        status, message = check(facts)
    except Exception as exc:  # a hostile header can break the email package's parsers
        status, message = FAIL, f"the message could not be read for this check: {exc}"
    return Check(name, status, message)


# --- what the checks share ---------------------------------------------------------------------


@dataclass
class _Facts:
    """The message and what more than one check reads of it, each worked out once."""

    message: EmailMessage
    raw: bytes
    resolver: dns.resolver.Resolver
    commercial: bool
    mail_from: str | None = None

    @functools.cached_property
    def list_unsubscribe(self) -> list[str]:
        return [str(value) for value in self.message.get_all("List-Unsubscribe") or []]

    @functools.cached_property
    def unsubscribe_uris(self) -> list[str]:
        return [uri for value in self.list_unsubscribe for uri in _bracketed(value)]

    @functools.cached_property
    def https_unsubscribe_uris(self) -> list[str]:
        return [uri for uri in self.unsubscribe_uris if _is_web(uri, "https")]

    @functools.cached_property
    def signatures(self) -> list[tuple[dkim.Signature, frozenset[str]]]:
        """Each DKIM signature's result and the header names its h= tag signs, in order."""
        results = dkim.verify(self.raw, resolver=self.resolver)
        values = [str(value) for value in self.message.get_all("DKIM-Signature") or []]
        return [
            (result, _signed_headers(values[i]) if i < len(values) else frozenset())
            for i, result in enumerate(results)
        ]

    @functools.cached_property
    def body(self) -> Body:
        return visible_body(self.message)

    @property
    def exempt(self) -> bool:
        """A transactional message without the unsubscribe headers: they are not asked of it."""
        return not self.commercial and not self.list_unsubscribe


def _bracketed(value: str) -> list[str]:
    """The URIs of a List-Unsubscribe value: each in angle brackets (RFC 2369 section 2)."""
    return [re.sub(r"\s+", "", uri) for uri in re.findall(r"<([^<>]*)>", value)]


def _is_web(uri: str, *schemes: str) -> bool:
    try:
        parts = urlsplit(uri)
        return parts.scheme.lower() in schemes and bool(parts.hostname)
    except ValueError:
        return False


def _signed_headers(value: str) -> frozenset[str]:
    try:
        tags = parse_tag_value(value.encode("utf-8", "surrogateescape"))
    except Exception:
        return frozenset()
    names = tags.get(b"h", b"").decode("ascii", "replace")
    return frozenset(name.strip().lower() for name in names.split(":") if name.strip())


def _shown(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signer(signature: dkim.Signature) -> str:
    return f"d={signature.domain or '?'} s={signature.selector or '?'}"


# --- the checks --------------------------------------------------------------------------------

_TRANSACTIONAL_EXEMPT = "not needed: the message is transactional and carries no List-Unsubscribe"


def _list_unsubscribe_https(facts: _Facts) -> tuple[str, str]:
    values = facts.list_unsubscribe
    if not values:
        if not facts.commercial:
            return PASS, _TRANSACTIONAL_EXEMPT
        return FAIL, (
            "no List-Unsubscribe header: Gmail and Yahoo ask bulk senders for one with an https "
            "URI for one-click unsubscribe (RFC 8058)"
        )
    if len(values) > 1:
        return FAIL, f"List-Unsubscribe appears {len(values)} times: give it once, every URI in it"
    if not facts.unsubscribe_uris:
        return FAIL, (
            f"List-Unsubscribe holds no URI in angle brackets (<https://...>): "
            f"{_shown(values[0])!r}"
        )
    if facts.https_unsubscribe_uris:
        return PASS, f"https URI: {_shown(facts.https_unsubscribe_uris[0])}"
    http = [uri for uri in facts.unsubscribe_uris if _is_web(uri, "http")]
    if http:
        return FAIL, (
            f"only an http URI ({_shown(http[0])}): one-click unsubscribe needs https "
            "(RFC 8058 section 3.1)"
        )
    listed = ", ".join(_shown(uri, 60) for uri in facts.unsubscribe_uris)
    return FAIL, f"no https URI, only {listed}: one-click unsubscribe needs https (RFC 8058)"


def _list_unsubscribe_post(facts: _Facts) -> tuple[str, str]:
    values = [str(value) for value in facts.message.get_all("List-Unsubscribe-Post") or []]
    if not values:
        if facts.exempt:
            return PASS, _TRANSACTIONAL_EXEMPT
        return FAIL, f"no List-Unsubscribe-Post header: one-click needs it to be {ONE_CLICK}"
    if len(values) > 1:
        return FAIL, f"List-Unsubscribe-Post appears {len(values)} times: give it once"
    if values[0].strip() != ONE_CLICK:
        return FAIL, (
            f"List-Unsubscribe-Post is {_shown(values[0].strip())!r}; it must be exactly "
            f"{ONE_CLICK} (RFC 8058 section 3.1)"
        )
    return PASS, ONE_CLICK


_BOTH = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


def _dkim_covers_list_unsubscribe(facts: _Facts) -> tuple[str, str]:
    if facts.exempt and facts.message.get("List-Unsubscribe-Post") is None:
        return PASS, _TRANSACTIONAL_EXEMPT
    if not facts.signatures:
        return FAIL, (
            "no DKIM signature: List-Unsubscribe and List-Unsubscribe-Post must be signed "
            "(RFC 8058 section 4)"
        )
    covering = [signature for signature, signed in facts.signatures if _BOTH <= signed]
    if not covering:
        missing = "; ".join(
            f"{_signer(signature)} does not sign {' or '.join(sorted(_BOTH - signed))}"
            for signature, signed in facts.signatures
        )
        return FAIL, f"no DKIM signature lists both headers in h=: {missing}"
    verified = next((s for s in covering if s.result == "pass"), None)
    if verified is not None:
        return PASS, f"signed by the verified signature {_signer(verified)}"
    first = covering[0]
    if first.result == "temperror":
        return WARN, f"signed by {_signer(first)}, which could not be verified: {first.reason}"
    return FAIL, f"signed only by {_signer(first)}, which does not verify: {first.reason}"


def _dkim_valid(facts: _Facts) -> tuple[str, str]:
    signatures = [signature for signature, _signed in facts.signatures]
    if not signatures:
        return FAIL, "the message has no DKIM-Signature header"
    passing = [s for s in signatures if s.result == "pass"]
    others = "; ".join(f"{_signer(s)}: {s.reason}" for s in signatures if s.result != "pass")
    if passing:
        message = "verified: " + ", ".join(_signer(s) for s in passing)
        return PASS, message + (f" (not verified: {others})" if others else "")
    if any(s.result == "temperror" for s in signatures):
        return WARN, f"could not be verified: {others}"
    return FAIL, f"no signature verifies: {others}"


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list the package ships: nothing is fetched


def organisational_domain(domain: str) -> str:
    """RFC 7489 section 3.2: the public suffix and one label more (the domain itself when it is
    a public suffix)."""
    domain = domain.strip().rstrip(".").lower()
    return _public_suffixes().privatesuffix(domain) or domain


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()


def _from_domain(message: EmailMessage) -> tuple[str | None, str]:
    """(the From address's domain, "") or (None, why there is none)."""
    headers = message.get_all("From") or []
    if not headers:
        return None, "the message has no From header"
    if len(headers) > 1:
        return None, f"From appears {len(headers)} times"
    addresses = headers[0].addresses
    if len(addresses) != 1:
        return None, (
            f"From holds {len(addresses)} addresses; DMARC needs exactly one "
            "(RFC 7489 section 6.6.1)"
        )
    domain = _domain_of(addresses[0].addr_spec) if addresses[0].domain else ""
    if not domain:
        return None, f"the From address {_shown(str(headers[0]))!r} has no domain"
    return domain, ""


def _dmarc_alignment(facts: _Facts) -> tuple[str, str]:
    domain, why = _from_domain(facts.message)
    if domain is None:
        return FAIL, why
    organisation = organisational_domain(domain)
    relaxed = f"relaxed, organisational domain {organisation}"
    signatures = [signature for signature, _signed in facts.signatures]
    aligned = [s for s in signatures if organisational_domain(s.domain) == organisation]
    verified = next((s for s in aligned if s.result == "pass"), None)
    if verified is not None:
        return PASS, (
            f"the From domain {domain} aligns with the verified DKIM signature of "
            f"{verified.domain} ({relaxed})"
        )
    envelope = facts.mail_from or parseaddr(str(facts.message.get("Return-Path") or ""))[1]
    envelope_domain = _domain_of(envelope) if envelope else ""
    if envelope_domain and organisational_domain(envelope_domain) == organisation:
        return PASS, (
            f"the From domain {domain} aligns with the envelope sender's domain "
            f"{envelope_domain} for SPF ({relaxed}); SPF itself passes only from the servers "
            "that domain's SPF record lists"
        )
    if aligned:
        dkim_side = f"the DKIM signature of {aligned[0].domain} does not verify"
    elif signatures:
        signers = ", ".join(sorted({s.domain or "?" for s in signatures}))
        dkim_side = f"DKIM signs for {signers}, not under {organisation}"
    else:
        dkim_side = "there is no DKIM signature"
    if envelope_domain:
        spf_side = f"the envelope sender's domain {envelope_domain} is not under {organisation}"
    else:
        spf_side = "no envelope sender is known (no Return-Path, none given)"
    status = WARN if any(s.result == "temperror" for s in aligned) else FAIL
    return status, f"the From domain {domain} does not align: {dkim_side}; {spf_side}"


# Words that say "unsubscribe", compared without accents and case: English, German, French,
# Spanish, Portuguese, Italian, Dutch, Danish, Swedish, Polish, Czech.
_UNSUBSCRIBE_WORDS = re.compile(
    r"unsubscri|\bunsub\b|opt[\s_-]?out|abmeld|abbestell|austragen|desinscri|desabonn|"
    r"\bde baja\b|cancelar (?:la |a )?(?:suscripcion|subscricao|inscricao)|descadastr|"
    r"disiscri|cancellati|uitschrijv|afmeld|avregistr|avsluta prenumeration|wypisz|"
    r"odhlas"
)
_PREFERENCE_WORDS = re.compile(r"preferen|praferenz|einstellungen")


def _plain_words(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unquote(text))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _says(words: re.Pattern, link: Link) -> bool:
    return bool(words.search(_plain_words(link.text)) or words.search(_plain_words(link.url)))


def _unsubscribe_link_in_body(facts: _Facts) -> tuple[str, str]:
    links = facts.body.links
    header_uris = set(facts.https_unsubscribe_uris)
    found = next(
        (link for link in links if link.url in header_uris or _says(_UNSUBSCRIBE_WORDS, link)),
        None,
    )
    if found is not None:
        return PASS, f"link {_shown(found.text, 60)!r} to {_shown(found.url, 100)}"
    if not facts.commercial:
        return PASS, "not needed: the message is transactional"
    preferences = next((link for link in links if _says(_PREFERENCE_WORDS, link)), None)
    if preferences is not None:
        return WARN, (
            f"only a preferences link ({_shown(preferences.text, 60)!r} to "
            f"{_shown(preferences.url, 100)}): make sure it lets the recipient opt out of all "
            "commercial mail, or add a link that says unsubscribe"
        )
    where = "no visible link in the body" if not links else "no visible body link"
    return FAIL, (
        f"{where} says unsubscribe or opt out: a commercial message must show a clear way to "
        "opt out (15 U.S.C. 7704(a)(3))"
    )


def _postal_address(facts: _Facts) -> tuple[str, str]:
    if not facts.commercial:
        return PASS, "not needed: the message is transactional"
    address = find_postal_address(facts.body.text)
    if address is None:
        return FAIL, (
            "no postal address found in the body: a commercial message must show the sender's "
            "valid physical postal address (15 U.S.C. 7704(a)(5)(A)(iii))"
        )
    if address.complete:
        return PASS, f"postal address: {_shown(address.text)}"
    if address.street:
        missing = f"{_shown(address.street, 60)!r}, but no postal code near it"
    else:
        missing = f"a postal code and town {_shown(address.postal_code, 60)!r}, but no street"
    return WARN, f"found {missing}: check that the body shows a complete postal address"


def _subject(facts: _Facts) -> tuple[str, str]:
    values = facts.message.get_all("Subject") or []
    if not values:
        return FAIL, "the message has no Subject header"
    if len(values) > 1:
        return FAIL, f"Subject appears {len(values)} times"
    subject = str(values[0]).strip()
    if not subject:
        return FAIL, "the Subject is empty"
    return PASS, f"Subject: {_shown(subject, 100)}"


_CHECKS: dict[str, Callable[[_Facts], tuple[str, str]]] = {
    "list_unsubscribe_https": _list_unsubscribe_https,
    "list_unsubscribe_post": _list_unsubscribe_post,
    "dkim_covers_list_unsubscribe": _dkim_covers_list_unsubscribe,
    "dkim_valid": _dkim_valid,
    "dmarc_alignment": _dmarc_alignment,
    "unsubscribe_link_in_body": _unsubscribe_link_in_body,
    "postal_address": _postal_address,
    "subject": _subject,
}
CHECK_NAMES = tuple(_CHECKS)
