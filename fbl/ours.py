"""Recognising our own mail inside a report: whose message it was (tenant, stream, topic,
campaign) and, through the parser's hooks, who received it.

Our token travels in every message's List-Unsubscribe header (and may be copied into the trace
header); it names the tenant, stream, topic, campaign and recipient exactly. Without it, the
original envelope sender tells the tenant and stream through the sending identities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32

from django.conf import settings

from compliance.models import Stream, Tenant, Topic
from compliance.selectors import identity_for_sender
from fbl import plugins
from fbl.addresses import first_address
from fbl.events import Context
from fbl.headers import header, header_all
from fbl.plugins import TokenClaims
from fbl.recipients import RecoveryHooks, list_unsubscribe_uris, verp_decode
from fbl.report import ParsedReport

# A token as it appears in our links: https://HOST/u/TOKEN[/...] or mailto:unsubscribe+TOKEN@
_TOKEN_IN = re.compile(r"(?:/u/|unsubscribe\+)([A-Za-z0-9_-]{20,1024})")
_BARE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,1024}$")


@dataclass(frozen=True)
class Attribution:
    tenant: Tenant | None = None
    stream: Stream | None = None
    topic: Topic | None = None
    campaign: str = ""
    found_by: str = ""  # "token", "sender", "relay", or "" when nothing was found
    recipient: str | None = None  # the recipient our token names, when found by token


def claims_in(value: str) -> TokenClaims | None:
    """The claims of our token in a List-Unsubscribe URI or trace header value."""
    value = (value or "").strip()
    match = _TOKEN_IN.search(value)
    token = match.group(1) if match else (value if _BARE_TOKEN.match(value) else None)
    if token is None:
        return None
    try:
        return plugins.read_token(token)
    except Exception:  # a hostile value must never stop a report's processing
        return None


def _read_token(value: str) -> str | None:
    claims = claims_in(value)
    return claims.recipient if claims else None


def hooks() -> RecoveryHooks:
    return RecoveryHooks(
        read_token=_read_token,
        trace_header=settings.FBL_TRACE_HEADER,
        verp_prefix=settings.FBL_VERP_PREFIX or None,
    )


def _claims_in_headers(enclosed: Message) -> TokenClaims | None:
    for value in header_all(enclosed, "List-Unsubscribe"):
        for uri in list_unsubscribe_uris(value):
            claims = claims_in(uri)
            if claims:
                return claims
    return claims_in(header(enclosed, settings.FBL_TRACE_HEADER) or "")


def _from_claims(claims: TokenClaims) -> Attribution | None:
    recipient = claims.resolve()
    if recipient is None:
        return None
    return Attribution(
        tenant=recipient.tenant,
        stream=recipient.stream,
        topic=recipient.topic,
        campaign=claims.campaign or "",
        found_by="token",
        recipient=claims.recipient,
    )


def _from_sender(sender: str | None) -> Attribution | None:
    if not sender or "@" not in sender:
        return None
    identity = identity_for_sender(sender.strip().strip("<>"))
    if identity is None:
        return None
    return Attribution(tenant=identity.tenant, stream=identity.stream, found_by="sender")


def _enclosed_sender(enclosed: Message) -> str | None:
    for name in ("Return-Path", "Sender", "From"):
        found = first_address(header(enclosed, name))
        if found:
            return found
    return None


def attribute_report(report: ParsedReport) -> Attribution:
    """Whose mail a report is about: our token in the enclosed headers, else the original
    envelope sender's identity; an empty Attribution when neither is ours. `recipient` is the
    one our token names whenever a valid token is there, even if its list no longer exists."""
    enclosed = HeaderParser(policy=compat32).parsestr(report.original_headers or "")
    claims = _claims_in_headers(enclosed)
    found = _from_claims(claims) if claims else None
    found = found or _from_sender(report.original_mail_from)
    found = found or _from_sender(_enclosed_sender(enclosed))
    found = found or Attribution()
    if claims is not None and found.recipient is None:
        found = replace(found, recipient=claims.recipient)
    return found


def attribute_context(context: Context) -> Attribution:
    """Whose mail a relay event is about: the tenant and stream the relay tagged it with, else
    the envelope sender's identity."""
    tenant = stream = None
    if context.tenant:
        tenant = Tenant.objects.filter(slug=context.tenant).first()
    if context.stream:
        streams = Stream.objects.select_related("tenant").filter(slug=context.stream)
        stream = streams.filter(tenant=tenant).first() if tenant else None
        if stream is None and tenant is None:
            stream = streams.first() if streams.count() == 1 else None
        tenant = tenant or (stream.tenant if stream else None)
    if tenant is not None:
        return Attribution(
            tenant=tenant, stream=stream, campaign=context.campaign or "", found_by="relay"
        )
    found = _from_sender(context.sender)
    if found is not None:
        return Attribution(
            tenant=found.tenant,
            stream=found.stream,
            campaign=context.campaign or "",
            found_by="sender",
        )
    return Attribution(campaign=context.campaign or "")


def addresses_of_our_mail(
    report: ParsedReport,
    *,
    token_recipient: str | None = None,
    raw: bytes = b"",
    envelope_recipient: str = "",
) -> frozenset[str]:
    """Recipients a report ties to mail we sent by our own marks (lower-cased): the recipient
    our token names in the enclosed message (`token_recipient`, as `attribute_report` found it),
    and the addresses our VERP return paths encode (the bounce's envelope recipient, its To:,
    X-Original-To and Delivered-To, and the enclosed message's Return-Path)."""
    found: set[str] = set()
    current = hooks()
    enclosed = HeaderParser(policy=compat32).parsestr(report.original_headers or "")
    if token_recipient:
        found.add(token_recipient.lower())
    outer = BytesHeaderParser(policy=compat32).parsebytes(raw)  # the header fields only
    paths = [envelope_recipient, header(enclosed, "Return-Path")]
    for name in ("To", "X-Original-To", "Delivered-To"):
        paths.extend(header_all(outer, name))
    for path in paths:
        decoded = verp_decode(path, current)
        if decoded:
            found.add(decoded.lower())
    return frozenset(found)
