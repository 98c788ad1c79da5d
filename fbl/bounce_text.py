"""The human-readable notice of a bounce: where it ends and the returned original begins, the
recipients it names, and what its text says of the failure.

fbl/dsn.py reads a bounce's message/delivery-status part; when that names no recipient, the
notice is read here, in this order: recipient lines in the MTA's own wording and language
("<alice@example.com>: 550 5.1.1 User unknown", "The following address(es) failed:", "Votre
message n'a pas pu être remis à ...", every address of a listing); Exim's X-Failed-Recipients
field; flufl.bounce's provider detectors; a local part named without a domain ("<john>:"),
completed from the returned original (fbl/addresses.complete_address); the original's To:
quoted in the notice and the subject. The diagnostic of each is the text that follows it, else
the notice's lines that explain the failure; the SMTP command refused and the remote host are
read from that text or from a session transcript.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Final

from fbl import classification, pattern_cache
from fbl.addresses import (
    ADDRESS,
    MAX_RECIPIENTS,
    addresses_in,
    complete_address,
    first_address,
    is_redacted,
)
from fbl.headers import content_type, decoded_header, header, header_all, leaves, part_text
from fbl.report import FoundBy, Recipient

__all__ = [
    "HEADER_START",
    "default_status_class",
    "explains",
    "global_diagnostic",
    "phase_in",
    "read_notice",
    "recipients_from_text",
    "remote_host_in",
    "returned_headers",
    "scan",
]

# Where the human-readable notice ends and the returned original begins.
_ORIGINAL_MARKER: Final = pattern_cache.compile(
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
HEADER_START: Final = pattern_cache.compile(
    r"(?m)^(?:Received|Return-Path|DKIM-Signature|ARC-Seal|ARC-Authentication-Results|"
    r"Authentication-Results):[ \t]"
)

# Lines that name the sender or are contact hints, never the failed recipient.
_NOT_RECIPIENT_LINE: Final = pattern_cache.compile(
    r"(?i)^[\s>]*(?:from|sender|reply-to|return-path|mail from|original sender|envelope-from|"
    r"message-id|in-reply-to|references|x-postfix-sender|x-original-sender|"
    # the sender in other languages: de, fr, es, it, pt, nl, ja
    r"absender|exp(?:é|e)diteur|remitente|mittente|remetente|afzender|差出人|送信者|送信元)\b|"
    r"contact|assistance|send mail to|please (?:send|write|e-?mail)|"
    # the same in de, fr, es, it, pt, nl, ru, ja, zh: "wenden Sie sich an x", "écrivez à x"
    r"wenden sie sich an|kontaktieren sie|schreiben sie an|(?:é|e)crive[zr] (?:à|a)|"
    r"p(?:ó|o)ngase en contacto|escriba (?:a|al)|contatta|scrive(?:re|te) a|entre em contato|"
    r"neem contact|свяж|обратитесь|問い合わせ|連絡|联系|"
    # (Sendmail's "(expanded from: <x>)" names the recipient a pipe or file came from.)
    r"mail ?from:|(?<!expanded )from:|http[s]?://\S*@|^\s*(?:to|cc|subject|sent|date)\s*:"
)
_RECIPIENT_CONTEXT: Final = pattern_cache.compile(
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
    # Exim names the address a pipe or file delivery came from: "generated by x"; Sendmail
    # "(expanded from: <x>)"
    r"generated by|expanded from:|"
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
_INSTRUCTION_BEFORE: Final = pattern_cache.compile(
    r"(?i)(?:\b(?:send|write|mail|forward|reply|contact|reach(?:ed)?)\b.*\b(?:to|at|as)|"
    r"to the address|can be reached(?: as| at)?|^\s*--\s*|(?:best |kind )?regards,?|"
    r"thanks?(?: you)?,?|sincerely,?)\s*:?\s*$"
)
# The reporting site's own mailboxes (RFC 5321 4.5.1, RFC 2142), never a failed recipient beside
# one the notice names.
_ROLE: Final = pattern_cache.compile(
    r"(?i)^(?:postmaster|mailer-daemon|hostmaster|abuse|no-?reply)@"
)
_DELAY_WORDS: Final = pattern_cache.compile(
    r"(?i)will (?:continue|keep) (?:trying|to try)|has not yet been delivered|still trying|"
    r"delivery (?:is )?delayed|warning: message|will be retried|not been delivered yet"
)
_PERMANENT_WORDS: Final = pattern_cache.compile(
    r"(?i)permanent(?:ly)? (?:fatal )?(?:error|fail)|fatal error"
)
_DSN_FIELDS_IN_TEXT: Final = pattern_cache.compile(
    r"(?im)^[ \t]*(?:final-recipient|original-recipient|x-actual-recipient|action|status|"
    r"diagnostic-code|remote-mta|reporting-mta|received-from-mta|arrival-date|"
    r"last-attempt-date|will-retry-until|original-envelope-id|x-postfix-[a-z-]+)[ \t]*:.*"
    r"(?:\n[ \t]+\S.*)*$"
)
_MESSAGE_ID_LIKE: Final = pattern_cache.compile(
    r"^[0-9a-f.\-_$]{16,}@|^[0-9]{8,}\.[0-9a-z.]+@", re.I
)
_TAGS: Final = pattern_cache.compile(r"<[^>]{0,2000}>")


def read_notice(msg: Message) -> tuple[str, str]:
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
    # Mail comes with CRLF line ends (RFC 5322 2.1); the rules read lines ending in "\n", and
    # a "\r" left before it hides an end of line from "$" (Sendmail's "<john>" alone on a line).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cut = _cut_point(text)
    # DSN fields pasted into the text are read as fields, not as prose.
    return _DSN_FIELDS_IN_TEXT.sub("", text[:cut]), text[cut:]


_LINE_TAGS: Final = pattern_cache.compile(r"(?i)<br\s*/?>|</(?:p|div|tr|li|h[1-6]|table|pre)\s*>")


def _html_text(markup: str) -> str:
    """The text of an HTML notice, line breaks where the markup breaks lines, entities
    decoded. "<user@example.com>" written raw in the markup is text, not a tag."""
    import html  # only for HTML notices, which are few

    markup = _LINE_TAGS.sub("\n", markup)
    markup = _TAGS.sub(lambda m: m.group(0) if ADDRESS.fullmatch(m.group(0)[1:-1]) else " ", markup)
    return html.unescape(markup)


def _cut_point(text: str) -> int:
    ends = [len(text)]
    marker = _ORIGINAL_MARKER.search(text)
    if marker:
        ends.append(marker.start())
    start = HEADER_START.search(text)
    if start and start.start() > 0:
        ends.append(start.start())
    return min(ends)


def returned_headers(rest: str) -> Message | None:
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


_TRAILER_AFTER_ADDRESS: Final = pattern_cache.compile(
    # Exchange 2003: "x@y on 10/10/2023" ("am", "le", "el", "il", "em", "op" in its languages)
    r"""^[>\]"'\s]*(?:$|[:,.(\[<]|\.\.\.|\s-\s|\s+(?:on|am|le|el|il|em|op)\s|\s+\[)|"""
    # "x@y Invalid Address, ERROR_CODE :550", "x@y 550 5.1.1 User unknown"
    r"""^[>\]"']?\s+(?:[245]\d\d\b|[245]\.\d{1,3}\.\d|(?i:(?:user |recipient |address |"""
    r"""mailbox |account )?(?:unknown|invalid|not found|does not exist|doesn't exist|"""
    r"""no such|is not|disabled|inactive|full|over quota|rejected|refused|failed)))|"""
    # Japanese particles after the address: "x 宛のメール", "x へ送信", "x は存在しません"
    r"""^[>\]"']?\s*(?:宛|へ|は|に)"""
)
_FOLDED_HEADER: Final = pattern_cache.compile(
    r"(?i)^[ \t]*(?:(?:re(?:sent|ply)-)?to|cc|bcc|from|sender)[ \t]*:.*,[ \t]*$"
)
_IN_URL: Final = pattern_cache.compile(r"https?://\S*$", re.I)
_DISPLAY_NAME: Final = pattern_cache.compile(
    r"""\s*["']?[^\W\d_][^<>()@:;,"'\n]{0,60}["']?\s*[<(]\s*"""
)
# Between two addresses of one list: commas, semicolons, brackets, quotes, "and".
_SEPARATOR_ONLY: Final = pattern_cache.compile(
    r"""[\s>,;"')\]]*(?:\s(?:and|et|und|y)\s)?[\s<"'(\[]*$"""
)
# A list marker before an address on its own line ("1. x@y", "* x@y", "- x@y").
_LIST_MARKER: Final = pattern_cache.compile(r"^\s*(?:[-*\u2022\u00b7]|\d{1,3}[.)])\s+")


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


def scan(notice: str, exclude: set[str]) -> list[_Candidate]:
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
    return [_with_coded_mention(c, hits, chosen, lines) for c in out]


def _with_coded_mention(
    candidate: _Candidate,
    hits: list[tuple[int, int, str, int]],
    chosen: list[tuple[int, int, str]],
    lines: list[str],
) -> _Candidate:
    """A candidate whose own text gives no SMTP code, with the text of a later mention of the
    same address that does: Exchange's and Office 365's NDRs explain each recipient in words
    first, then repeat it under "Diagnostic information for administrators" with the remote
    server's reply ("Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'")."""
    if _has_code(candidate.diagnostic):
        return candidate
    key = candidate.address.lower()
    taken = {index for index, _, address in chosen if address.lower() == key}
    for index, start, address, _ in hits:
        if address.lower() != key or index in taken:
            continue
        context = [lines[index][start:_LINE_LIMIT].strip()]
        for line in lines[index + 1 : index + 3]:
            if not line.strip():
                break
            context.append(line.strip()[:_LINE_LIMIT])
        text = " ".join(context)
        if _has_code(text):
            return replace(candidate, diagnostic=f"{candidate.diagnostic} {text}".strip())
    return candidate


def _line_before(lines: list[str], index: int) -> str:
    """The end of the nearest non-blank line above `index` (at most three up)."""
    for line in reversed(lines[max(0, index - 3) : index]):
        if line.strip():
            return line[-200:]
    return ""


# These two read lower-cased text, as the classification rules do: over whole notices a
# case-sensitive search of lower-cased text took a third of the time of re.IGNORECASE.
_PHASE: Final = pattern_cache.compile(
    r"in reply to (?:end of )?(data|rcpt|mail|helo|ehlo)\b|"
    r"after (?:end of )?(data|rcpt|mail|helo|ehlo|initial connection)\b|"
    r"did not like our (?:final )?(data|rcpt|mail|helo|ehlo)\b|"
    r"smtp command\W+(data|rcpt|mail|helo|ehlo)\b"
)
_REMOTE_HOST: Final = pattern_cache.compile(
    r"(?:\bhost|talking to|remote system:\s*dns;|server)\s+\[?([a-z0-9-]+(?:\.[a-z0-9-]+)+)"
)
_TRANSCRIPT_SENT: Final = pattern_cache.compile(r"(?m)^>>>\s*([A-Za-z]+)")
_TRANSCRIPT_ERROR: Final = pattern_cache.compile(r"(?m)^<<<\s*[45]\d\d\b.*$")
_PIPELINED: Final = pattern_cache.compile(
    r"(?i)need (?:mail|rcpt)|no valid recipients|bad sequence"
)


def phase_in(*texts: str | None) -> str | None:
    """The SMTP command the remote server refused, from a diagnostic ("in reply to end of
    DATA command", "after RCPT TO") or a session transcript (">>> DATA" then "<<< 550 ...")."""
    for text in texts:
        if not text:
            continue
        match = _PHASE.search(text.lower())
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


def remote_host_in(*texts: str | None) -> str | None:
    """The remote server's name, lower-cased, from a diagnostic or a transcript ("host
    mx.example.com[192.0.2.1] said:", "while talking to mx.example.com")."""
    for text in texts:
        if text:
            match = _REMOTE_HOST.search(text.lower())
            if match:
                return match.group(1).rstrip(".")
    return None


def _command(word: str) -> str:
    word = word.upper()
    if word in ("HELO", "EHLO") or word.startswith("INITIAL"):
        return "CONNECT"
    return word


_REPLY_CODE: Final = pattern_cache.compile(r"(?:^|[\s'\"(<:])[245]\d\d(?:[\s-]|$)")


def _has_code(text: str) -> bool:
    return bool(classification.status_in(text) or _REPLY_CODE.search(text))


def explains(text: str) -> bool:
    """Whether a diagnostic says why: an SMTP reply or enhanced code, or known wording."""
    return _has_code(text) or classification.explained(text)


def global_diagnostic(notice: str) -> str | None:
    """The lines of a bounce notice that explain the failure, when the recipient's own line
    does not: those with SMTP codes, else those with known wording."""
    lines = [line.strip()[:_LINE_LIMIT] for line in notice[:_SCAN_LIMIT].split("\n")]
    lines = [line for line in lines if line][:_MAX_NOTICE_LINES]
    coded = [line for line in lines if _has_code(line)]
    if coded:
        return " ".join(coded[:4])
    worded = itertools.islice((line for line in lines if classification.explained(line)), 3)
    return " ".join(worded) or None


def _flufl(msg: Message) -> tuple[set[str], set[str]]:
    try:
        import logging

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
        for candidate in scan(part_text(part, limit=100_000), set()):
            if candidate.address.lower() == address.lower() and _has_code(candidate.diagnostic):
                return candidate.diagnostic
    return None


# A recipient line without a domain: qmail's and Postfix's "<john>:" paragraphs, Sendmail's
# "john... User unknown" and its "<john>" under "addresses had permanent fatal errors".
_DOMAINLESS_LINE: Final = pattern_cache.compile(
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


_QUOTED_TO: Final = pattern_cache.compile(
    r"(?im)^[ \t>]*(?:to|recipients?|an|à|para)[ \t]*:[ \t]*(.{1,500})$"
)


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


def default_status_class(notice: str) -> str:
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


def recipients_from_text(
    msg: Message, notice: str, enclosed: Message | None, problems: list[str], raw_size: int
) -> list[Recipient]:
    exclude = _sender_addresses(msg, enclosed)
    candidates = scan(notice, exclude)
    if not candidates:
        # Someone who mailed themselves: the bounce's To is then also the failed recipient.
        exclude = _sender_addresses(msg, enclosed, to=False)
        candidates = [c for c in scan(notice, exclude) if c.strong]
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
    default_class = default_status_class(notice)
    # The notice's own explanation, read only for a candidate whose line gives none.
    notice_diagnostic = functools.cache(lambda: global_diagnostic(notice))
    delayed = bool(_DELAY_WORDS.search(notice))
    out = []
    for candidate in candidates:
        diagnostic = candidate.diagnostic
        if not _has_code(diagnostic):
            diagnostic = _enclosed_transcript(enclosed, candidate.address) or diagnostic
        fallback = None if explains(diagnostic) else notice_diagnostic()
        if fallback and fallback not in diagnostic:
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
            phase=phase_in(diagnostic, transcript),
            remote_host=remote_host_in(diagnostic, transcript),
        )
        status = classification.block_status(status, diagnostic, category=category)
        redacted = is_redacted(candidate.address)
        unusable = redacted or first_address(candidate.address) is None  # no domain
        out.append(
            classification.bounced_recipient(
                None if unusable else candidate.address,
                status=status,
                action=action,
                diagnostic=diagnostic,
                found_by=found_by,
                category=category,
                original_address=candidate.address if unusable else candidate.named,
                redacted=redacted,
            )
        )
    problems.append("no message/delivery-status part: recipients read from the bounce text")
    return out
