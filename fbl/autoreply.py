"""RFC 3834 auto-replies: vacation notices and other automatic responses.

An auto-reply is never a bounce and never an opt-out (DESIGN.md: "auto-replies ... are
ignored"). `is_auto_reply` is shared with the unsubscribe-by-mail path.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

from fbl.addresses import addresses_in
from fbl.headers import decoded_header, header
from fbl.report import ParsedReport, Recipient

__all__ = ["AUTO_REPLY_HEADERS", "VACATION_SUBJECTS", "is_auto_reply", "parse_auto_reply"]

# Headers that mark an automatic response, with the values that count (None: any value).
# RFC 3834 section 5: Auto-Submitted "no" means a person sent it; any other value is automatic.
# The rest are the de facto markers of Exchange, Apple, and common vacation programs.
AUTO_REPLY_HEADERS: Final[dict[str, re.Pattern[str] | None]] = {
    "X-Autoreply": None,
    "X-Autorespond": None,
    "X-Autoresponder": None,
    "X-Auto-Response": None,
    "X-Vacation": None,
    "Precedence": re.compile(r"(?i)^\s*auto[_-]?reply\b"),
    "X-Apple-Action": re.compile(r"(?i)vacation"),
    "X-Mailer": re.compile(r"(?i)\bvacation\b"),
}

# Subject prefixes and phrases of vacation notices, in the languages seen most.
VACATION_SUBJECTS: Final = re.compile(
    r"(?i)(?:^|\W)(?:"
    r"out of (?:the )?office|auto(?:matic)?[ -]?(?:reply|response|antwort)|"
    r"autoresponse|autorespons\b|autoreply|vacation|away from (?:the )?office|on leave|"
    r"abwesenheitsnotiz|abwesenheit|automatische antwort|"
    r"r[ée]ponse automatique|absence|respuesta autom[áa]tica|fuera de la oficina|"
    r"risposta automatica|fuori sede|automatisch antwoord|afwezig|"
    r"resposta autom[áa]tica|ausente|自動応答|不在"
    r")(?:\W|$)"
)

_AUTO_SUBMITTED_NO: Final = re.compile(r"(?i)^\s*no\s*(?:;|\(|$)")


def is_auto_reply(message: Message) -> bool:
    """Whether `message` is an automatic response (RFC 3834), by its headers or a vacation
    subject. Never raises."""
    try:
        return _is_auto_reply(message)
    except Exception:  # the callers treat any failure as "not an auto-reply"
        return False


def _is_auto_reply(message: Message) -> bool:
    auto_submitted = header(message, "Auto-Submitted")
    # RFC 3834 section 5: "auto-replied" marks replies, "auto-generated" other automatic mail
    # such as DSNs (which fbl/parse.py hands to the DSN parser before asking this).
    if auto_submitted and not _AUTO_SUBMITTED_NO.match(auto_submitted):
        return True
    for name, pattern in AUTO_REPLY_HEADERS.items():
        value = header(message, name)
        if value is None:
            continue
        if pattern is None or pattern.search(value):
            return True
    subject = decoded_header(message, "Subject")
    return bool(subject and VACATION_SUBJECTS.search(subject))


def parse_auto_reply(message: Message, *, raw_size: int, problems: list[str]) -> ParsedReport:
    """An auto-reply as a report: its sender is the recipient who is away (RFC 3834: the
    response comes from the mailbox that received the original)."""
    sender = addresses_in(header(message, "From"))
    recipients = tuple(
        Recipient(address=address, found_by="auto_reply_from") for address in sender[:1]
    )
    if not recipients:
        problems.append("auto-reply without a sender address")
    subject = decoded_header(message, "Subject", problems=problems)
    return ParsedReport(
        kind="autoreply",
        original_message_id=header(message, "In-Reply-To"),
        recipients=recipients,
        problems=tuple(problems),
        raw_size=raw_size,
        subject=subject,
    )
