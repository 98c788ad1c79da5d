"""One entry point for inbound report mail: detect the kind, dispatch, never crash.

Detection order, most structural evidence first:
1. a feedback report (RFC 5965, or a provider format such as Outlook.com JMRP): fbl/arf.py;
2. a DSN by structure (RFC 3464 / RFC 6522 multipart/report; report-type=delivery-status);
3. a bounce sent by a mailer daemon or postmaster: fbl/dsn.py reads it, fbl/bounce_text.py
   its text. Checked before auto-replies because bounces carry "Auto-Submitted" too (RFC 3834
   section 5);
4. an RFC 3834 auto-reply: fbl/autoreply.py;
5. a bounce by its subject ("Undelivered Mail Returned to Sender"); after auto-replies, whose
   subjects quote the original's;
6. anything else whose text still names a recipient with a reason for the failure: a bounce;
7. otherwise kind "unknown".

The stdlib parser runs with the compat32 policy. Measured on the shared fixture corpus it parses
about seven times faster than `email.policy.default`, whose header objects are also built (and
can raise) when a malformed header is read; one hostile Content-Type took the default policy
13 s. We decode only the few headers we use, and fbl/headers.py reads every one defensively.

Hostile mail is bounded (README, "Limits"): MIME structure is read to MAX_MIME_DEPTH levels and
MAX_MIME_PARTS parts, header fields to MAX_HEADER_CHARS characters, RFC 2047 decoding as
fbl/headers.py says and the recipients as fbl/addresses.py says. Each cut is named in
`problems`; the raw message is kept as received.
"""

from __future__ import annotations

from dataclasses import replace
from email.message import Message
from typing import Final

from fbl import arf, autoreply, dsn
from fbl.addresses import MAX_RECIPIENTS
from fbl.headers import MAX_MIME_DEPTH, decoded_header, read_message
from fbl.recipients import RecoveryHooks
from fbl.report import ParsedReport, ParseError, without_nul
from fbl.ses import parse_ses, ses_notification

__all__ = [
    "DEFAULT_HOOKS",
    "MAX_HEADER_CHARS",
    "MAX_MIME_DEPTH",
    "MAX_MIME_PARTS",
    "MAX_RECIPIENTS",
    "ParseError",
    "parse",
]

# MIME parts read from one message; a report has three, a bounce with attachments a few more.
MAX_MIME_PARTS: Final = 1000
# Characters kept of one header field. RFC 5322 2.1.1 limits a line to 998 characters; folded
# References or To fields of real mail stay well below this.
MAX_HEADER_CHARS: Final = 64 * 1024

DEFAULT_HOOKS = RecoveryHooks()

_READ_FROM_REPORT = frozenset(
    {
        "bounce_text",
        "failed_recipients_header",
        "flufl_bounce",
        "dsn_final_recipient",
        "dsn_original_recipient",
    }
)


def parse(
    raw: bytes, *, hooks: RecoveryHooks | None = None, max_bytes: int | None = None
) -> ParsedReport:
    """Parse one raw RFC 5322 message into a ParsedReport.

    Raises ParseError only when `raw` is not bytes; every malformed message comes back as a
    report (kind "unknown" at worst) with `problems` saying what was wrong. No text field holds a
    NUL character. Messages longer than
    `max_bytes` are parsed on their first `max_bytes` bytes and flagged.
    """
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise ParseError(f"expected the raw message as bytes, got {type(raw).__name__}")
    hooks = hooks or DEFAULT_HOOKS
    raw_size = len(raw)
    problems: list[str] = []
    data = raw
    if max_bytes is not None and max_bytes >= 0 and raw_size > max_bytes:
        data = raw[:max_bytes]
        problems.append(f"message of {raw_size} bytes truncated to its first {max_bytes} bytes")
    if not data.strip():
        problems.append("empty message")
        return ParsedReport(kind="unknown", problems=tuple(problems), raw_size=raw_size, raw=raw)
    try:
        report = _parse(data, raw_size=raw_size, hooks=hooks, problems=problems)
        if len(report.recipients) > MAX_RECIPIENTS:
            report = replace(
                report,
                recipients=report.recipients[:MAX_RECIPIENTS],
                problems=(
                    *report.problems,
                    f"more than {MAX_RECIPIENTS} recipients: only the first {MAX_RECIPIENTS} read",
                ),
            )
    except RecursionError:
        problems.append("message nested too deeply to parse")
        report = ParsedReport(kind="unknown", problems=tuple(problems), raw_size=raw_size)
    except Exception as exc:  # the promise: nothing but ParseError leaves parse()
        import logging  # only here: a process that only parses need not load it

        logging.getLogger(__name__).warning("report parsing failed", exc_info=True)
        problems.append(f"unreadable message ({type(exc).__name__}: {str(exc)[:200]})")
        report = ParsedReport(kind="unknown", problems=tuple(problems), raw_size=raw_size)
    return _with_raw(report, raw)


# The stdlib re-parses Content-Type parameters on every get_param() call, in time that grows
# with the square of the header's length; real ones are a line or two.
_MAX_MIME_HEADER = 1024
_MIME_HEADERS: Final = frozenset({"content-type", "content-disposition"})
_STATUS_TYPES: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})


def _bound_structure(msg: Message, problems: list[str]) -> None:
    """Cut what later steps would spend too long on: parts past MAX_MIME_PARTS, over-long
    header fields. Only the parsed copy changes; the raw message is kept as received."""
    seen = 0
    stack = [msg]
    while stack:
        part = stack.pop()
        seen += 1
        _bound_headers(part, problems)
        if not part.is_multipart():
            continue
        payload = part.get_payload()  # the part's own list: cutting it cuts the message
        if part.get_content_type() in _STATUS_TYPES:
            # Its blocks of fields (RFC 3464 2.1), one per recipient: MAX_RECIPIENTS bounds them.
            for block in payload:
                _bound_headers(block, problems)
            continue
        room = MAX_MIME_PARTS - seen - len(stack)
        if len(payload) > room:
            problems.append(
                f"more than {MAX_MIME_PARTS} MIME parts: only the first {MAX_MIME_PARTS} read"
            )
            del payload[max(room, 0) :]
        stack.extend(reversed([p for p in payload if isinstance(p, Message)]))


def _bound_headers(part: Message, problems: list[str]) -> None:
    long_names = {
        name.lower()
        for name, value in part.raw_items()
        if isinstance(value, str)
        and len(value) > (_MAX_MIME_HEADER if name.lower() in _MIME_HEADERS else MAX_HEADER_CHARS)
    }
    for lower in long_names:
        limit = _MAX_MIME_HEADER if lower in _MIME_HEADERS else MAX_HEADER_CHARS
        values = part.get_all(lower) or []
        name = next(n for n, _ in part.raw_items() if n.lower() == lower)
        del part[lower]
        for value in values:
            part[name] = str(value)[:limit]
        problems.append(f"over-long {name} header cut to {limit} characters")


def _with_raw(report: ParsedReport, raw: bytes) -> ParsedReport:
    # Text fields never carry NUL (see report.without_nul); the raw input stays as received.
    # A limit met in a thousand parts is said once.
    report = replace(report, problems=tuple(dict.fromkeys(report.problems)))
    return replace(without_nul(report), raw=raw)


def _parse(
    data: bytes, *, raw_size: int, hooks: RecoveryHooks, problems: list[str]
) -> ParsedReport:
    msg = read_message(data, problems)
    if not msg.keys():
        problems.append("no header fields: not an RFC 5322 message")
    _bound_structure(msg, problems)
    ses = ses_notification(msg)
    if ses is not None:
        subject = decoded_header(msg, "Subject", problems=problems)
        return parse_ses(ses, raw_size=raw_size, problems=problems, subject=subject)
    if arf.is_arf(msg):
        return arf.parse_arf(msg, raw_size=raw_size, hooks=hooks, problems=problems)
    if dsn.is_dsn(msg) or dsn.from_mailer_daemon(msg):
        return dsn.parse_dsn(msg, raw_size=raw_size, hooks=hooks, problems=problems)
    # A person's auto-reply may quote a subject that sounds like a bounce; a mailer daemon's
    # bounce may say Auto-Submitted (RFC 3834 5). Hence: daemon, auto-reply, then subject.
    if autoreply.is_auto_reply(msg):
        return autoreply.parse_auto_reply(msg, raw_size=raw_size, problems=problems)
    if dsn.titled_like_bounce(msg):
        return dsn.parse_dsn(msg, raw_size=raw_size, hooks=hooks, problems=problems)
    report = dsn.parse_dsn(msg, raw_size=raw_size, hooks=hooks, problems=[])
    # Without a bounce's envelope, only a recipient line with a reason makes it one.
    if any(r.found_by in _READ_FROM_REPORT and r.category != "unknown" for r in report.recipients):
        return replace(
            report,
            problems=(*problems, *report.problems, "no bounce sender or subject: read as one"),
        )
    problems.append("not a feedback report, bounce or auto-reply")
    subject = decoded_header(msg, "Subject", problems=problems)
    return ParsedReport(
        kind="unknown", problems=tuple(problems), raw_size=raw_size, subject=subject
    )
