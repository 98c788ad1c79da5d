"""Which URLs an endpoint may have: HTTPS to a public address, so a staff member or a leaked
admin session cannot turn the service into a probe of the operator's own network.

`WEBHOOK_ALLOW_PRIVATE_TARGETS` (on under `make run` and in the tests) also allows plain HTTP
and loopback, private and link-local addresses. The check runs when an endpoint is saved and
again before each delivery, since a name can be pointed elsewhere after it was saved.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class RefusedTarget(ValueError):
    pass


def _addresses_of(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedTarget(f"{host} does not resolve: {exc}") from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in found]


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check(url: str, *, allow_private: bool) -> None:
    """Raise RefusedTarget, saying why, for a URL deliveries must not go to."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RefusedTarget("an endpoint URL is https://host/path")
    if parts.username or parts.password:
        raise RefusedTarget("an endpoint URL carries no user name or password; sign instead")
    if allow_private:
        return
    if parts.scheme != "https":
        raise RefusedTarget("an endpoint URL must use HTTPS")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise RefusedTarget(f"bad port in {url!r}") from exc
    for address in _addresses_of(parts.hostname, port):
        if _private(address):
            raise RefusedTarget(
                f"{parts.hostname} resolves to {address}, a loopback, private or link-local "
                "address (WEBHOOK_ALLOW_PRIVATE_TARGETS allows it)"
            )
