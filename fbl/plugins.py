"""What other apps plug into report handling, so that fbl imports none of them.

Dependencies point one way (DESIGN.md): `unsubscribe` uses `fbl` (its mailto path reads
auto-replies with fbl's reader), so `fbl` may not import `unsubscribe`. Instead the unsubscribe
app registers, when it starts (unsubscribe/apps.py):

- a token reader: our unsubscribe token in a link or trace header → the recipient, tenant,
  stream, topic and campaign it names, which attributes a report to our mail;
- a mail handler: mail to our per-recipient `mailto:` address → the unsubscribe it asks for.

Without registrations (fbl used on its own) no token is recognised and no mail is special.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class OurRecipient(Protocol):
    """What a valid token names: the rows of its tenant, stream and topic."""

    tenant: Any
    stream: Any
    topic: Any


@dataclass(frozen=True)
class TokenClaims:
    """The parts of a token's claims that reports need."""

    recipient: str
    campaign: str | None
    # The tenant, stream and topic rows, or None when they no longer exist.
    resolve: Callable[[], OurRecipient | None]


@dataclass(frozen=True)
class MailHandler:
    """A kind of inbound mail that is not a report: `matches(raw, envelope_recipient)` says
    whether a message is one; `handle(raw, envelope_recipient=..., tenant_id=...)` acts on it
    and returns what happened ("unsubscribed", "auto-reply", ...)."""

    kind: str
    matches: Callable[[bytes, str], bool]
    handle: Callable[..., str]
    # Outcomes that count as done (processed) and as ignored; anything else is unrecognised.
    done: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()


_token_reader: Callable[[str], TokenClaims | None] | None = None
_mail_handlers: list[MailHandler] = []


def register_token_reader(reader: Callable[[str], TokenClaims | None]) -> None:
    global _token_reader
    _token_reader = reader


def register_mail_handler(handler: MailHandler) -> None:
    if all(h.kind != handler.kind for h in _mail_handlers):
        _mail_handlers.append(handler)


def read_token(token: str) -> TokenClaims | None:
    """The claims of our token, or None (nothing registered, or not a valid token)."""
    return _token_reader(token) if _token_reader is not None else None


def mail_handler_for(raw: bytes, envelope_recipient: str) -> MailHandler | None:
    return next((h for h in _mail_handlers if h.matches(raw, envelope_recipient)), None)
