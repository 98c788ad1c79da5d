"""Amazon SES bounce, complaint and delivery notifications delivered by mail: the JSON body of
an Amazon SNS message read as a report.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any, Final

from fbl import classification
from fbl.addresses import clean, first_address, is_redacted
from fbl.arf import feedback_type_of
from fbl.dsn import strip_type
from fbl.headers import parse_date, part_text
from fbl.report import ParsedReport, Recipient

__all__ = ["parse_ses", "ses_notification"]

# Amazon SES can send its bounce, complaint and delivery notifications as JSON in the body of
# a mail from Amazon SNS ("AWS Notification Message"). The JSON field names are SES's own.
_SES_TYPES: Final[dict[str, str]] = {"Bounce": "dsn", "Delivery": "dsn", "Complaint": "arf"}


def ses_notification(msg: Message) -> dict[str, Any] | None:
    """The SES notification a message carries as its body, or None."""
    try:
        if msg.is_multipart():
            return None
    except Exception:
        return None
    text = part_text(msg, limit=1_000_000)
    start = text.find("{")
    if start < 0 or text[:start].strip():
        return None
    # SNS wraps long lines: the JSON runs to the first blank line.
    end = text.find("\n\n", start)
    body = text[start : end if end > 0 else None].replace("\r", "").replace("\n", "")
    try:
        data, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("notificationType") or data.get("eventType")
    return data if kind in _SES_TYPES else None


def parse_ses(
    data: dict[str, Any], *, raw_size: int, problems: list[str], subject: str | None
) -> ParsedReport:
    kind = data.get("notificationType") or data.get("eventType")
    mail = _dict(data.get("mail"))
    recipients: list[Recipient] = []
    feedback_type = None
    reporting_mta = None
    when = None
    if kind == "Bounce":
        bounce = _dict(data.get("bounce"))
        reporting_mta = strip_type(_str(bounce.get("reportingMTA")))
        when = _str(bounce.get("timestamp"))
        for item in _list(bounce.get("bouncedRecipients")):
            item = _dict(item)
            address = first_address(_str(item.get("emailAddress")))
            diagnostic = strip_type(_str(item.get("diagnosticCode")))
            status = classification.choose_status(_str(item.get("status")), diagnostic)
            if status is None and bounce.get("bounceType") == "Transient":
                status = "4.0.0"
            action = (_str(item.get("action")) or "failed").lower()
            recipients.append(
                classification.bounced_recipient(
                    address,
                    status=status,
                    action=action,
                    diagnostic=diagnostic,
                    found_by="provider_field",
                )
            )
    elif kind == "Delivery":
        delivery = _dict(data.get("delivery"))
        reporting_mta = _str(delivery.get("reportingMTA"))
        when = _str(delivery.get("timestamp"))
        response = _str(delivery.get("smtpResponse"))
        for address in _list(delivery.get("recipients")):
            recipients.append(
                Recipient(
                    address=first_address(_str(address)),
                    status=classification.status_in(response) or "2.0.0",
                    action="delivered",
                    diagnostic=response,
                    found_by="provider_field",
                )
            )
    else:
        complaint = _dict(data.get("complaint"))
        feedback_type = feedback_type_of(
            _str(complaint.get("complaintFeedbackType")) or "abuse", problems
        )
        when = _str(complaint.get("arrivalDate")) or _str(complaint.get("timestamp"))
        for item in _list(complaint.get("complainedRecipients")):
            address = clean(_str(_dict(item).get("emailAddress")))
            redacted = is_redacted(address)
            if not redacted:
                address = first_address(address)
            recipients.append(
                Recipient(
                    address=None if redacted else address,
                    original_address=address if redacted else None,
                    found_by="provider_field",
                    redacted=redacted,
                )
            )
    recipients = [r for r in recipients if r.address or r.redacted]
    if not recipients:
        problems.append("no recipient address found")
    problems.append(f"Amazon SES {kind} notification (JSON), not an RFC 3464/5965 report")
    source = _str(mail.get("source"))
    return ParsedReport(
        kind="arf" if kind == "Complaint" else "dsn",
        feedback_type=feedback_type,
        original_mail_from=source,
        original_rcpt_to=tuple(_str(d) or "" for d in _list(mail.get("destination"))),
        arrival_date=parse_date(when),
        reporting_mta=reporting_mta,
        source_ip=_str(mail.get("sourceIp")),
        original_message_id=_str(mail.get("messageId")),
        recipients=tuple(recipients),
        problems=tuple(problems),
        raw_size=raw_size,
        subject=subject,
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
