"""Bounces: RFC 3464 delivery status notifications, and the entry for the non-standard ones
MTAs still send.

A standard DSN (RFC 3464 section 2) has a message/delivery-status part with one block of
per-message fields (Reporting-MTA, Arrival-Date) and one block per recipient (Final-Recipient,
Original-Recipient, Action, Status, Diagnostic-Code, Remote-MTA); this module reads them, and DSN
fields pasted into a text part. Bounces that name no recipient that way are read from their
human-readable text (fbl/bounce_text.py), and at last by the recovery rules of
fbl/recipients.py (VERP, the enclosed To:). A recipient named without a domain is never
given the reporting MTA's: fbl/addresses.complete_address takes the domain from the returned
original, or the address stays as the report wrote it. The status is taken from the
Status field, else inferred from the diagnostic text; the category comes from
fbl/classification.py.
"""

from __future__ import annotations

import base64
import functools
import quopri
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.message import Message
from typing import Final

from fbl import bounce_text, classification
from fbl.addresses import (
    MAX_RECIPIENTS,
    clean,
    complete_address,
    first_address,
    is_redacted,
)
from fbl.headers import (
    content_type,
    decoded_header,
    enclosed_original,
    field_blocks,
    header,
    header_all,
    header_block,
    leaves,
    parse_date,
    part_text,
    report_type,
)
from fbl.recipients import RecoveryHooks, ours, recover
from fbl.report import FoundBy, ParsedReport, Recipient

__all__ = [
    "BOUNCE_SENDERS",
    "BOUNCE_SUBJECTS",
    "from_mailer_daemon",
    "is_dsn",
    "looks_like_bounce",
    "parse_dsn",
    "strip_type",
    "titled_like_bounce",
]

# Who sends bounces and what they call them: evidence that a message without a
# message/delivery-status part is a bounce all the same.
BOUNCE_SENDERS: Final = re.compile(
    r"(?i)(?:^|[<\s\"])(?:mailer-daemon|mailer_daemon|mail-daemon|postmaster|post_master|"
    r"mail delivery (?:system|subsystem|service)|mail administrator|mmsc ndr)"
)
BOUNCE_SUBJECTS: Final = re.compile(
    r"(?i)undeliver|undelivered|not delivered|delivery (?:status notification|failure|failed|"
    r"has failed|notification|problem|report)|returned mail|failure notice|mail delivery failed|"
    r"could not be delivered|non[- ]?delivery|nondeliverable|mail system error|returned to "
    r"sender|delivery failure|unzustellbar|non remis|onbestelbaar|error sending|"
    r"there was an error|failed delivery|warning: could not|delayed mail|message delayed|"
    r"delivery delayed|returned message|notice of delivery failure"
)
# A recipient field in a text part: DSN fields pasted where message/delivery-status should be.
_DSN_FIELD_LINE: Final = re.compile(r"(?im)^[ \t]*(?:final|original)-recipient[ \t]*:")


def _status_parts(msg: Message) -> list[Message]:
    return [
        part
        for part in leaves(msg)
        if content_type(part) in ("message/delivery-status", "message/global-delivery-status")
    ]


def is_dsn(msg: Message) -> bool:
    """An RFC 3464 DSN by structure: a delivery-status part, or the report type saying so."""
    return report_type(msg) == "delivery-status" or bool(_status_parts(msg))


def from_mailer_daemon(msg: Message) -> bool:
    """Sent by a mailer daemon or postmaster: a bounce, whatever else it says."""
    sender = " ".join(filter(None, [header(msg, "From"), header(msg, "Sender")]))
    return bool(sender and BOUNCE_SENDERS.search(sender))


def titled_like_bounce(msg: Message) -> bool:
    subject = decoded_header(msg, "Subject") or ""
    return bool(subject and BOUNCE_SUBJECTS.search(subject))


def looks_like_bounce(msg: Message) -> bool:
    """A bounce by its envelope: sent by a mailer daemon or postmaster, or titled like one."""
    return from_mailer_daemon(msg) or titled_like_bounce(msg)


@dataclass(slots=True)
class _Fields:
    """One per-recipient block, field names lower-cased, repeated fields kept in order."""

    values: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None


def _blocks_from_status_part(part: Message) -> list[list[tuple[str, str]]]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    cte = (header(part, "Content-Transfer-Encoding") or "").lower()
    if isinstance(payload, list) and cte not in ("base64", "quoted-printable"):
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                try:
                    items = [(k, _unfold(str(v))) for k, v in block.items()]
                except Exception:
                    continue
                if items:
                    blocks.append(items)
                # RFC 3464 blocks are separated by blank lines; some reports leave a field
                # after a stray blank line, which the stdlib files as the block's body.
                try:
                    body = block.get_payload()
                except Exception:
                    body = None
                if isinstance(body, str) and body.strip():
                    blocks.extend(field_blocks(body))
        return blocks
    if isinstance(payload, list):
        # A base64 or quoted-printable delivery-status part (RFC 3464 wants it readable as
        # 7bit text) was split into garbage blocks by the stdlib: rejoin and decode it.
        text = part_text(part)
        try:
            raw = text.encode("ascii", "ignore")
            data = base64.b64decode(raw) if cte == "base64" else quopri.decodestring(raw)
            return field_blocks(data.decode("utf-8", "replace"))
        except Exception:
            return field_blocks(text)
    return field_blocks(part_text(part))


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


_MESSAGE_FIELDS: Final = frozenset(
    {
        "reporting-mta",
        "arrival-date",
        "original-envelope-id",
        "x-postfix-sender",
        "received-from-mta",
        "dsn-gateway",
        "x-postfix-queue-id",
    }
)


def _split_recipients(blocks: list[list[tuple[str, str]]]) -> tuple[_Fields, list[_Fields]]:
    """Per-message fields (RFC 3464 2.2) and per-recipient groups (2.3). A block holding a
    Final-Recipient or Original-Recipient is a recipient block whatever its field order;
    reports that run several recipients together without blank lines are split where a
    recipient field repeats."""
    message: dict[str, list[str]] = {}
    groups: list[_Fields] = []
    for block in blocks:
        names = [name.lower() for name, _ in block]
        if "final-recipient" not in names and "original-recipient" not in names:
            for name, value in block:
                message.setdefault(name.lower(), []).append(value)
            continue
        current: dict[str, list[str]] = {}
        groups.append(_Fields(current))
        for name, value in block:
            key = name.lower()
            if key in _MESSAGE_FIELDS:
                message.setdefault(key, []).append(value)
                continue
            if key in ("final-recipient", "original-recipient") and (
                key in current
                or (
                    key == "original-recipient"
                    and "final-recipient" in current
                    and ("status" in current or "diagnostic-code" in current)
                    # the block's own Original-Recipient, written last, is no new recipient
                    and clean(value) != clean(current["final-recipient"][0])
                )
            ):
                current = {}
                groups.append(_Fields(current))
            current.setdefault(key, []).append(value)
    return _Fields(message), [g for g in groups if _has_recipient(g)]


def _has_recipient(group: _Fields) -> bool:
    return any(
        clean(v) for k in ("final-recipient", "original-recipient") for v in group.values.get(k, [])
    )


def strip_type(value: str | None) -> str | None:
    """ "smtp; 550 ..." to "550 ..." (RFC 3464 2.3.6 diagnostic-type ";" text)."""
    if not value:
        return None
    head, sep, rest = value.partition(";")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,20}", head.strip()):
        return rest.strip() or None
    return value.strip() or None


def _recipient(
    group: _Fields,
    *,
    context: str | None,
    default_diagnostic: Callable[[], str | None],
    transcript: str | None,
) -> Recipient:
    final = clean(group.get("final-recipient"))
    original = clean(group.get("original-recipient"))
    found_by: FoundBy = "dsn_final_recipient" if final else "dsn_original_recipient"
    address = final or original
    if (
        final
        and original
        and first_address(final) is None
        and not is_redacted(final)
        and first_address(original)
    ):
        # "Final-Recipient: rfc822; john" beside "Original-Recipient: rfc822; john@example.com":
        # the address the sender used is the one with a domain (RFC 3464 2.3.1).
        address, original, found_by = original, final, "dsn_original_recipient"
    diagnostic = strip_type(group.get("diagnostic-code"))
    if diagnostic is None:
        # "Status: 4.0.0 (cat.example.net: host name lookup failure)": the comment explains.
        comment = re.search(r"\((.+)\)", group.get("status") or "")
        diagnostic = comment.group(1).strip() if comment else None
    if diagnostic is None and context:
        diagnostic = context
    if diagnostic is None:
        diagnostic = default_diagnostic()
    if diagnostic:
        diagnostic = classification.readable(diagnostic)
    status = classification.choose_status(group.get("status"), diagnostic)
    if status and status[1:] == ".0.0" and transcript and not classification.status_in(diagnostic):
        # "Status: 5.0.0" and "Diagnostic-Code: X-Unix; 255": the session transcript of a
        # single-recipient bounce ("554 5.3.0 unknown mailer error 255") says more.
        said = classification.status_in(default_diagnostic())
        if said and said[0] == status[0]:
            status = said
    action = (group.get("action") or "").split()[0].lower() if group.get("action") else None
    if action is None and status:
        action = {"2": "delivered", "4": "delayed"}.get(status[0], "failed")
    status = classification.failure_status(status, diagnostic, action=action)
    phase = bounce_text.phase_in(diagnostic, context, transcript)
    remote_mta = strip_type(group.get("remote-mta"))
    host = (remote_mta or "").split()[0] if remote_mta else None
    category = classification.classify(
        status,
        diagnostic,
        phase=phase,
        remote_host=host or bounce_text.remote_host_in(diagnostic, transcript),
    )
    status = classification.block_status(status, diagnostic, category=category)
    redacted = is_redacted(address)
    unusable = redacted or first_address(address) is None  # "rfc822; kijitora" and worse
    return classification.bounced_recipient(
        None if unusable else address,
        status=status,
        action=action,
        diagnostic=diagnostic,
        found_by=found_by,
        remote_mta=remote_mta,
        category=category,
        original_address=address if unusable else original,
        redacted=redacted,
    )


def parse_dsn(
    msg: Message,
    *,
    raw_size: int,
    hooks: RecoveryHooks,
    problems: list[str],
    depth: int = 0,
) -> ParsedReport:
    enclosed, original_headers = enclosed_original(msg)
    notice, returned = bounce_text.read_notice(msg)
    if enclosed is None and returned:
        enclosed = bounce_text.returned_headers(returned)
        if enclosed is not None:
            original_headers = header_block(enclosed)

    blocks: list[list[tuple[str, str]]] = []
    status_parts = _status_parts(msg)
    for part in status_parts:
        blocks.extend(_blocks_from_status_part(part))
    if not status_parts:
        for part in leaves(msg):
            if part.get_content_maintype() not in ("text", "multipart"):
                continue
            text = part_text(part, limit=200_000)
            if _DSN_FIELD_LINE.search(text):
                problems.append(
                    "delivery-status fields found in a text part, not message/delivery-status "
                    "(RFC 3464 section 2)"
                )
                blocks.extend(field_blocks(_cut_fields(text)))
                break

    per_message, groups = _split_recipients(blocks)
    if len(groups) > MAX_RECIPIENTS:
        problems.append(
            f"more than {MAX_RECIPIENTS} recipients: only the first {MAX_RECIPIENTS} read"
        )
        groups = groups[:MAX_RECIPIENTS]
    if status_parts and not groups:
        problems.append("the delivery-status part names no recipient (RFC 3464 2.3.2)")

    recipients: list[Recipient] = []
    if groups:
        scanned = {c.address.lower(): c for c in bounce_text.scan(notice, set())}
        # The notice's own explanation, read only for a recipient whose fields give none.
        fallback = functools.cache(lambda: bounce_text.global_diagnostic(notice))
        for group in groups:
            address = clean(group.get("final-recipient")) or clean(group.get("original-recipient"))
            context = scanned.get((address or "").lower())
            recipients.append(
                _recipient(
                    group,
                    context=context.diagnostic
                    if context and bounce_text.explains(context.diagnostic)
                    else None,
                    default_diagnostic=fallback,
                    transcript=notice if len(groups) == 1 else None,
                )
            )
        recipients = _completed(recipients, enclosed, problems)
        problems.extend(
            f"recipient field without an address: {r.original_address[:80]}"
            for r in recipients
            if r.address is None and not r.redacted and r.original_address
        )
    elif depth == 0 and enclosed is not None and (is_dsn(enclosed) or from_mailer_daemon(enclosed)):
        # A forwarded bounce: the DSN is the enclosed message.
        inner = parse_dsn(enclosed, raw_size=raw_size, hooks=hooks, problems=[], depth=1)
        if inner.recipients:
            problems.append("the bounce is enclosed in another message (forwarded)")
            return replace(inner, problems=tuple(problems))
    if not recipients:
        recipients = bounce_text.recipients_from_text(msg, notice, enclosed, problems, raw_size)

    if recipients and len(recipients) == 1:
        mine = ours(enclosed, hooks, return_paths=[])
        if mine is not None and mine[1] in ("token", "trace_header"):
            only = recipients[0]
            if (only.address or "").lower() != mine[0].lower():
                recipients = [
                    replace(
                        only,
                        address=mine[0],
                        original_address=only.address or only.original_address,
                        found_by=mine[1],
                    )
                ]
    if not recipients:
        recovered = recover(
            enclosed=enclosed,
            hooks=hooks,
            return_paths=[
                strip_type(per_message.get("x-postfix-sender")),
                *header_all(msg, "X-Original-To"),
                *header_all(msg, "Delivered-To"),
                header(msg, "To"),
            ],
        )
        if recovered:
            default_class = bounce_text.default_status_class(notice)
            fallback = bounce_text.global_diagnostic(notice)
            status = classification.infer_status(fallback, default_class=default_class)
            status = classification.failure_status(status, fallback, action="failed")
            category = classification.classify(
                status, fallback, phase=bounce_text.phase_in(fallback, notice)
            )
            status = classification.block_status(status, fallback, category=category)
            # With several addresses in the original's To: nothing says which one failed.
            hard = len(recovered) == 1 and classification.is_hard(category, status, "failed")
            recipients = [
                replace(
                    r,
                    status=status,
                    action="failed",
                    diagnostic=fallback,
                    category=category,
                    hard=hard,
                )
                for r in recovered
            ]
            problems.append(
                f"no recipient named in the bounce: taken from {recipients[0].found_by}"
            )
        else:
            problems.append("no recipient address found")

    arrival_text = per_message.get("arrival-date")
    arrival = parse_date(arrival_text)
    if arrival_text and arrival is None:
        problems.append(f"unreadable Arrival-Date: {arrival_text[:80]}")
    subject = decoded_header(msg, "Subject", problems=problems)
    return ParsedReport(
        kind="dsn",
        original_mail_from=strip_type(per_message.get("x-postfix-sender"))
        or (header(enclosed, "Return-Path") if enclosed is not None else None),
        arrival_date=arrival,
        reporting_mta=strip_type(per_message.get("reporting-mta")),
        original_message_id=header(enclosed, "Message-ID") if enclosed is not None else None,
        original_headers=original_headers,
        recipients=tuple(recipients),
        problems=tuple(problems),
        raw_size=raw_size,
        original_envelope_id=per_message.get("original-envelope-id"),
        subject=subject,
    )


def _completed(
    recipients: list[Recipient], enclosed: Message | None, problems: list[str]
) -> list[Recipient]:
    """Recipients named without a domain, completed from the returned original
    (fbl/addresses.complete_address); the others as they are."""
    if enclosed is None:
        return recipients
    out = []
    for r in recipients:
        if r.address is not None or r.redacted or not r.original_address:
            out.append(r)
            continue
        named = r.original_address
        full = complete_address(named, enclosed)
        if full is None:
            out.append(r)
            continue
        problems.append(f"recipient {named[:80]} completed from the returned original: {full}")
        out.append(replace(r, address=full, original_address=named))
    return out


def _cut_fields(text: str) -> str:
    """DSN fields pasted into a text part: from the first field line to the returned original."""
    start = re.search(
        r"(?im)^[ \t]*(?:reporting-mta|final-recipient|original-recipient)[ \t]*:", text
    )
    body = text[start.start() :] if start else text
    end = bounce_text.HEADER_START.search(body)
    body = body[: end.start()] if end else body
    # Fields quoted indented in the notice: as fields, not as continuation lines.
    return textwrap.dedent(body.replace("\r\n", "\n"))
