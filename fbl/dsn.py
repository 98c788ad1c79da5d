"""Bounces: RFC 3464 delivery status notifications, and the non-standard ones MTAs still send.

A standard DSN (RFC 3464 section 2) has a message/delivery-status part with one block of
per-message fields (Reporting-MTA, Arrival-Date) and one block per recipient (Final-Recipient,
Original-Recipient, Action, Status, Diagnostic-Code, Remote-MTA). Bounces that have no such part
are read from their human-readable text, in this order: DSN fields pasted into a text part;
recipient lines in the MTA's own wording and language ("<alice@example.com>: 550 5.1.1 User
unknown", "The following address(es) failed:", "Votre message n'a pas pu être remis à ...",
every address of a listing); Exim's X-Failed-Recipients field; flufl.bounce's provider
detectors; a local part named without a domain ("<john>:"), completed from the returned
original; the original's To: quoted in the notice and the subject; and at last the recovery
rules of fbl/recipients.py (VERP, the enclosed To:). A recipient named without a domain is never
given the reporting MTA's: fbl/recipients.complete_address takes the domain from the returned
original, or the address stays as the report wrote it. The status is taken from the
Status field, else inferred from the diagnostic text; the category comes from
fbl/classification.py.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import quopri
import re
import textwrap
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any, Final

from fbl import classification
from fbl.arf import feedback_type_of
from fbl.recipients import (
    ADDRESS,
    MAX_RECIPIENTS,
    RecoveryHooks,
    addresses_in,
    clean,
    complete_address,
    content_type,
    decoded_header,
    enclosed_original,
    field_blocks,
    first_address,
    header,
    header_all,
    header_block,
    is_redacted,
    leaves,
    ours,
    parse_date,
    part_text,
    recover,
    report_type,
)
from fbl.report import FoundBy, ParsedReport, Recipient

__all__ = [
    "BOUNCE_SENDERS",
    "BOUNCE_SUBJECTS",
    "from_mailer_daemon",
    "is_dsn",
    "looks_like_bounce",
    "parse_dsn",
    "parse_ses",
    "ses_notification",
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

# Where the human-readable notice ends and the returned original begins.
_ORIGINAL_MARKER: Final = re.compile(
    r"(?im)^[ \t>|]*(?:"
    r"(?:[-=*_]{2,}|#{2,})[ \t]*(?:[^\n]{0,40}?)(?:original|copy of|returned message|"
    r"unsent message|headers? (?:of|follow)|message follows|rejected message|included message)|"
    r"original message headers:?|message headers follow|below this line is a copy|"
    r"below is a copy of the original message|the header of the original message|"
    r"original message:|original message follows|your message reads|"
    r"the attachment contains the original|"
    # Exchange's "Original message headers:" in its other languages
    r"urspr(?:ü|ue)ngliche nachrichtenkopfzeilen|en-t(?:ê|e)tes (?:de|du) message d'origine|"
    r"encabezados del mensaje original|intestazioni del messaggio originale|"
    r"cabe(?:ç|c)alhos da mensagem original|元のメッセージ ヘッダー|原始邮件头"
    r")"
)
_HEADER_START: Final = re.compile(
    r"(?m)^(?:Received|Return-Path|DKIM-Signature|ARC-Seal|ARC-Authentication-Results|"
    r"Authentication-Results):[ \t]"
)

# Lines that name the sender or are contact hints, never the failed recipient.
_NOT_RECIPIENT_LINE: Final = re.compile(
    r"(?i)^[\s>]*(?:from|sender|reply-to|return-path|mail from|original sender|envelope-from|"
    r"message-id|in-reply-to|references|x-postfix-sender|x-original-sender|"
    # the sender in other languages: de, fr, es, it, pt, nl, ja
    r"absender|exp(?:é|e)diteur|remitente|mittente|remetente|afzender|差出人|送信者|送信元)\b|"
    r"contact|assistance|send mail to|please (?:send|write|e-?mail)|"
    r"mail ?from:|from:|http[s]?://\S*@|^\s*(?:to|cc|subject|sent|date)\s*:"
)
_RECIPIENT_CONTEXT: Final = re.compile(
    r"(?i)(?:>>>|rcpt to:?|recipient(?: address)?:|final-recipient:|original-recipient:|"
    r"delivered to:?|delivering (?:your )?(?:mail|message) to|to the following "
    r"(?:address|recipient)|(?:following|these) recipients?[^:\n]{0,40}:|failed recipient|"
    r"address(?:es)? "
    r"failed:?|could not be delivered to:?|unable to deliver (?:\w+ ){0,2}to|"
    # "Failed to deliver to", "couldn't be delivered to", "cannot deliver your message to"
    r"(?:failed|impossible|could not|couldn't|cannot|can't|unable) (?:to )?(?:be )?"
    r"deliver(?:ed)? (?:\w+ ){0,3}to|"
    r"permanent errors:?|did not reach|not delivered to:?|delivery to|"
    r"recipients? (?:were|was) affected|not a member of [^<\n]{0,40}|"
    # "Your message to <x> ...", "the mail you sent to x ...", "addressed to x"
    r"(?:message|mail|e-?mail|letter)(?: (?:that )?you sent)? to|(?:sent|addressed) to|"
    # "Address: x", "Empfänger: x", "Destinataire : x", "Destinatario: x"
    r"addresse?s?\s*:|empf(?:ä|ae)nger\s*:|destinataires?\s*:|destinatarios?\s*:|"
    # "n'a pas pu être remis à x", "à l'adresse x", "an die Adresse x", "a la dirección x"
    r"remis (?:à|a)|(?:à|a) l'adresse|an die adresse|a la direcci(?:ó|o)n|all'indirizzo|"
    # Exim names the address a pipe or file delivery came from: "generated by x"
    r"generated by|"
    # a word for recipient or address, then a colon: "Empfängeradresse: x",
    # "Destinataire(s) concerné(s) : x", "宛先：x"
    r"(?:recipient|address|empf(?:ä|ae)nger|adresse|destinataire|destinatario|indirizzo|"
    r"endere(?:ç|c)o|ontvanger|adres|direcci(?:ó|o)n|mottagare|odbiorca|получател|адрес|"
    r"收件人|受信者|宛先|アドレス)[^:：\n]{0,40}[:：]|"
    # "was undeliverable to x", "delivery failed for x", "Local mailbox x is unavailable"
    r"(?:undeliverable|undelivered|failed|refused|rejected) (?:to|for)|"
    r"(?:local|remote|destination|target) (?:mailbox|user|recipient|address)|"
    # an SMTP reply about the address: "550 5.1.1 <x>... User unknown", "<<< 550 x"
    r"(?:^|[\s>])[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3}\s+)?|"
    # a reason, then the address: "Unknown user: x", "550 Invalid recipient <x>"
    r"(?:unknown|invalid|illegal|bad|no such|nonexistent|non-existent|disabled|inactive|"
    r"unavailable|undeliverable|rejected|refused|failed)[ \w-]{0,30}?(?:user|recipient|"
    r"address|mailbox|account|alias)(?: name)?:?)"
    r"(?:\s*\S{0,3}|[\s:]*[<\"'(\[`]{0,2}\s*)$"
)
# The line before an address alone on its line that makes it a contact or an instruction
# ("send mail with the body 'guide' to the address", "the postmaster can be reached as").
_INSTRUCTION_BEFORE: Final = re.compile(
    r"(?i)(?:\b(?:send|write|mail|forward|reply|contact|reach(?:ed)?)\b.*\b(?:to|at|as)|"
    r"to the address|can be reached(?: as| at)?|^\s*--\s*|(?:best |kind )?regards,?|"
    r"thanks?(?: you)?,?|sincerely,?)\s*:?\s*$"
)
# The reporting site's own mailboxes (RFC 5321 4.5.1, RFC 2142), never a failed recipient beside
# one the notice names.
_ROLE: Final = re.compile(r"(?i)^(?:postmaster|mailer-daemon|hostmaster|abuse|no-?reply)@")
_DELAY_WORDS: Final = re.compile(
    r"(?i)will (?:continue|keep) (?:trying|to try)|has not yet been delivered|still trying|"
    r"delivery (?:is )?delayed|warning: message|will be retried|not been delivered yet"
)
_PERMANENT_WORDS: Final = re.compile(r"(?i)permanent(?:ly)? (?:fatal )?(?:error|fail)|fatal error")
_DSN_FIELDS_IN_TEXT: Final = re.compile(
    r"(?im)^[ \t]*(?:final-recipient|original-recipient|x-actual-recipient|action|status|"
    r"diagnostic-code|remote-mta|reporting-mta|received-from-mta|arrival-date|"
    r"last-attempt-date|will-retry-until|original-envelope-id|x-postfix-[a-z-]+)[ \t]*:.*"
    r"(?:\n[ \t]+\S.*)*$"
)
_DSN_FIELD_LINE: Final = re.compile(r"(?im)^[ \t]*(?:final|original)-recipient[ \t]*:")
_MESSAGE_ID_LIKE: Final = re.compile(r"^[0-9a-f.\-_$]{16,}@|^[0-9]{8,}\.[0-9a-z.]+@", re.I)
_TAGS: Final = re.compile(r"<[^>]{0,2000}>")


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


def _strip_type(value: str | None) -> str | None:
    """ "smtp; 550 ..." to "550 ..." (RFC 3464 2.3.6 diagnostic-type ";" text)."""
    if not value:
        return None
    head, sep, rest = value.partition(";")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,20}", head.strip()):
        return rest.strip() or None
    return value.strip() or None


def _recipient(
    group: _Fields, *, context: str | None, default_diagnostic: str | None, transcript: str | None
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
    diagnostic = _strip_type(group.get("diagnostic-code"))
    if diagnostic is None:
        # "Status: 4.0.0 (cat.example.net: host name lookup failure)": the comment explains.
        comment = re.search(r"\((.+)\)", group.get("status") or "")
        diagnostic = comment.group(1).strip() if comment else None
    if diagnostic is None and context:
        diagnostic = context
    if diagnostic is None:
        diagnostic = default_diagnostic
    if diagnostic:
        diagnostic = classification.readable(diagnostic)
    status = classification.choose_status(group.get("status"), diagnostic)
    if status and status[1:] == ".0.0" and transcript and not classification.status_in(diagnostic):
        # "Status: 5.0.0" and "Diagnostic-Code: X-Unix; 255": the session transcript of a
        # single-recipient bounce ("554 5.3.0 unknown mailer error 255") says more.
        said = classification.status_in(default_diagnostic)
        if said and said[0] == status[0]:
            status = said
    action = (group.get("action") or "").split()[0].lower() if group.get("action") else None
    if action is None and status:
        action = {"2": "delivered", "4": "delayed"}.get(status[0], "failed")
    status = classification.failure_status(status, diagnostic, action=action)
    phase = _phase(diagnostic, context, transcript)
    remote_mta = _strip_type(group.get("remote-mta"))
    host = (remote_mta or "").split()[0] if remote_mta else None
    category = classification.classify(
        status, diagnostic, phase=phase, remote_host=host or _remote_host(diagnostic, transcript)
    )
    status = classification.policy_status(status, diagnostic, category=category)
    redacted = is_redacted(address)
    unusable = redacted or first_address(address) is None  # "rfc822; kijitora" and worse
    return Recipient(
        address=None if unusable else address,
        original_address=address if unusable else original,
        status=status,
        action=action,
        diagnostic=diagnostic,
        remote_mta=remote_mta,
        hard=classification.is_hard(category, status, action),
        category=category,
        found_by=found_by,
        redacted=redacted,
    )


# --- the human-readable notice ------------------------------------------------------------


def _notice(msg: Message) -> tuple[str, str]:
    """The bounce's own text (before any returned original) and the returned text after it."""
    texts: list[str] = []
    markups: list[str] = []
    for part in leaves(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "text/rfc822-headers", "message/global"):
            break
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            continue
        # A multipart leaf is one whose boundary the stdlib could not find: read it as text.
        if ctype == "text/html":
            markups.append(_html_text(part_text(part, limit=200_000)))
        elif (
            ctype in ("text/plain", "text/x-aol")
            or ctype.startswith("multipart/")
            or (part is msg and not texts)
        ):
            texts.append(part_text(part, limit=200_000))
    text = "\n".join(texts) if any(t.strip() for t in texts) else "\n".join(markups)
    cut = _cut_point(text)
    # DSN fields pasted into the text are read as fields, not as prose.
    return _DSN_FIELDS_IN_TEXT.sub("", text[:cut]), text[cut:]


_LINE_TAGS: Final = re.compile(r"(?i)<br\s*/?>|</(?:p|div|tr|li|h[1-6]|table|pre)\s*>")


def _html_text(markup: str) -> str:
    """The text of an HTML notice, line breaks where the markup breaks lines, entities
    decoded. "<user@example.com>" written raw in the markup is text, not a tag."""
    markup = _LINE_TAGS.sub("\n", markup)
    markup = _TAGS.sub(lambda m: m.group(0) if ADDRESS.fullmatch(m.group(0)[1:-1]) else " ", markup)
    return html.unescape(markup)


def _cut_point(text: str) -> int:
    ends = [len(text)]
    marker = _ORIGINAL_MARKER.search(text)
    if marker:
        ends.append(marker.start())
    start = _HEADER_START.search(text)
    if start and start.start() > 0:
        ends.append(start.start())
    return min(ends)


def _returned_headers(rest: str) -> Message | None:
    """The header block of an original returned inline in the text, if there is one."""
    match = re.search(r"(?m)^[A-Za-z][A-Za-z0-9-]*:[ \t]", rest)
    if not match:
        return None
    block = rest[match.start() :]
    end = re.search(r"\n[ \t]*\n", block)
    if end:
        block = block[: end.start()]
    try:
        return HeaderParser(policy=compat32).parsestr(block, headersonly=True)
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class _Candidate:
    address: str
    diagnostic: str
    strong: bool
    named: str | None = None  # the text the bounce named it by, when completed


_TRAILER_AFTER_ADDRESS: Final = re.compile(
    # Exchange 2003: "x@y on 10/10/2023" ("am", "le", "el", "il", "em", "op" in its languages)
    r"""^[>\]"'\s]*(?:$|[:,.(\[<]|\.\.\.|\s-\s|\s+(?:on|am|le|el|il|em|op)\s|\s+\[)|"""
    # "x@y Invalid Address, ERROR_CODE :550", "x@y 550 5.1.1 User unknown"
    r"""^[>\]"']?\s+(?:[245]\d\d\b|[245]\.\d{1,3}\.\d|(?i:(?:user |recipient |address |"""
    r"""mailbox |account )?(?:unknown|invalid|not found|does not exist|doesn't exist|"""
    r"""no such|is not|disabled|inactive|full|over quota|rejected|refused|failed)))|"""
    # Japanese particles after the address: "x 宛のメール", "x へ送信", "x は存在しません"
    r"""^[>\]"']?\s*(?:宛|へ|は|に)"""
)
_FOLDED_HEADER: Final = re.compile(
    r"(?i)^[ \t]*(?:(?:re(?:sent|ply)-)?to|cc|bcc|from|sender)[ \t]*:.*,[ \t]*$"
)
_IN_URL: Final = re.compile(r"https?://\S*$", re.I)
_DISPLAY_NAME: Final = re.compile(r"""\s*["']?[^\W\d_][^<>()@:;,"'\n]{0,60}["']?\s*[<(]\s*""")
# Between two addresses of one list: commas, semicolons, brackets, quotes, "and".
_SEPARATOR_ONLY: Final = re.compile(r"""[\s>,;"')\]]*(?:\s(?:and|et|und|y)\s)?[\s<"'(\[]*$""")
# A list marker before an address on its own line ("1. x@y", "* x@y", "- x@y").
_LIST_MARKER: Final = re.compile(r"^\s*(?:[-*\u2022\u00b7]|\d{1,3}[.)])\s+")


def _level(before: str, after: str) -> int:
    """How surely a line names a failed recipient: 2 when a recipient phrase leads to the
    address ("RCPT TO:<...>", "could not be delivered to ..."), 1 when the address stands alone
    on its line (optionally followed by the reason), 0 otherwise."""
    if _RECIPIENT_CONTEXT.search(before):
        return 2
    bare = _LIST_MARKER.sub("", re.sub(r"(?i)mailto:", "", before))
    if _DISPLAY_NAME.fullmatch(bare) and after[:1] in (">", ")"):
        # "John Doe <john@x>", "John Doe (john@x)": a name and its address alone on a line.
        after = after[1:]
    elif re.search(r"[A-Za-z0-9]", bare):
        return 0
    return 1 if _TRAILER_AFTER_ADDRESS.match(after) else 0


# A bounce notice is a few kilobytes; these bounds keep hostile input from costing more.
_SCAN_LIMIT: Final = 100_000
_LINE_LIMIT: Final = 2_000
_MAX_HITS: Final = 200
_MAX_NOTICE_LINES: Final = 300


def _scan(notice: str, exclude: set[str]) -> list[_Candidate]:
    """Recipient lines of a non-standard bounce and the text that explains each."""
    lines = notice[:_SCAN_LIMIT].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    hits: list[tuple[int, int, str, int]] = []
    for index, line in enumerate(lines):
        if "@" not in line:
            continue
        if line[:1] in " \t" and index and _FOLDED_HEADER.match(lines[index - 1][:_LINE_LIMIT]):
            continue  # a folded To:/Cc: of a quoted original ("To: a@x,\n  b@y")
        # Where the line turns to the sender or to a contact hint, the addresses after that
        # point are not recipients; those before it are ("<x>: 554 ... contact your admin").
        aside = _NOT_RECIPIENT_LINE.search(line[:_LINE_LIMIT])
        stop = min(aside.start() if aside else _LINE_LIMIT, _LINE_LIMIT)
        if stop == 0:
            continue
        previous_end, previous_level = -1, 0
        for match in ADDRESS.finditer(line, 0, stop):
            address = match.group(0)
            if _IN_URL.search(line, max(0, match.start() - 200), match.start()):
                continue
            # Only the neighbourhood of the address decides; a bounded window keeps a line
            # full of addresses linear.
            before = line[max(0, match.start() - 120) : match.start()]
            level = _level(before, line[match.end() : match.end() + 40])
            if (
                previous_end >= 0
                and match.start() - previous_end <= 40
                and _SEPARATOR_ONLY.match(line, previous_end, match.start())
            ):
                # "The following addresses failed: a@x, b@y": a list inherits its lead-in.
                level = max(level, previous_level)
            previous_end, previous_level = match.end(), level
            if address.lower() in exclude or _MESSAGE_ID_LIKE.match(address):
                continue
            if level == 1 and _INSTRUCTION_BEFORE.search(_line_before(lines, index)):
                level = 0
            hits.append((index, match.start(), address, level))
            if len(hits) >= _MAX_HITS:
                break
        if len(hits) >= _MAX_HITS:
            break
    if not hits:
        return []
    best = max(level for *_, level in hits)
    # A listing names each failed address on its own line; a remote refusal adds a phrase
    # ("after RCPT TO:<...>") for some of them only (Exim, Sendmail). Every listed address is a
    # recipient then, not just those a remote server happened to refuse.
    floor = 1 if best else 0
    # Each address once, where it is named most surely ("RCPT TO:<a>" over a bare "<a>"): the
    # text that follows that mention is the one that explains its failure.
    surest: dict[str, tuple[int, int, str, int]] = {}
    for index, start, address, level in hits:
        key = address.lower()
        if level >= floor and (key not in surest or level > surest[key][3]):
            surest[key] = (index, start, address, level)
    if best == 2 and any(level == 2 and not _ROLE.match(a) for *_, a, level in surest.values()):
        # A role mailbox standing alone ("postmaster@relay" under a signature) beside a
        # recipient a phrase names is the reporting site's, not a failed recipient.
        surest = {k: v for k, v in surest.items() if v[3] == 2 or not _ROLE.match(v[2])}
    chosen = sorted((index, start, address) for index, start, address, _ in surest.values())
    out: list[_Candidate] = []
    for position, (index, start, address) in enumerate(chosen):
        following = chosen[position + 1] if position + 1 < len(chosen) else None
        line = lines[index][:_LINE_LIMIT]
        if following is not None and following[0] == index:
            # Several on one line ("a@x, b@y"): each its own stretch of it.
            out.append(_Candidate(address, line[start : following[1]].strip(), best > 0))
            continue
        shares_line = position > 0 and chosen[position - 1][0] == index
        stop = min(following[0] if following else len(lines), index + 8)
        context = [(line[start:] if shares_line else line).strip()]
        for line in lines[index + 1 : stop]:
            if not line.strip():
                if any(c.strip() for c in context):
                    break
                continue
            context.append(line.strip()[:_LINE_LIMIT])
        out.append(_Candidate(address, " ".join(c for c in context if c).strip(), best > 0))
    return out


def _line_before(lines: list[str], index: int) -> str:
    """The end of the nearest non-blank line above `index` (at most three up)."""
    for line in reversed(lines[max(0, index - 3) : index]):
        if line.strip():
            return line[-200:]
    return ""


_PHASE: Final = re.compile(
    r"(?i)in reply to (?:end of )?(DATA|RCPT|MAIL|HELO|EHLO)\b|"
    r"after (?:end of )?(DATA|RCPT|MAIL|HELO|EHLO|initial connection)\b|"
    r"did not like our (?:final )?(DATA|RCPT|MAIL|HELO|EHLO)\b|"
    r"SMTP command\W+(DATA|RCPT|MAIL|HELO|EHLO)\b"
)
_REMOTE_HOST: Final = re.compile(
    r"(?i)(?:\bhost|talking to|remote system:\s*dns;|server)\s+\[?([a-z0-9-]+(?:\.[a-z0-9-]+)+)"
)
_TRANSCRIPT_SENT: Final = re.compile(r"(?m)^>>>\s*([A-Za-z]+)")
_TRANSCRIPT_ERROR: Final = re.compile(r"(?m)^<<<\s*[45]\d\d\b.*$")
_PIPELINED: Final = re.compile(r"(?i)need (?:mail|rcpt)|no valid recipients|bad sequence")


def _phase(*texts: str | None) -> str | None:
    """The SMTP command the remote server refused, from a diagnostic ("in reply to end of
    DATA command", "after RCPT TO") or a session transcript (">>> DATA" then "<<< 550 ...")."""
    for text in texts:
        if not text:
            continue
        match = _PHASE.search(text)
        if match:
            return _command(next(g for g in match.groups() if g))
        error = _TRANSCRIPT_ERROR.search(text)
        if error:
            sent = [m for m in _TRANSCRIPT_SENT.finditer(text, 0, error.start())]
            if sent:
                command = _command(sent[-1].group(1))
                # With PIPELINING (RFC 2920) RCPT TO and DATA go out together: a refusal
                # followed by "503 Need RCPT" or "no valid recipients" answered the RCPT.
                later = text[error.end() : error.end() + 400]
                if command == "DATA" and _PIPELINED.search(later):
                    return "RCPT"
                return command
    return None


def _remote_host(*texts: str | None) -> str | None:
    for text in texts:
        if text:
            match = _REMOTE_HOST.search(text)
            if match:
                return match.group(1).rstrip(".")
    return None


def _command(word: str) -> str:
    word = word.upper()
    if word in ("HELO", "EHLO") or word.startswith("INITIAL"):
        return "CONNECT"
    return word


_REPLY_CODE: Final = re.compile(r"(?:^|[\s'\"(<:])[245]\d\d(?:[\s-]|$)")


def _has_code(text: str) -> bool:
    return bool(classification.status_in(text) or _REPLY_CODE.search(text))


def _explains(text: str) -> bool:
    """Whether a diagnostic says why: an SMTP reply or enhanced code, or known wording."""
    return _has_code(text) or classification.explained(text)


def _global_diagnostic(notice: str) -> str | None:
    """The lines of a bounce notice that explain the failure, when the recipient's own line
    does not: those with SMTP codes, else those with known wording."""
    lines = [line.strip()[:_LINE_LIMIT] for line in notice[:_SCAN_LIMIT].split("\n")]
    lines = [line for line in lines if line][:_MAX_NOTICE_LINES]
    coded = [line for line in lines if _has_code(line)]
    if coded:
        return " ".join(coded[:4])
    worded = [line for line in lines if classification.explained(line)]
    return " ".join(worded[:3]) or None


def _flufl(msg: Message) -> tuple[set[str], set[str]]:
    try:
        from flufl.bounce import all_failures

        logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
        temporary, permanent = all_failures(msg)
    except Exception:  # flufl's detectors re-raise whatever they hit on broken mail
        return set(), set()

    def text(values: frozenset[bytes]) -> set[str]:
        out = set()
        for value in values:
            try:
                decoded = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            except Exception:
                continue
            found = first_address(decoded)
            if found and found == decoded.strip("<> "):
                out.add(found)
        return out

    return text(temporary), text(permanent)


def _enclosed_transcript(enclosed: Message | None, address: str) -> str | None:
    """Some gateways (InterScan) say only "unable to deliver" and enclose the bounce they got,
    transcript and all, as the "original": take the recipient's SMTP reply from there."""
    if enclosed is None:
        return None
    try:
        texts = [p for p in leaves(enclosed) if content_type(p) == "text/plain"]
    except Exception:
        return None
    for part in texts[:2]:
        for candidate in _scan(part_text(part, limit=100_000), set()):
            if candidate.address.lower() == address.lower() and _has_code(candidate.diagnostic):
                return candidate.diagnostic
    return None


# A recipient line without a domain: qmail's and Postfix's "<john>:" paragraphs, Sendmail's
# "john... User unknown" and its "<john>" under "addresses had permanent fatal errors".
_DOMAINLESS_LINE: Final = re.compile(
    r"(?m)^[ \t]*(?:<([A-Za-z0-9._%+=-]{1,64})>(?=[ \t]*(?::|\.\.\.|\(|$))|"
    r"([A-Za-z0-9._%+=-]{1,64})\.\.\.[ \t]+(?i:user|unknown|no such|mailbox|recipient|"
    r"account|invalid|quota|disabled|[45]\d\d\b))"
)


def _domainless(notice: str) -> list[tuple[str, str]]:
    """Local parts named as recipients without a domain, each once, with the text that
    explains each: its line and the next ones, up to a blank line or the next such name."""
    text = notice[:_SCAN_LIMIT]
    found: list[tuple[int, str]] = []
    seen: set[str] = set()
    for match in _DOMAINLESS_LINE.finditer(text):
        local = match.group(1) or match.group(2)
        key = local.lower()
        if key in ("postmaster", "mailer-daemon") or key in seen:
            continue
        seen.add(key)
        found.append((match.start(), local))
        if len(found) >= _MAX_HITS:
            break
    out = []
    for position, (start, local) in enumerate(found):
        stop = found[position + 1][0] if position + 1 < len(found) else len(text)
        stop = min(stop, start + _LINE_LIMIT)
        blank = text.find("\n\n", start, stop)
        lines = text[start : blank if blank >= 0 else stop].split("\n")[:8]
        out.append((local, " ".join(" ".join(lines).split())))
    return out


_QUOTED_TO: Final = re.compile(r"(?im)^[ \t>]*(?:to|recipients?|an|à|para)[ \t]*:[ \t]*(.{1,500})$")


def _listed_addresses(values: list[str], exclude: set[str]) -> list[str]:
    """The addresses in `values` in order, each once, less the sender's (`exclude`)."""
    out: dict[str, str] = {}
    for value in values[:MAX_RECIPIENTS]:
        for address in addresses_in(value[:_SCAN_LIMIT]):
            key = address.lower()
            if key not in exclude and not _MESSAGE_ID_LIKE.match(address):
                out.setdefault(key, address)
    return list(out.values())


def _sender_addresses(msg: Message, enclosed: Message | None, *, to: bool = True) -> set[str]:
    """The sender's addresses, never the failed recipient: the bounce's own From, Sender,
    Reply-To, Return-Path (and To, which is the original sender), and the returned original's
    sender fields."""
    exclude: set[str] = set()
    for name in ("From", "Sender", "Reply-To", "Return-Path", *(("To",) if to else ())):
        exclude.update(a.lower() for a in addresses_in(header(msg, name)))
    if enclosed is not None:
        for name in ("From", "Sender", "Reply-To", "Return-Path"):
            exclude.update(a.lower() for a in addresses_in(header(enclosed, name)))
    return exclude


def _default_class(notice: str) -> str:
    if _PERMANENT_WORDS.search(notice):
        return "5"
    if _DELAY_WORDS.search(notice):
        return "4"
    return "5"


# flufl.bounce's detectors run dozens of patterns over every body line and parse address
# headers with the stdlib's slow address parser. A real bounce is far smaller than these
# bounds; past them, flufl.bounce is skipped rather than let one message take seconds.
_FLUFL_MAX_BYTES: Final = 256 * 1024
_FLUFL_MAX_HEADER: Final = 4096
_FLUFL_MAX_LINES: Final = 3000


def _small_enough_for_flufl(msg: Message, raw_size: int) -> bool:
    if raw_size > _FLUFL_MAX_BYTES:
        return False
    try:
        if any(len(str(value)) > _FLUFL_MAX_HEADER for value in msg.values()):
            return False
        lines = 0
        for part in msg.walk():
            payload = part.get_payload()
            if isinstance(payload, str):
                lines += payload.count("\n")
    except Exception:
        return False
    return lines <= _FLUFL_MAX_LINES


def _from_text(
    msg: Message, notice: str, enclosed: Message | None, problems: list[str], raw_size: int
) -> list[Recipient]:
    exclude = _sender_addresses(msg, enclosed)
    candidates = _scan(notice, exclude)
    if not candidates:
        # Someone who mailed themselves: the bounce's To is then also the failed recipient.
        exclude = _sender_addresses(msg, enclosed, to=False)
        candidates = [c for c in _scan(notice, exclude) if c.strong]
    found_by: FoundBy = "bounce_text"
    if not any(c.strong for c in candidates):
        # Exim lists every failed address in its own header field (and Google copies it); the
        # text may word them in a way the scan does not trust.
        failed = _listed_addresses(header_all(msg, "X-Failed-Recipients"), exclude)
        if failed:
            by_address = {c.address.lower(): c for c in candidates}
            candidates = [by_address.get(a.lower()) or _Candidate(a, "", True) for a in failed]
            found_by = "failed_recipients_header"
    if not any(c.strong for c in candidates) and _small_enough_for_flufl(msg, raw_size):
        temporary, permanent = _flufl(msg)
        flufl_found = [a for a in sorted(permanent | temporary) if a.lower() not in exclude]
        flufl_found = [a for a in flufl_found if not _MESSAGE_ID_LIKE.match(a)]
        if flufl_found:
            by_address = {c.address.lower(): c for c in candidates}
            candidates = [
                by_address.get(a.lower()) or _Candidate(a, "", False) for a in flufl_found
            ]
            found_by = "flufl_bounce"
    if not candidates:
        # A local recipient named without a domain ("<john>:", "john... User unknown"):
        # completed from the returned original, else kept as the bounce says it.
        for local, context in _domainless(notice):
            full = complete_address(local, enclosed)
            if full is not None:
                problems.append(f"recipient {local} completed from the returned original: {full}")
            if (full or local).lower() not in exclude:
                candidates.append(_Candidate(full or local, context, True, local))
    if not candidates:
        # Last, what the notice quotes of the original ("  To: x" in its summary) and the
        # bounce's subject ("Undeliverable: ... <x>", "DELIVERY FAILURE: User x (x) ..."):
        # a recipient the bounce names is better than none.
        quoted = [m.group(1) for m in _QUOTED_TO.finditer(notice[:_SCAN_LIMIT])]
        # The subject only when no returned original says whom the mail was for.
        original_to = any(addresses_in(v) for v in header_all(enclosed, "To")[:MAX_RECIPIENTS])
        subject = "" if original_to else (decoded_header(msg, "Subject") or "")
        named = _listed_addresses([*quoted, subject[:_LINE_LIMIT]], exclude)
        candidates = [_Candidate(a, "", False) for a in named]
    if not candidates:
        return []
    default_class = _default_class(notice)
    fallback = _global_diagnostic(notice)
    delayed = bool(_DELAY_WORDS.search(notice))
    out = []
    for candidate in candidates:
        diagnostic = candidate.diagnostic
        if not _has_code(diagnostic):
            diagnostic = _enclosed_transcript(enclosed, candidate.address) or diagnostic
        if not _explains(diagnostic) and fallback and fallback not in diagnostic:
            diagnostic = " ".join(filter(None, [diagnostic, fallback]))
        diagnostic = classification.readable(diagnostic) or None
        status = classification.infer_status(diagnostic, default_class=default_class)
        if status is None:
            status = f"{default_class}.0.0"
        action = "delayed" if delayed and status.startswith("4") else "failed"
        status = classification.failure_status(status, diagnostic, action=action)
        transcript = notice if len(candidates) == 1 else None
        category = classification.classify(
            status,
            diagnostic,
            phase=_phase(diagnostic, transcript),
            remote_host=_remote_host(diagnostic, transcript),
        )
        status = classification.policy_status(status, diagnostic, category=category)
        redacted = is_redacted(candidate.address)
        unusable = redacted or first_address(candidate.address) is None  # no domain
        out.append(
            Recipient(
                address=None if unusable else candidate.address,
                original_address=candidate.address if unusable else candidate.named,
                status=status,
                action=action,
                diagnostic=diagnostic,
                hard=classification.is_hard(category, status, action),
                category=category,
                found_by=found_by,
                redacted=redacted,
            )
        )
    problems.append("no message/delivery-status part: recipients read from the bounce text")
    return out


def parse_dsn(
    msg: Message,
    *,
    raw_size: int,
    hooks: RecoveryHooks,
    problems: list[str],
    depth: int = 0,
) -> ParsedReport:
    enclosed, original_headers = enclosed_original(msg)
    notice, returned = _notice(msg)
    if enclosed is None and returned:
        enclosed = _returned_headers(returned)
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
        scanned = {c.address.lower(): c for c in _scan(notice, set())}
        fallback = _global_diagnostic(notice)
        for group in groups:
            address = clean(group.get("final-recipient")) or clean(group.get("original-recipient"))
            context = scanned.get((address or "").lower())
            recipients.append(
                _recipient(
                    group,
                    context=context.diagnostic
                    if context and _explains(context.diagnostic)
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
        recipients = _from_text(msg, notice, enclosed, problems, raw_size)

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
                _strip_type(per_message.get("x-postfix-sender")),
                *header_all(msg, "X-Original-To"),
                *header_all(msg, "Delivered-To"),
                header(msg, "To"),
            ],
        )
        if recovered:
            default_class = _default_class(notice)
            fallback = _global_diagnostic(notice)
            status = classification.infer_status(fallback, default_class=default_class)
            status = classification.failure_status(status, fallback, action="failed")
            category = classification.classify(status, fallback, phase=_phase(fallback, notice))
            status = classification.policy_status(status, fallback, category=category)
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
        original_mail_from=_strip_type(per_message.get("x-postfix-sender"))
        or (header(enclosed, "Return-Path") if enclosed is not None else None),
        arrival_date=arrival,
        reporting_mta=_strip_type(per_message.get("reporting-mta")),
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
    (fbl/recipients.complete_address); the others as they are."""
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
    end = _HEADER_START.search(body)
    body = body[: end.start()] if end else body
    # Fields quoted indented in the notice: as fields, not as continuation lines.
    return textwrap.dedent(body.replace("\r\n", "\n"))


# --- Amazon SES notifications delivered by mail ---------------------------------------------

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
        reporting_mta = _strip_type(_str(bounce.get("reportingMTA")))
        when = _str(bounce.get("timestamp"))
        for item in _list(bounce.get("bouncedRecipients")):
            item = _dict(item)
            address = first_address(_str(item.get("emailAddress")))
            diagnostic = _strip_type(_str(item.get("diagnosticCode")))
            status = classification.choose_status(_str(item.get("status")), diagnostic)
            if status is None and bounce.get("bounceType") == "Transient":
                status = "4.0.0"
            action = (_str(item.get("action")) or "failed").lower()
            category = classification.classify(status, diagnostic)
            recipients.append(
                Recipient(
                    address=address,
                    status=status,
                    action=action,
                    diagnostic=diagnostic,
                    hard=classification.is_hard(category, status, action),
                    category=category,
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
