"""DKIM keys and signatures for tests: what a feedback-loop provider does to its reports."""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"content-type"]


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_record(key: rsa.RSAPrivateKey) -> str:
    """The TXT record that publishes the key (RFC 6376 section 3.6.1)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def dkim_sign(
    message: bytes, key: rsa.RSAPrivateKey, *, domain: str, selector: str = "s1", **options
) -> bytes:
    """`message` with a DKIM-Signature header prepended."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    header = dkim.sign(
        message, selector.encode(), domain.encode(), pem, include_headers=SIGNED_HEADERS, **options
    )
    return header + message
