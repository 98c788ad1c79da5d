"""Keyed hashes a relay sends in place of addresses (the batch check's `hashes`).

A relay that keeps a mirror of the list (docs/relays/mirror.md) holds the service's address hash
key and hashes its addresses itself; it can then ask with the hashes, in the hex the hash export
writes, and the service has nothing to normalise or hash. Each hash is HMAC-SHA256 of the
normalised address: 64 hexadecimal digits, either case.

It imports nothing from Django, like suppression/addresses.py.
"""

from __future__ import annotations

from typing import NamedTuple

from suppression.partition_routes import HASH_BYTES

HEX_DIGITS = 2 * HASH_BYTES
NOT_A_HASH = f"not a hash: {HEX_DIGITS} hexadecimal digits expected"


class Parsed(NamedTuple):
    hashes: bytes  # the valid hashes, 32 bytes each end to end, as given (repeats too)
    keys: list[str]  # each given hash in lower case: the given list itself if all were already
    invalid: list[tuple[str, str]]  # (given, reason) of those that are no hash, in given order


def parse(given: list[str]) -> Parsed:
    """Read a batch of hex hashes. The whole batch is decoded in one call when every item is a
    hash, which is the usual case and costs a fraction of a millisecond for 10,000; otherwise
    item by item, to name the bad ones."""
    joined = "".join(given)
    lowered = joined.lower()
    keys = given if lowered == joined else [item.lower() for item in given]
    if len(joined) == HEX_DIGITS * len(given):
        # bytes.fromhex skips whitespace between digit pairs: the decoded length tells whether
        # every character was a digit.
        try:
            decoded = bytes.fromhex(joined)
        except ValueError:
            decoded = b""
        if len(decoded) == HASH_BYTES * len(given):
            return Parsed(decoded, keys, [])
    valid: list[bytes] = []
    invalid: list[tuple[str, str]] = []
    for item in given:
        digest = _decoded(item)
        if digest is None:
            invalid.append((item, NOT_A_HASH))
        else:
            valid.append(digest)
    return Parsed(b"".join(valid), keys, invalid)


def _decoded(item: str) -> bytes | None:
    if len(item) != HEX_DIGITS:
        return None
    try:
        digest = bytes.fromhex(item)
    except ValueError:
        return None
    return digest if len(digest) == HASH_BYTES else None
