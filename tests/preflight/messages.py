"""Messages for the pre-send check: a good commercial message, the same message with one thing
wrong, and DKIM signing as the sending system would do it."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fbl.signing import key_record, new_key

__all__ = ["compose", "key_record", "new_key", "sign"]  # and the constants

SIGNING_DOMAIN = "example.test"  # d=: the organisational domain of the From address's
SELECTOR = "s1"
KEY_NAME = f"{SELECTOR}._domainkey.{SIGNING_DOMAIN}"
FROM = "Example Shop <news@shop.example.test>"
UNSUBSCRIBE_URL = "https://shop.example.test/u/tok123"
LIST_UNSUBSCRIBE = f"<{UNSUBSCRIBE_URL}>, <mailto:unsubscribe@shop.example.test?subject=tok123>"
ONE_CLICK = "List-Unsubscribe=One-Click"
# What a mailing system signs: the one-click headers with the usual ones (RFC 8058 section 4).
SIGNED = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
]

TEXT = f"""Our spring sale starts today: 20% off everything.

To stop receiving these emails, unsubscribe here:
{UNSUBSCRIBE_URL}

Example Shop Ltd
12 Main Street
Springfield, IL 62704
"""
HTML = f"""<!doctype html><html><head><title>Spring sale</title>
<style>p {{ color: #333; }}</style></head>
<body><p>Our spring sale starts today: 20% off everything.</p>
<p><a href="https://shop.example.test/sale">See the sale</a></p>
<p style="font-size:12px"><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></p>
<p>Example Shop Ltd<br>12 Main Street<br>Springfield, IL 62704</p>
</body></html>
"""

KEEP = object()


def compose(
    *,
    subject=KEEP,
    from_=FROM,
    list_unsubscribe=LIST_UNSUBSCRIBE,
    list_unsubscribe_post=ONE_CLICK,
    text: str = TEXT,
    html: str | None = HTML,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The good message, or with what is named changed; None leaves a header out."""
    message = EmailMessage()
    message["From"] = from_
    message["To"] = "pat@example.com"
    if subject is not None:
        message["Subject"] = "Spring sale: 20% off" if subject is KEEP else subject
    message["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    message["Message-ID"] = "<sale-2026@shop.example.test>"
    if list_unsubscribe is not None:
        message["List-Unsubscribe"] = list_unsubscribe
    if list_unsubscribe_post is not None:
        message["List-Unsubscribe-Post"] = list_unsubscribe_post
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=SMTP)


def sign(
    raw: bytes,
    key: rsa.RSAPrivateKey,
    *,
    domain: str = SIGNING_DOMAIN,
    selector: str = SELECTOR,
    signed: list[str] = SIGNED,
) -> bytes:
    """`raw` with a DKIM-Signature header prepended, made with dkimpy (relaxed/relaxed)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    header = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        pem,
        include_headers=[name.encode() for name in signed],
        canonicalize=(b"relaxed", b"relaxed"),
    )
    return header + raw
