"""The DNS resolver of the domain checks: it asks only the nameservers it is given (or, given
none, the system's) and remembers each lookup that failed for a reason other than the name's
absence, so that a check can say "DNS timeout" or "SERVFAIL" where checkdmarc would fold the
failure into a message of its own. Pure Python: no Django import.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dns.exception
import dns.rdatatype
import dns.resolver

from fbl.dkim import resolver_for


@dataclass(frozen=True, slots=True)
class DnsFailure:
    """A lookup that got no usable answer: `kind` is "timeout", "SERVFAIL", "REFUSED",
    "NXDOMAIN" or "error" (no server could be asked)."""

    name: str
    rdtype: str
    kind: str
    servers: str
    timeout: float

    def describe(self) -> str:
        what = f"{self.rdtype} {self.name}"
        match self.kind:
            case "timeout":
                return (
                    f"DNS timeout: no answer for {what} from {self.servers} "
                    f"within {self.timeout:g} s"
                )
            case "NXDOMAIN":
                return f"NXDOMAIN: {self.name} does not exist in DNS"
            case "SERVFAIL" | "REFUSED":
                return f"{self.kind}: {self.servers} could not answer {what}"
            case _:
                return f"DNS error: no server could be asked for {what} ({self.servers})"


def failure_of(
    exc: Exception, name: str, rdtype: str, resolver: CheckResolver
) -> DnsFailure | None:
    """The failure `exc` (raised by a lookup of `name`) stands for, or None when it is an answer
    (NoAnswer: the name exists without records of that type)."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        kind = "NXDOMAIN"
    elif isinstance(exc, dns.exception.Timeout):
        kind = "timeout"
    elif isinstance(exc, dns.resolver.NoNameservers):
        # Each entry: (server, over TCP, port, the error or the rcode's text, the response).
        answered = {entry[3] for entry in exc.kwargs.get("errors") or () if len(entry) > 3}
        kind = next((rcode for rcode in ("SERVFAIL", "REFUSED") if rcode in answered), "error")
    elif isinstance(exc, dns.resolver.NoAnswer):
        return None
    elif isinstance(exc, dns.exception.DNSException):
        kind = "error"
    else:
        return None
    return DnsFailure(
        name=str(name).rstrip("."),
        rdtype=rdtype,
        kind=kind,
        servers=resolver.servers_text(),
        timeout=resolver.lifetime,
    )


class CheckResolver(dns.resolver.Resolver):
    """A dnspython resolver over `nameservers` ("IP", "IP:PORT", "[IPv6]:PORT"; none: the
    system resolver) whose lookups each end within `timeout` seconds. Raises ValueError for a
    nameserver that is not an IP address (a host name would itself need DNS) or a timeout that
    is not positive."""

    def __init__(self, nameservers: Sequence[str] = (), *, timeout: float) -> None:
        configured = resolver_for(list(nameservers), timeout=timeout)
        super().__init__(configure=False)
        self.nameservers = configured.nameservers
        self.configured = bool(nameservers)
        # Several tries within the lifetime: one lost UDP datagram does not end a lookup.
        self.timeout = min(1.0, timeout)
        self.lifetime = timeout
        self.cache = None  # every check reads what DNS says now
        self.failures: list[DnsFailure] = []

    def servers_text(self) -> str:
        if not self.configured:
            return "the system resolver"
        return ", ".join(_server_text(ns) for ns in self.nameservers)

    def resolve(self, qname, rdtype=dns.rdatatype.A, *args, **kwargs):
        try:
            return super().resolve(qname, rdtype, *args, **kwargs)
        except dns.exception.DNSException as exc:
            text = rdtype if isinstance(rdtype, str) else dns.rdatatype.to_text(rdtype)
            failure = failure_of(exc, str(qname), text.upper(), self)
            if failure is not None and failure.kind != "NXDOMAIN":
                # A missing name is an answer the checks read themselves (a _dmarc name that
                # does not exist is the normal case); the others are failures of DNS.
                self.failures.append(failure)
            raise

    @contextmanager
    def watching(self) -> Iterator[list[DnsFailure]]:
        """The failures of the lookups made inside the block."""
        seen: list[DnsFailure] = []
        start = len(self.failures)
        try:
            yield seen
        finally:
            seen.extend(self.failures[start:])


def _server_text(nameserver) -> str:
    address, port = getattr(nameserver, "address", str(nameserver)), getattr(nameserver, "port", 53)
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
