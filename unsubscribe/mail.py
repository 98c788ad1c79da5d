"""Unsubscribes by mail: a message to `unsubscribe+TOKEN@DOMAIN` opts out like a one-click POST.

Auto-replies (RFC 3834 `Auto-Submitted`, vacation notices) are not a person asking to leave, so
they change nothing.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from fbl.autoreply import is_auto_reply
from unsubscribe import links, services
from unsubscribe.models import UnsubscribeRequest

# The token alphabet is base64url; the local part keeps its case through Postfix's pipe.
_ADDRESS = re.compile(r"(?i)^unsubscribe\+([A-Za-z0-9_-]{20,1024})@")
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


def token_in(address: str | None) -> str | None:
    match = _ADDRESS.match((address or "").strip().strip("<>"))
    return match.group(1) if match else None


def find_token(message: Message, envelope_recipient: str | None = None) -> str | None:
    """Our token from the envelope recipient, else from the recipient headers."""
    token = token_in(envelope_recipient)
    if token:
        return token
    for header in _RECIPIENT_HEADERS:
        try:
            values = message.get_all(header) or []
        except Exception:  # a malformed header must not stop the search
            continue
        for _, address in getaddresses([str(v) for v in values]):
            token = token_in(address)
            if token:
                return token
    return None


def _headers(raw: bytes) -> Message:
    # Only header fields are read here: the body, however deeply its MIME parts nest, is never
    # parsed (the stdlib parser recurses once per level).
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def is_unsubscribe_mail(raw: bytes, envelope_recipient: str | None = None) -> bool:
    return find_token(_headers(raw), envelope_recipient) is not None


def unsubscribe_by_mail(
    raw: bytes,
    *,
    envelope_recipient: str | None = None,
    sender_ip: str | None = None,
    tenant_id: int | None = None,
) -> str:
    """Apply a mailto unsubscribe. Returns what happened: "unsubscribed", "auto-reply",
    "invalid-token", "other-tenant" (posted by a tenant the token does not belong to: it acts
    for nobody else) or "no-token". Raises DatabaseError when the database is unreachable (the
    caller keeps the message and retries)."""
    message = _headers(raw)
    token = find_token(message, envelope_recipient)
    if token is None:
        return "no-token"
    if is_auto_reply(message):
        return "auto-reply"
    claims = links.read_claims(token)
    if claims is None:
        return "invalid-token"
    if tenant_id is not None and claims.tenant_id != tenant_id:
        return "other-tenant"
    recipient = links.recipient_for(claims)
    if recipient is None:
        return "invalid-token"
    services.unsubscribe(
        recipient=recipient,
        evidence=services.Evidence(
            channel=UnsubscribeRequest.Channel.MAILTO,
            ip=sender_ip,
            user_agent=str(message.get("From", ""))[:500],
            token_key_id=links.codec().key_id_of(token),
        ),
    )
    return "unsubscribed"
