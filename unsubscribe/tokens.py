"""Unsubscribe tokens: opaque, authenticated, compact, rotatable. Pure Python (no Django).

RFC 8058 section 3.1: the one-click URI alone must identify the recipient and the list, because
the POST carries no cookie and no credentials, and it must be hard to forge. The token is the
claims encrypted with AES-256-GCM (AEAD): the address cannot be read from the URL, a changed or
truncated token fails authentication, and the key id in front lets keys rotate the way Django's
SECRET_KEY_FALLBACKS do: new links use the current key, old links work until their key is
retired. Tokens carry their issue time; they never expire unless a maximum age is configured, and
CAN-SPAM (15 U.S.C. 7704(a)(3)) needs the opt-out to keep working for at least 30 days.

Layout before base64url: key id (1 byte) | nonce (12) | ciphertext | tag (16).
Claims inside: version, issue time, tenant, stream, topic, campaign, recipient.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
MIN_MAX_AGE_SECONDS = 30 * 24 * 3600
_HEADER = struct.Struct(">BIIII")  # version, issued (unix s), tenant, stream, topic (0 = none)
_NONCE = 12
# Binds ciphertexts to this purpose: a key shared with another use cannot be replayed here.
_AAD = b"unsubscribe-token"


@dataclass(frozen=True)
class Claims:
    tenant_id: int
    recipient: str
    stream_id: int
    topic_id: int | None = None
    campaign: str | None = None
    issued_at: int = 0


def parse_keys(text: str) -> tuple[dict[int, str], int]:
    """`ID:SECRET[,ID:SECRET...]` as ({key id: secret}, the id of the first key, which signs new
    tokens). Raises ValueError saying which entry is wrong, without repeating any secret."""
    keys: dict[int, str] = {}
    for position, item in enumerate(text.split(","), start=1):
        kid, colon, secret = item.strip().partition(":")
        if not colon:
            raise ValueError(f"entry {position} is not ID:SECRET")
        # Key ids travel as the token's first byte.
        if not (kid.isascii() and kid.isdigit() and int(kid) <= 255):
            raise ValueError(f"entry {position}: the key id {kid!r} is not a number from 0 to 255")
        if not secret:
            raise ValueError(f"entry {position}: key {kid} has an empty secret")
        if int(kid) in keys:
            raise ValueError(f"entry {position}: key id {kid} is listed twice")
        keys[int(kid)] = secret
    return keys, next(iter(keys))


def derive_key(secret: str) -> bytes:
    """A 256-bit AES key from a configured secret of any length."""
    return hashlib.sha256(b"unsubscribe-token-key:" + secret.encode()).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """The bytes of a token's text, which must be exactly what _b64encode makes of them: the
    decoder alone would skip stray characters and ignore the unused low bits of the last
    character, so several texts would read as one token and a changed link could still work."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("not the canonical form of a token")
    return data


def _pack(claims: Claims, issued_at: int) -> bytes:
    campaign = (claims.campaign or "").encode()
    if len(campaign) > 255:
        raise ValueError("a campaign id is at most 255 bytes")
    return (
        _HEADER.pack(VERSION, issued_at, claims.tenant_id, claims.stream_id, claims.topic_id or 0)
        + bytes([len(campaign)])
        + campaign
        + claims.recipient.encode()
    )


def _unpack(data: bytes) -> Claims | None:
    if len(data) < _HEADER.size + 1:
        return None
    version, issued, tenant, stream, topic = _HEADER.unpack_from(data)
    if version != VERSION:
        return None
    length = data[_HEADER.size]
    start = _HEADER.size + 1
    try:
        campaign = data[start : start + length].decode()
        recipient = data[start + length :].decode()
    except UnicodeDecodeError:
        return None
    if not recipient:
        return None
    return Claims(
        tenant_id=tenant,
        recipient=recipient,
        stream_id=stream,
        topic_id=topic or None,
        campaign=campaign or None,
        issued_at=issued,
    )


class TokenCodec:
    """Mints and reads tokens with the keys {key id: 32-byte key}; `current` signs new ones."""

    def __init__(
        self,
        keys: Mapping[int, bytes],
        *,
        current: int,
        max_age: int | None = None,
        now: Callable[[], float] = time.time,
    ):
        if current not in keys:
            raise ValueError("the current key id must be one of the keys")
        if any(not 0 <= kid <= 255 for kid in keys):
            raise ValueError("key ids are 0 to 255")
        if max_age is not None and max_age < MIN_MAX_AGE_SECONDS:
            raise ValueError("unsubscribe links must keep working for at least 30 days")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self._current = current
        self._max_age = max_age
        self._now = now

    def mint(self, claims: Claims) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead[self._current].encrypt(nonce, _pack(claims, int(self._now())), _AAD)
        return _b64encode(bytes([self._current]) + nonce + sealed)

    def read(self, token: str) -> Claims | None:
        """The claims of a valid token, or None for anything tampered, truncated, unknown,
        signed by a retired key, or older than the maximum age."""
        if not token or len(token) > 1024:
            return None
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + _NONCE + 16:
            return None
        aead = self._aead.get(raw[0])
        if aead is None:
            return None
        try:
            plain = aead.decrypt(raw[1 : 1 + _NONCE], raw[1 + _NONCE :], _AAD)
        except InvalidTag:
            return None
        claims = _unpack(plain)
        if claims is None:
            return None
        if self._max_age is not None and self._now() - claims.issued_at > self._max_age:
            return None
        return claims

    def key_id_of(self, token: str) -> int | None:
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        return raw[0] if raw else None
