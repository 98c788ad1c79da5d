"""The one result type for every inbound report: a parsed complaint, bounce or auto-reply.

Every source (ARF and DSN mail here; KumoMTA log records and ESP webhook events in their own
adapters) produces a `ParsedReport`, so everything after parsing (dedupe, trust, actions,
counting) is written once. The parser never guesses silently: what it could not find or had to
work around is listed in plain words in `problems`, and a message it cannot read at all comes
back as kind "unknown" rather than as an exception.

No Django import here: this module is used by management commands, the HTTP endpoint, tests and
benchmarks alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal

__all__ = [
    "CATEGORIES",
    "FOUND_BY",
    "KINDS",
    "AuthFailure",
    "Category",
    "FoundBy",
    "Kind",
    "ParseError",
    "ParsedReport",
    "Recipient",
    "to_json",
    "without_nul",
]

Kind = Literal["arf", "dsn", "autoreply", "unknown"]
KINDS: Final[tuple[Kind, ...]] = ("arf", "dsn", "autoreply", "unknown")

# permanent: the address is dead ("user unknown / no such domain / moved / disabled"): suppress.
# transient: a condition at the recipient's side that may clear (4.x.x, mailbox full): count
#            towards the soft-bounce threshold.
# blocked:   the receiver refused the mail for what it is or who sent it (spam, blocklists,
#            authentication, content): a reputation signal, never a recipient suppression.
# unknown:   nothing said about the recipient (message too big, protocol errors, delivered, or
#            no status at all).
Category = Literal["permanent", "transient", "blocked", "unknown"]
CATEGORIES: Final[tuple[Category, ...]] = ("permanent", "transient", "blocked", "unknown")

# Which rule produced a recipient's address (fbl/recipients.py applies them in DESIGN.md order).
FoundBy = Literal[
    "token",  # our token in the enclosed message's List-Unsubscribe header
    "trace_header",  # our trace header in the enclosed message
    "verp",  # the VERP-encoded return path of the enclosed message or Original-Mail-From
    "original_rcpt_to",  # ARF Original-Rcpt-To (RFC 5965 section 3.3)
    "provider_field",  # a provider's own field, e.g. Outlook.com's X-HmXmrOriginalRecipient
    "enclosed_to",  # the To: header of the enclosed original message
    "dsn_final_recipient",  # RFC 3464 section 2.3.2
    "dsn_original_recipient",  # RFC 3464 section 2.3.1, when no Final-Recipient is given
    "flufl_bounce",  # flufl.bounce's detectors on a non-standard bounce
    "bounce_text",  # a recipient line in the human-readable text of a non-standard bounce
    "failed_recipients_header",  # Exim's X-Failed-Recipients field of a non-standard bounce
    "auto_reply_from",  # the From: of an RFC 3834 auto-reply: the person who is away
]
FOUND_BY: Final[tuple[str, ...]] = FoundBy.__args__  # type: ignore[attr-defined]


class ParseError(Exception):
    """The only exception the parsers raise, and only for input that is not mail at all (for
    example not bytes). Anything merely broken is returned as kind "unknown" with problems."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient a report is about.

    `address` is the address to act on, or None when it was redacted or not found. For a DSN it
    is the Final-Recipient; `original_address` keeps the Original-Recipient (RFC 3464 2.3.1) or,
    when a later rule replaced or redacted the address, the text as the report gave it.
    """

    address: str | None
    original_address: str | None = None
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"
    action: str | None = None  # RFC 3464 2.3.3: failed, delayed, delivered, relayed, expanded
    diagnostic: str | None = None
    remote_mta: str | None = None
    hard: bool = False
    category: Category = "unknown"
    found_by: FoundBy = "enclosed_to"
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """RFC 6591 section 3 fields of an auth-failure report (and RFC 7489 Identity-Alignment)."""

    auth_failure: str | None = None  # dkim, spf, adsp, dmarc, bodyhash, revoked, signature
    delivery_result: str | None = None
    dkim_domain: str | None = None
    dkim_identity: str | None = None
    dkim_selector: str | None = None
    dkim_canonicalized_header: str | None = None
    dkim_canonicalized_body: str | None = None
    spf_dns: tuple[str, ...] = ()
    identity_alignment: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedReport:
    kind: Kind
    feedback_type: str | None = None  # lower case; non-standard types kept (e.g. "opt-out")
    user_agent: str | None = None
    version: str | None = None
    original_mail_from: str | None = None
    original_rcpt_to: tuple[str, ...] = ()
    arrival_date: datetime | None = None
    reporting_mta: str | None = None
    source_ip: str | None = None
    reported_domains: tuple[str, ...] = ()
    reported_uris: tuple[str, ...] = ()
    authentication_results: tuple[str, ...] = ()
    incidents: int | None = None
    original_message_id: str | None = None
    original_headers: str | None = None  # header block of the enclosed original message
    recipients: tuple[Recipient, ...] = ()
    problems: tuple[str, ...] = ()
    raw_size: int = 0
    original_envelope_id: str | None = None
    auth_failure: AuthFailure | None = None
    subject: str | None = None
    # The input as received, so evidence can be stored beside the result.
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def reported_domain(self) -> str | None:
        return self.reported_domains[0] if self.reported_domains else None


def to_json(report: ParsedReport, file: str | None = None) -> dict[str, Any]:
    """The public `parse_report --json` shape (DESIGN.md, public contracts)."""
    return {
        "file": file,
        "kind": report.kind,
        "feedback_type": report.feedback_type,
        "reported_domain": report.reported_domain,
        "source_ip": report.source_ip,
        "original_message_id": report.original_message_id,
        "arrival_date": report.arrival_date.isoformat() if report.arrival_date else None,
        "recipients": [
            {
                # A recipient the report names is never printed as null: one that could not be
                # used as an address (no domain, redacted) is printed as the report wrote it.
                "address": r.address or r.original_address,
                "status": r.status,
                "action": r.action,
                "hard": r.hard,
                "diagnostic": r.diagnostic,
                "found_by": r.found_by,
            }
            for r in report.recipients
        ],
        "problems": list(report.problems),
    }


def without_nul(value: Any) -> Any:
    """`value` with every NUL character in its strings replaced by U+FFFD, through lists, tuples,
    mappings (keys too) and report dataclasses. Mail and JSON may carry NUL (a quoted-printable
    `=00`); PostgreSQL text and jsonb refuse it, and a report that cannot be stored would fail on
    every redelivery. Returns `value` itself when it holds no NUL."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list | tuple):
        cleaned = [without_nul(v) for v in value]
        if all(a is b for a, b in zip(cleaned, value, strict=True)):
            return value
        return cleaned if isinstance(value, list) else tuple(cleaned)
    if isinstance(value, Mapping):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in fields(value):
            if f.name == "raw":  # the input as received is kept as it came
                continue
            old = getattr(value, f.name)
            new = without_nul(old)
            if new is not old:
                changes[f.name] = new
        return replace(value, **changes) if changes else value
    return value
