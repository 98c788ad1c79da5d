"""DKIM verification of inbound feedback-loop reports (RFC 6376).

A report is trusted only when its DKIM signature verifies for a configured feedback-loop sender
(DESIGN.md, decisions). `verify` checks every signature of a message with dkimpy, looking keys
up through a dnspython resolver; `trusted_domain` picks the signing domain that earns trust.
Results use the RFC 8601 words: pass, fail, temperror (try again later), permerror.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import dkim
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
from dkim.util import DuplicateTag, InvalidTagValueList, parse_tag_value

from fbl.report import without_nul

__all__ = ["Signature", "resolver_for", "trusted_domain", "verify"]

Result = Literal["pass", "fail", "temperror", "permerror"]


@dataclass(frozen=True, slots=True)
class Signature:
    domain: str  # the d= tag, lower-case
    selector: str
    result: Result
    reason: str


def resolver_for(nameservers: Sequence[str] = (), timeout: float = 5.0) -> dns.resolver.Resolver:
    """A resolver asking `nameservers` ("IP", "IP:PORT", "[IPv6]:PORT"); none: the system's."""
    if isinstance(nameservers, str):
        nameservers = [nameservers]
    if timeout <= 0:
        raise ValueError(f"the DNS timeout must be positive, not {timeout!r}")
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [_nameserver(entry) for entry in nameservers]
    resolver.timeout = resolver.lifetime = timeout
    return resolver


def _nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    text, port = entry.strip(), "53"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"DNS server {entry!r}: write an IPv6 address as [ADDRESS]:PORT")
        port = rest[1:] or port
    elif text.count(":") == 1:  # IPv4:PORT; more colons is a bare IPv6 address
        host, port = text.split(":")
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"DNS server {entry!r}: {host!r} is not an IP address (a host name would itself "
            "need DNS to be found)"
        ) from None
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"DNS server {entry!r}: the port must be a number from 1 to 65535")
    return dns.nameserver.Do53Nameserver(str(address), int(port))


class _Outcome(Exception):
    """Raised from the key lookup to carry a verdict through dkimpy, which would otherwise turn
    a DNS timeout, a missing key and a bad key alike into a bare False."""

    def __init__(self, result: Result, reason: str) -> None:
        super().__init__(reason)
        self.result, self.reason = result, reason


def verify(raw: bytes, *, resolver: dns.resolver.Resolver | None = None) -> tuple[Signature, ...]:
    """One Signature per DKIM-Signature header of `raw`, in header order; () when unsigned.
    Never raises: whatever a hostile message does to dkimpy becomes a failed result."""
    lookup = _key_lookup(resolver)
    try:
        checker = dkim.DKIM(raw)
    except Exception as exc:  # the message cannot even be split into headers and body
        return tuple(
            _signature(value, "permerror", f"unreadable message: {exc}")
            for value in _signature_values(raw)
        )
    values = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    return tuple(
        _signature(value, *(_check(checker, i, value, lookup) if i < MAX_SIGNATURES else _TOO_MANY))
        for i, value in enumerate(values)
    )


# Each signature may cost a DNS timeout; real reports carry one or two.
MAX_SIGNATURES = 5
_TOO_MANY: tuple[Result, str] = ("permerror", f"not checked: more than {MAX_SIGNATURES} signatures")


def _weak(value: bytes) -> str | None:
    """Why a signature that verifies still proves too little, or None."""
    try:
        tags = parse_tag_value(value)
    except Exception:
        return None
    if tags.get(b"a", b"").strip().lower() == b"rsa-sha1":
        return "rsa-sha1 signatures are not accepted (RFC 8301 section 3.1)"
    if b"l" in tags:  # RFC 6376 8.2: text appended after the signed length goes unverified
        return "signed with a body length limit (l=): the rest of the body is unsigned"
    return None


def _check(checker: dkim.DKIM, index: int, value: bytes, lookup) -> tuple[Result, str]:
    try:
        if checker.verify(idx=index, dnsfunc=lookup):
            weak = _weak(value)
            return ("fail", weak) if weak else ("pass", "signature verified")
        return "fail", "signature did not verify"
    except _Outcome as outcome:
        return outcome.result, outcome.reason
    except dkim.MessageFormatError as exc:
        cause = exc.args[0] if exc.args else None
        if isinstance(cause, DuplicateTag):
            return "permerror", f"the {cause}= tag appears twice"
        if isinstance(cause, InvalidTagValueList):
            return "permerror", f"not a tag=value list: {cause}"
        return "permerror", f"malformed signature: {exc}"
    except dkim.ValidationError as exc:
        if str(exc).startswith("body hash mismatch"):
            return "fail", "body hash did not verify"
        return "permerror", f"invalid signature: {exc}"
    except Exception as exc:  # dkimpy has more failure paths than documented exceptions
        return "permerror", f"signature could not be checked: {exc}"


def _key_lookup(resolver: dns.resolver.Resolver | None):
    """dkimpy's dnsfunc: the key record's TXT strings joined, or an _Outcome saying why not."""

    def lookup(name: bytes, timeout: float = 5) -> bytes:  # the resolver's own timeout applies
        try:
            qname = dns.name.from_text(name.decode("utf-8"))
        except (UnicodeError, dns.exception.DNSException):
            where = name.decode("utf-8", "replace").rstrip(".")
            raise _Outcome("permerror", f"not a valid DNS name: {where}") from None
        where = qname.to_text(omit_final_dot=True)
        try:
            answer = (resolver or resolver_for()).resolve(qname, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise _Outcome("permerror", f"no key published at {where}") from None
        except dns.exception.Timeout:
            raise _Outcome("temperror", f"DNS timeout looking up {where}") from None
        except dns.resolver.NoNameservers:  # SERVFAIL, REFUSED or nobody answering
            raise _Outcome("temperror", f"no DNS server answered for {where}") from None
        except dns.resolver.NoResolverConfiguration:
            raise _Outcome("temperror", "no DNS resolver is configured") from None
        except Exception as exc:
            raise _Outcome("temperror", f"DNS lookup of {where} failed: {exc}") from None
        record = b"".join(answer[0].strings)  # RFC 6376 3.6.2.2: strings of one record concatenate
        try:  # dkimpy reports a bad key as a plain False: tell it from a bad signature here
            dkim.evaluate_pk(name, record)
        except Exception as exc:
            raise _Outcome("permerror", f"bad key record at {where}: {exc}") from None
        return record

    return lookup


def _signature(value: bytes, result: Result, reason: str) -> Signature:
    domain, selector = _domain_and_selector(value)
    # Hostile values can be huge: no DNS name is longer than 253 characters, no reason need be.
    return without_nul(Signature(domain[:255], selector[:255], result, _plain(reason)))


def _domain_and_selector(value: bytes) -> tuple[str, str]:
    try:
        tags = parse_tag_value(value)
    except Exception:  # unparsable tag list: pick out d= and s= as well as we can
        tags = {k: v for k, v in re.findall(rb"(?:^|;)\s*([ds])\s*=\s*([^;]*)", value)}
    domain, selector = (tags.get(t, b"").decode("utf-8", "replace").strip() for t in (b"d", b"s"))
    return domain.lower(), selector


def _plain(text: str, limit: int = 200) -> str:
    """dkimpy's messages as words: bytes values without their b'' quoting, cut short."""
    text = re.sub(r"""\bb(['"])(.*?)\1""", r"\2", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signature_values(raw: bytes) -> list[bytes]:
    """The DKIM-Signature values of a message dkimpy could not parse (best effort)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    return re.findall(rb"(?im)^dkim-signature[ \t]*:((?:.*(?:\r?\n[ \t].*)*))", head)


def trusted_domain(signatures: Iterable[Signature], fbl_domains: Iterable[str]) -> str | None:
    """The d= of the first passing signature by a configured domain or one of its subdomains."""
    if isinstance(fbl_domains, str):
        fbl_domains = [fbl_domains]
    configured = [d for d in (_normal(d) for d in fbl_domains) if d]
    for signature in signatures:
        domain = _normal(signature.domain)
        if signature.result == "pass" and any(
            domain == d or domain.endswith("." + d) for d in configured
        ):
            return signature.domain
    return None


def _normal(domain: str) -> str:
    return domain.strip().rstrip(".").lower()
