"""The pre-send check as the API, the command and the staff page run it: DKIM keys asked of the
configured DNS servers (DKIM_NAMESERVERS, DKIM_DNS_TIMEOUT) unless the caller names others, and
the answer in the shared check-result shape with the kind the message was judged as."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.resolver
from django.conf import settings

from compliance.check_results import as_json
from compliance.models import Stream
from compliance.preflight.checks import check_message
from fbl.dkim import resolver_for

COMMERCIAL = Stream.Kind.COMMERCIAL.value
TRANSACTIONAL = Stream.Kind.TRANSACTIONAL.value


def resolver(nameservers: Sequence[str] | None = None) -> dns.resolver.Resolver:
    """A resolver asking `nameservers`, else DKIM_NAMESERVERS, else the system's. Raises
    ValueError for a server that is not an IP address with an optional port."""
    chosen = settings.DKIM_NAMESERVERS if nameservers is None else nameservers
    try:
        return resolver_for(chosen, timeout=settings.DKIM_DNS_TIMEOUT)
    except dns.exception.DNSException:
        # No system resolver configured: every key lookup then fails as a temporary error,
        # which the DKIM checks show as such rather than as a pass.
        empty = dns.resolver.Resolver(configure=False)
        empty.nameservers = []
        return empty


def preflight(
    raw: bytes,
    *,
    kind: str = COMMERCIAL,
    nameservers: Sequence[str] | None = None,
    mail_from: str | None = None,
) -> dict[str, Any]:
    """`{"kind", "verdict", "checks"}` for the raw message. Raises checks.NotAMessage for bytes
    that are no message, ValueError for a bad DNS server or kind."""
    if kind not in (COMMERCIAL, TRANSACTIONAL):
        raise ValueError(f"the kind is {COMMERCIAL} or {TRANSACTIONAL}, not {kind!r}")
    checks = check_message(
        raw,
        resolver=resolver(nameservers),
        commercial=kind == COMMERCIAL,
        mail_from=mail_from or None,
    )
    return as_json(checks, kind=kind)
