"""Unsubscribe links: minting them for a message and reading the token a recipient brings back.

Writes nothing: a token carries its claims (unsubscribe/tokens.py), so minting stores no row.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError

from compliance.errors import ServiceError
from compliance.models import Stream, Tenant, Topic
from compliance.selectors import stream_by_id
from suppression import addresses, rules
from suppression.scopes import Target
from unsubscribe.tokens import Claims, TokenCodec, derive_key, parse_keys

ONE_CLICK_POST = "List-Unsubscribe=One-Click"


@functools.cache
def _codec_for(keys: str, max_age_days: int) -> TokenCodec:
    # Malformed keys and a maximum age under 30 days are refused at start (compliance.checks).
    by_id, current = parse_keys(keys)
    return TokenCodec(
        {kid: derive_key(secret) for kid, secret in by_id.items()},
        current=current,
        max_age=max_age_days * 86400 or None,
    )


def codec() -> TokenCodec:
    return _codec_for(settings.UNSUBSCRIBE_TOKEN_KEYS, settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS)


# --- minting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MintedLink:
    recipient: str
    url: str
    mailto: str | None

    @property
    def list_unsubscribe(self) -> str:
        # RFC 8058 section 3.1: exactly one HTTPS URI, optionally with a mailto.
        value = f"<{self.url}>"
        return f"{value}, <mailto:{self.mailto}>" if self.mailto else value

    @property
    def list_unsubscribe_post(self) -> str:
        return ONE_CLICK_POST


def mint_link(
    *, stream: Stream, recipient: str, topic: Topic | None = None, campaign: str | None = None
) -> MintedLink:
    """List-Unsubscribe values for one message. Raises ServiceError for an invalid recipient,
    a transactional stream (exempt from the opt-out duty) or an over-long campaign id."""
    if not stream.is_commercial:
        raise ServiceError(
            f"stream {stream.slug!r} is transactional: its mail carries no unsubscribe link",
            code="transactional_stream",
        )
    try:
        normalised = addresses.normalise(recipient)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid recipient {recipient!r}: {exc.reason}", code="invalid_address"
        ) from exc
    if campaign and len(campaign.encode()) > 255:
        raise ServiceError("campaign is at most 255 bytes", code="invalid")
    token = codec().mint(
        Claims(
            tenant_id=stream.tenant_id,
            recipient=normalised,
            stream_id=stream.pk,
            topic_id=topic.pk if topic else None,
            campaign=campaign or None,
        )
    )
    mailto = None
    if settings.UNSUBSCRIBE_MAILTO_DOMAIN:
        mailto = f"unsubscribe+{token}@{settings.UNSUBSCRIBE_MAILTO_DOMAIN}"
    return MintedLink(
        recipient=normalised, url=f"{settings.UNSUBSCRIBE_BASE_URL}/u/{token}", mailto=mailto
    )


# --- reading a token -------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A valid token's claims with the rows they name."""

    claims: Claims
    tenant: Tenant
    stream: Stream
    topic: Topic | None

    @property
    def link_target(self) -> Target:
        """What the link in the message opts out of: its topic, else its stream."""
        if self.topic is not None:
            return Target(
                tenant=self.tenant, scope=rules.TOPIC, stream=self.stream, topic=self.topic
            )
        return Target(tenant=self.tenant, scope=rules.STREAM, stream=self.stream)

    @property
    def all_commercial(self) -> Target:
        return Target(tenant=self.tenant, scope=rules.COMMERCIAL)


def read_claims(token: str) -> Claims | None:
    return codec().read(token)


def names_for(claims: Claims) -> dict:
    """Sender and stream names for the pages, from the per-process cache; empty if unknown
    (the database may be down: the opt-out is captured all the same)."""
    try:
        stream = stream_by_id(claims.stream_id)
    except DatabaseError:
        return {}
    if stream is None:
        return {}
    return {"stream": stream.name, "sender": stream.tenant.name}


def recipient_for(claims: Claims) -> Recipient | None:
    """The rows a token names, or None when they no longer exist (needs the database)."""
    stream = (
        Stream.objects.select_related("tenant")
        .filter(pk=claims.stream_id, tenant_id=claims.tenant_id)
        .first()
    )
    if stream is None:
        return None
    topic = None
    if claims.topic_id is not None:
        topic = Topic.objects.filter(pk=claims.topic_id, stream=stream).first()
        if topic is None:
            return None
    return Recipient(claims=claims, tenant=stream.tenant, stream=stream, topic=topic)
