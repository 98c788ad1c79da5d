"""Feedback-loop complaint reports: ARF (RFC 5965), as profiled by RFC 6650, with the
auth-failure extension (RFC 6591), and the provider formats that break them.

RFC 5965 section 2: a multipart/report; report-type=feedback-report with a human-readable
part, a message/feedback-report part of "Name: value" fields, and the original as message/rfc822
or text/rfc822-headers. Real loops deviate: the feedback part labelled text/plain or base64
encoded, the original missing, Outlook.com's JMRP with no feedback part at all, addresses
redacted (RFC 6590). Each deviation is accepted and named in `problems`.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

from fbl.addresses import MAX_RECIPIENTS
from fbl.headers import (
    content_type,
    decoded_header,
    enclosed_original,
    field_blocks,
    header,
    header_all,
    leaves,
    parse_date,
    part_text,
    report_type,
)
from fbl.recipients import RecoveryHooks, recover
from fbl.report import AuthFailure, ParsedReport

__all__ = [
    "MAX_FEEDBACK_TYPE",
    "PROVIDER_RECIPIENT_FIELDS",
    "feedback_type_of",
    "is_arf",
    "parse_arf",
]

# Characters kept of a Feedback-Type. The registered types (RFC 5965 7.3, RFC 6650, RFC 6591)
# are at most 12; storage holds 40.
MAX_FEEDBACK_TYPE: Final = 40

# Providers that name the complaining recipient in a header of their own, in the enclosed
# message or the report itself (DESIGN.md: "Original-Rcpt-To (or a provider's own field)").
PROVIDER_RECIPIENT_FIELDS: Final[dict[str, str]] = {
    "X-HmXmrOriginalRecipient": "Outlook.com JMRP",
}

# Outlook.com's Junk Mail Reporting Program sends a multipart/mixed message that only encloses
# the original; the provider field above marks it. Its complaints are spam-button clicks.
_JMRP_FEEDBACK_TYPE: Final = "abuse"

_FEEDBACK_FIELD: Final = re.compile(r"(?im)^feedback-type[ \t]*:")

# RFC 5965 3.1: "Feedback-Type:" [CFWS] token [CFWS]; a token as in RFC 2045 5.1 (no spaces,
# controls or tspecials). Comments (RFC 5322 3.2.2) may stand on either side.
_LEADING_CFWS: Final = re.compile(r"(?:\s|\((?:[^()\\]|\\.){0,200}\))*")
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_ONLY_CFWS: Final = re.compile(r"(?:\s|\((?:[^()\\]|\\.)*\)|;.*)*")


def feedback_type_of(value: str | None, problems: list[str]) -> str | None:
    """The feedback type a Feedback-Type value names (RFC 5965 3.1): its token, lower-cased
    (the registry spells the types in lower case), at most MAX_FEEDBACK_TYPE characters.
    Comments and what follows the token are not part of it; junk is named in `problems`."""
    if not value:
        return None
    start = _LEADING_CFWS.match(value).end()
    token = _TOKEN.match(value, start)
    if token is None:
        return None
    rest = value[token.end() :]
    if rest and not _ONLY_CFWS.fullmatch(rest[:1000]):
        problems.append(
            f"text after the Feedback-Type {token.group(0)[:MAX_FEEDBACK_TYPE]!r} ignored "
            "(RFC 5965 3.1: a single token)"
        )
    feedback_type = token.group(0)
    if len(feedback_type) > MAX_FEEDBACK_TYPE:
        problems.append(f"Feedback-Type longer than {MAX_FEEDBACK_TYPE} characters: cut")
        feedback_type = feedback_type[:MAX_FEEDBACK_TYPE]
    return feedback_type.lower()


def is_arf(msg: Message) -> bool:
    """A feedback report by its structure (RFC 5965 2), a feedback part under any content
    type, or a provider's enclosed-original format."""
    return _feedback_part(msg) is not None or _provider_field(msg) is not None


def _feedback_part(msg: Message) -> Message | None:
    parts = leaves(msg)
    for part in parts:
        if content_type(part) == "message/feedback-report":
            return part
    # A feedback part mislabelled as text/plain (or anything textual): recognise it by its
    # first field, but only in a report that says it is one or has no other structure.
    if report_type(msg) == "feedback-report" or len(parts) <= 3:
        for part in parts:
            if content_type(part).split("/")[0] in ("text", "application") and part is not msg:
                text = part_text(part, limit=4096)
                if _FEEDBACK_FIELD.search(text) and "version" in text.lower():
                    return part
    return None


def _provider_field(msg: Message) -> tuple[str, list[str]] | None:
    enclosed, _ = enclosed_original(msg)
    for source in (enclosed, msg):
        if source is None:
            continue
        for name in PROVIDER_RECIPIENT_FIELDS:
            values = header_all(source, name)
            if values:
                return name, values
    return None


def parse_arf(
    msg: Message, *, raw_size: int, hooks: RecoveryHooks, problems: list[str]
) -> ParsedReport:
    feedback = _feedback_part(msg)
    provider = _provider_field(msg)
    fields: dict[str, list[str]] = {}
    if feedback is not None:
        if content_type(feedback) != "message/feedback-report":
            problems.append(
                f"feedback fields found in a {content_type(feedback)} part "
                "instead of message/feedback-report (RFC 5965 section 2)"
            )
        for block in field_blocks(part_text(feedback)):
            for name, value in block:
                fields.setdefault(name.lower(), []).append(value)
    elif provider is not None:
        problems.append(
            f"{PROVIDER_RECIPIENT_FIELDS[provider[0]]} format: no message/feedback-report part"
        )
    if feedback is not None and report_type(msg) != "feedback-report":
        problems.append("not a multipart/report; report-type=feedback-report (RFC 5965 2)")

    def first(name: str) -> str | None:
        values = fields.get(name)
        return values[0] if values else None

    feedback_type = feedback_type_of(first("feedback-type"), problems)
    if feedback_type is None:
        if feedback is None and provider is not None:
            feedback_type = _JMRP_FEEDBACK_TYPE
        else:
            problems.append("no Feedback-Type field (RFC 5965 3.1 requires it)")
    if feedback is not None and first("version") is None:
        problems.append("no Version field (RFC 5965 3.1 requires it)")

    enclosed, original_headers = enclosed_original(msg)
    if enclosed is None:
        problems.append("no enclosed original message or headers (RFC 5965 2, third part)")
    elif not original_headers:
        problems.append("the enclosed original has no headers (redacted or empty)")

    arrival_text = first("arrival-date") or first("received-date")
    arrival = parse_date(arrival_text)
    if arrival_text and arrival is None:
        problems.append(f"unreadable Arrival-Date: {arrival_text[:80]}")

    incidents: int | None = None
    incidents_text = first("incidents")
    if incidents_text:
        try:
            incidents = int(incidents_text.split()[0])
        except (ValueError, IndexError):
            problems.append(f"unreadable Incidents: {incidents_text[:40]}")

    original_mail_from = first("original-mail-from")
    original_rcpt_to = tuple(fields.get("original-rcpt-to", [])[:MAX_RECIPIENTS])
    provider_rcpt = list(provider[1])[:MAX_RECIPIENTS] if provider else []
    recipients = recover(
        enclosed=enclosed,
        hooks=hooks,
        original_rcpt_to=original_rcpt_to,
        provider_rcpt=provider_rcpt,
        return_paths=[original_mail_from],
    )
    if not recipients:
        problems.append("no recipient address found")
    elif all(r.redacted for r in recipients):
        problems.append("the recipient address is redacted")

    auth_failure = None
    if feedback_type == "auth-failure" or "auth-failure" in fields:
        auth_failure = AuthFailure(
            auth_failure=first("auth-failure"),
            delivery_result=first("delivery-result"),
            dkim_domain=first("dkim-domain"),
            dkim_identity=first("dkim-identity"),
            dkim_selector=first("dkim-selector"),
            dkim_canonicalized_header=first("dkim-canonicalized-header"),
            dkim_canonicalized_body=first("dkim-canonicalized-body"),
            spf_dns=tuple(fields.get("spf-dns", [])),
            identity_alignment=first("identity-alignment"),
        )

    subject = decoded_header(msg, "Subject", problems=problems)
    source_ip = first("source-ip")
    if source_ip is None and provider is not None:
        source_ip = header(enclosed, "X-Reporter-IP") if enclosed is not None else None

    return ParsedReport(
        kind="arf",
        feedback_type=feedback_type,
        user_agent=first("user-agent"),
        version=first("version"),
        original_mail_from=original_mail_from,
        original_rcpt_to=original_rcpt_to,
        arrival_date=arrival,
        reporting_mta=_strip_type(first("reporting-mta")),
        source_ip=source_ip,
        reported_domains=tuple(fields.get("reported-domain", [])),
        reported_uris=tuple(fields.get("reported-uri", [])),
        authentication_results=tuple(fields.get("authentication-results", [])),
        incidents=incidents,
        original_message_id=header(enclosed, "Message-ID") if enclosed is not None else None,
        original_headers=original_headers,
        recipients=recipients,
        problems=tuple(problems),
        raw_size=raw_size,
        original_envelope_id=first("original-envelope-id"),
        auth_failure=auth_failure,
        subject=subject,
    )


def _strip_type(value: str | None) -> str | None:
    # "dns; mx.example.com" (RFC 3464 2.2.2 syntax, reused by RFC 5965 3.2)
    if value and ";" in value:
        return value.split(";", 1)[1].strip() or None
    return value
