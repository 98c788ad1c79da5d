"""Who a report is about: safe reading of report messages, addresses, redaction, and the
recipient recovery order of DESIGN.md.

Recovery order (DESIGN.md, "Decisions"): our token in the enclosed message's List-Unsubscribe
header, our trace header, the VERP return path, `Original-Rcpt-To` (or a provider's own field
such as Outlook.com's `X-HmXmrOriginalRecipient`), the enclosed `To:`. The token format lives in
`unsubscribe/`, so it comes in through `RecoveryHooks.read_token`; without hooks the first two
rules are skipped.

Every reader here tolerates broken input: header access on a malformed message returns None
instead of raising, because `parse` promises to raise nothing but ParseError.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.feedparser import BytesFeedParser
from email.header import Header, decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Final

from fbl.report import FoundBy, Recipient

__all__ = [
    "DEFAULT_VERP_PREFIX",
    "MAX_DECODED_HEADER",
    "MAX_ENCODED_WORDS",
    "MAX_MIME_DEPTH",
    "MAX_RECIPIENTS",
    "RecoveryHooks",
    "addresses_in",
    "clean",
    "complete_address",
    "content_type",
    "decoded_header",
    "enclosed_original",
    "field_blocks",
    "first_address",
    "header",
    "header_all",
    "header_block",
    "is_redacted",
    "leaves",
    "list_unsubscribe_uris",
    "ours",
    "parse_date",
    "part_text",
    "read_message",
    "recover",
    "report_type",
    "verp_decode",
]

# Limits on hostile mail, so no message costs more than a moment (README, "Limits"). Each is far
# beyond what real reports need; what a limit cuts is named in the report's problems.
# MIME levels read as structure: a report and its enclosed original nest three or four deep;
# below this the part is read as text (the stdlib parser recurses once per level).
MAX_MIME_DEPTH: Final = 64
# RFC 2047 encoded words decoded per header: the stdlib decoder takes time that grows with the
# square of their number (200,000 took 69 s). A subject rarely needs a dozen.
MAX_ENCODED_WORDS: Final = 256
# Characters of a header decoded for display and classification (RFC 5322 2.1.1: a line is at
# most 998 characters; a folded subject of this size is already absurd).
MAX_DECODED_HEADER: Final = 8 * 1024
# Recipients read from one report: Postfix's default smtpd_recipient_limit, the most one SMTP
# transaction (and so one bounce) usually names.
MAX_RECIPIENTS: Final = 1000

# RFC 5322 3.4.1 addr-spec, loosened the way real reports need: a quoted local part, dots in a
# row (seen in Original-Recipient fields), and a domain without a dot (local delivery).
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# An apostrophe or backquote may sit inside a local part (o'brien@) but never opens one in real
# mail: there it is the quoting of the text around it ('user@host', smail's `user@host').
_ATOM_FIRST: Final = r"[A-Za-z0-9!#$%&*+/=?^_{|}~-]"
_LOCAL: Final = rf'(?:"[^"\r\n@]{{1,64}}"|{_ATOM_FIRST}{_ATOM}*(?:\.+{_ATOM}+)*\.*)'
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN: Final = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
ADDRESS: Final = re.compile(rf"(?<![A-Za-z0-9!#$%&*+/=?^_{{|}}~.-]){_LOCAL}@{_DOMAIN}")

# Redacted local parts (RFC 6590): what providers write instead of the real one. A long hex
# string is a hashed local part (RFC 6590 redacts by hashing with a secret); "redacted",
# "hashed", "xxxx" and friends are placeholders written literally.
_REDACTED_LOCAL: Final = re.compile(
    r"(?i)^(?:\[?redacted\]?|removed|hidden|anonymi[sz]ed|hashed|masked|"
    r"x{2,}|\*+|_+|#+|-+|\.+|[0-9a-f]{32,})$"
)
_REDACTED_DOMAIN: Final = re.compile(r"(?i)^(?:\[?redacted\]?|x{2,}(?:\.x+)*)(?:\.[a-z]{2,})?$")
_REDACTED_WHOLE: Final = re.compile(
    r"(?i)^\s*[\[<(]?\s*(?:redacted|removed|hidden|x+)\s*[\]>)]?\s*$"
)

_FOLD: Final = re.compile(r"\r?\n[ \t]+")
_FIELD: Final = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$")  # RFC 5322 2.2 field-name ":"

DEFAULT_VERP_PREFIX: Final = r"bounces?"


@dataclass(frozen=True, slots=True)
class RecoveryHooks:
    """How to recognise our own mail inside a report.

    read_token: given a URL or token string (a List-Unsubscribe URI, or the trace header's
        value), returns the recipient address it stands for, or None. It must not raise; if it
        does, the rule is skipped.
    trace_header: the header our relays add to every message.
    verp_prefix: a regex for the local-part prefix of our VERP return paths
        (`bounces+alice=example.com@mail.sender.example` decodes to `alice@example.com`).
        None turns VERP decoding off.
    """

    read_token: Callable[[str], str | None] | None = None
    trace_header: str = "X-Compliance-Trace"
    verp_prefix: str | None = DEFAULT_VERP_PREFIX

    def verp_pattern(self) -> re.Pattern[str] | None:
        if not self.verp_prefix:
            return None
        return _verp_pattern(self.verp_prefix)


_VERP_CACHE: dict[str, re.Pattern[str]] = {}


def _verp_pattern(prefix: str) -> re.Pattern[str]:
    pattern = _VERP_CACHE.get(prefix)
    if pattern is None:
        # The last "=" splits local part from domain: a local part may itself contain "=".
        pattern = re.compile(
            rf"(?i)^(?:{prefix})\+(?P<local>[^@\s]+)=(?P<domain>{_DOMAIN})@[^@\s]+$"
        )
        _VERP_CACHE[prefix] = pattern
    return pattern


# --- safe reading --------------------------------------------------------------------------


class _Flattened(Message):
    """A part below MAX_MIME_DEPTH: whatever its Content-Type says, it reads as text/plain, so
    the parser keeps its body as text instead of descending (the header stays as written)."""

    def get_content_type(self) -> str:
        return "text/plain"


class _BoundedParser(BytesFeedParser):
    """The stdlib parser, descending at most MAX_MIME_DEPTH levels (multipart and message/*).
    Deeper parts keep their text as a text/plain payload."""

    too_deep = False

    def _parse_headers(self, lines: list[str]) -> None:
        super()._parse_headers(lines)
        part = self._cur
        if len(self._msgstack) > MAX_MIME_DEPTH and part.get_content_maintype() in (
            "multipart",
            "message",
        ):
            part.__class__ = _Flattened  # only such parts pay for the override
            self.too_deep = True


def read_message(data: bytes, problems: list[str] | None = None) -> Message:
    """`data` parsed as a compat32 message, MIME structure read to MAX_MIME_DEPTH levels."""
    parser = _BoundedParser(policy=compat32)
    parser.feed(data)
    msg = parser.close()
    if parser.too_deep and problems is not None:
        problems.append(
            f"MIME parts nested more than {MAX_MIME_DEPTH} levels deep: "
            "the deeper levels are read as text"
        )
    return msg


def _printable(value: str) -> str:
    # compat32 keeps undecodable header bytes as surrogates; they would break JSON output.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def header(msg: Message | None, name: str) -> str | None:
    """The first `name` field, unfolded and stripped, or None. Never raises."""
    if msg is None:
        return None
    try:
        value = msg.get(name)
        if value is None:
            return None
        text = value if isinstance(value, str) else _raw_8bit(value)
    except Exception:  # a malformed header must not stop parsing
        return None
    return _printable(_FOLD.sub(" ", text).strip())


def _raw_8bit(value: object) -> str:
    """compat32 hands back a header with raw 8-bit bytes (RFC 6532 UTF-8, or worse) as a
    Header in the unknown-8bit charset; its str() turns every such byte into U+FFFD."""
    if not isinstance(value, Header):
        return str(value)
    out = []
    for chunk, charset in decode_header(value):
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(
                chunk.decode("utf-8")
                if charset in (None, "unknown-8bit")
                else chunk.decode(charset, "replace")
            )
        except (UnicodeDecodeError, LookupError):
            out.append(chunk.decode("latin-1"))
    return "".join(out)


def header_all(msg: Message | None, name: str) -> list[str]:
    if msg is None:
        return []
    try:
        values = msg.get_all(name) or []
        return [
            _printable(_FOLD.sub(" ", v if isinstance(v, str) else _raw_8bit(v)).strip())
            for v in values
        ]
    except Exception:
        return []


def decoded_header(
    msg: Message | None, name: str, *, problems: list[str] | None = None
) -> str | None:
    """A header with RFC 2047 encoded words decoded (for subjects and display text). Only its
    first MAX_DECODED_HEADER characters and MAX_ENCODED_WORDS encoded words are decoded; a cut
    is noted in `problems` when given."""
    raw = header(msg, name)
    if raw is None or "=?" not in raw:
        return raw
    if len(raw) > MAX_DECODED_HEADER:
        raw = raw[:MAX_DECODED_HEADER]
        if problems is not None:
            problems.append(f"{name} header decoded on its first {MAX_DECODED_HEADER} characters")
    # Every encoded word starts with "=?" (RFC 2047 2): counting those bounds the decoder.
    start = -1
    for _ in range(MAX_ENCODED_WORDS + 1):
        start = raw.find("=?", start + 1)
        if start < 0:
            break
    else:
        raw = raw[:start].rstrip()
        if problems is not None:
            problems.append(
                f"{name} header has more than {MAX_ENCODED_WORDS} RFC 2047 encoded words: "
                f"decoded up to the {MAX_ENCODED_WORDS}th"
            )
    try:
        return _printable(str(make_header(decode_header(raw))))
    except Exception:
        return raw


def part_text(part: Message, limit: int | None = None) -> str:
    """The decoded text of a leaf part (transfer encoding and charset undone). Never raises."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        try:
            inner = part.get_payload()
        except Exception:
            return ""
        if isinstance(inner, str):
            payload = inner.encode("utf-8", "surrogateescape")
        elif isinstance(inner, list):
            # message/* parts other than rfc822 (message/feedback-report, say) are parsed by
            # the stdlib as messages: their fields become headers. Give back the text.
            return "\n\n".join(_message_text(m) for m in inner if isinstance(m, Message))
        else:
            return ""
    if limit is not None:
        payload = payload[:limit]
    charset = "utf-8"
    try:
        charset = part.get_content_charset() or "utf-8"
    except Exception:
        pass
    try:
        return payload.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        return payload.decode("utf-8", "replace")


def _message_text(msg: Message) -> str:
    head = header_block(msg) or ""
    try:
        body = msg.get_payload()
    except Exception:
        body = None
    if isinstance(body, str) and body.strip():
        return f"{head}\n\n{body}"
    return head


def field_blocks(text: str) -> list[list[tuple[str, str]]]:
    """RFC 5322-style "Name: value" fields grouped into blank-line separated blocks, the syntax
    of message/delivery-status (RFC 3464 section 2.1) and message/feedback-report (RFC 5965
    section 3.1). Continuation lines are unfolded; lines that are not fields are skipped."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[0] in " \t":
            if current:
                name, value = current[-1]
                current[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _FIELD.match(line)
        if match:
            current.append((match.group(1), match.group(2).strip()))
    if current:
        blocks.append(current)
    return blocks


def enclosed_original(msg: Message) -> tuple[Message | None, str | None]:
    """The enclosed original message (message/rfc822) or its headers (text/rfc822-headers,
    RFC 6522 section 4), and that header block as text. Looks only at the report's own parts,
    never inside the enclosed message."""
    for part in leaves(msg):
        ctype = content_type(part)
        if ctype in ("message/rfc822", "message/global", "message/partial"):
            try:
                payload = part.get_payload()
            except Exception:
                continue
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                inner = payload[0]
                if (header(part, "Content-Transfer-Encoding") or "").lower() == "base64":
                    return _base64_enclosure(inner)
                return inner, header_block(inner)
            if isinstance(payload, str) and payload.strip():
                return _headers_from_text(part_text(part))
        elif ctype in ("text/rfc822-headers", "text/global-headers"):
            return _headers_from_text(part_text(part))
    return None, None


def _base64_enclosure(garbled: Message) -> tuple[Message | None, str | None]:
    """RFC 2046 5.2.1 allows only 7bit, 8bit or binary for message/rfc822, but loops send it
    base64-encoded; the stdlib then parses the base64 text as headers. Decode and parse again."""
    try:
        text = _message_text(garbled)
        data = base64.b64decode("".join(text.split()), validate=False)
        inner = read_message(data)
    except Exception:
        return garbled, header_block(garbled)
    return inner, header_block(inner)


def _headers_from_text(text: str) -> tuple[Message | None, str | None]:
    block = text.lstrip("\r\n")
    end = re.search(r"\r?\n\r?\n", block)
    if end:
        block = block[: end.start()]
    if not block.strip():
        return None, None
    try:
        parsed = HeaderParser(policy=compat32).parsestr(block, headersonly=True)
    except Exception:
        return None, block
    return parsed, block


def header_block(msg: Message) -> str | None:
    try:
        items = msg.items()
    except Exception:
        return None
    if not items:
        return None
    return _printable("\n".join(f"{k}: {v}" for k, v in items))


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def report_type(msg: Message) -> str:
    """The report-type parameter of a multipart/report (RFC 6522 section 3), lower case."""
    try:
        return str(msg.get_param("report-type") or "").lower()
    except Exception:
        return ""


def leaves(msg: Message) -> list[Message]:
    """The report's own leaf parts in order, never descending into an enclosed message. A
    multipart whose boundary the stdlib could not find is a leaf holding its text."""
    out: list[Message] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        try:
            payload = part.get_payload()
        except Exception:
            continue
        if content_type(part).startswith("multipart/") and isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
        else:
            out.append(part)
    return out


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date (RFC 5965 3.2 and RFC 3464 2.2.5 use it); ISO 8601 as some send."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


# --- addresses -------------------------------------------------------------------------------


def addresses_in(value: str | None) -> list[str]:
    if not value:
        return []
    return [m.group(0) for m in ADDRESS.finditer(value)]


def first_address(value: str | None) -> str | None:
    if not value:
        return None
    match = ADDRESS.search(value)
    return match.group(0) if match else None


def clean(value: str | None) -> str | None:
    """An address from a report field: drop the RFC 3464 address-type ("rfc822;"), angle
    brackets, comments and surrounding space. Returns the text itself when it holds no address
    (a redaction placeholder, say), or None when empty."""
    if value is None:
        return None
    text = value.strip()
    if ";" in text[:16] and text.split(";", 1)[0].strip().isalnum():
        text = text.split(";", 1)[1].strip()  # RFC 3464 2.3.2 address-type ";" address
    found = first_address(text)
    if found:
        return found
    text = text.strip("<> \t")
    return text or None


def is_redacted(value: str | None) -> bool:
    """RFC 6590 lets a provider redact the recipient of a report; recognise what they write."""
    if not value:
        return False
    if _REDACTED_WHOLE.match(value):
        return True
    local, at, domain = value.rpartition("@")
    if not at:
        return bool(_REDACTED_LOCAL.match(value.strip("<>[] ")))
    local = local.strip('"')
    return bool(_REDACTED_LOCAL.match(local) or _REDACTED_DOMAIN.match(domain))


def verp_decode(address: str | None, hooks: RecoveryHooks) -> str | None:
    pattern = hooks.verp_pattern()
    if pattern is None or not address:
        return None
    found = first_address(address) or address
    match = pattern.match(found.strip("<> "))
    if not match:
        return None
    return f"{match.group('local')}@{match.group('domain')}"


# --- recovery order --------------------------------------------------------------------------

_URI_IN_BRACKETS: Final = re.compile(r"<([^>]+)>")


def list_unsubscribe_uris(value: str) -> list[str]:
    """The URIs of a List-Unsubscribe value (RFC 2369 section 3.2: each in angle brackets);
    the whole value when it has none."""
    return [uri.strip() for uri in _URI_IN_BRACKETS.findall(value)] or [value.strip()]


def ours(
    enclosed: Message | None,
    hooks: RecoveryHooks,
    *,
    return_paths: Sequence[str | None] = (),
) -> tuple[str, FoundBy] | None:
    """The first three recovery rules, the ones that recognise our own mail: our token in the
    List-Unsubscribe header (RFC 2369 section 3.2, RFC 8058), our trace header, the VERP return
    path. Returns (address, rule) or None."""
    read = hooks.read_token
    if read is not None and enclosed is not None:
        for value in header_all(enclosed, "List-Unsubscribe"):
            for uri in list_unsubscribe_uris(value):
                found = _call(read, uri)
                if found:
                    return found, "token"
        trace = header(enclosed, hooks.trace_header)
        if trace:
            found = _call(read, trace)
            if found:
                return found, "trace_header"
    candidates = [header(enclosed, "Return-Path"), *return_paths]
    for candidate in candidates:
        found = verp_decode(candidate, hooks)
        if found:
            return found, "verp"
    return None


def _call(read: Callable[[str], str | None], value: str) -> str | None:
    try:
        found = read(value)
    except Exception:  # a broken hook costs one rule, not the report
        return None
    return found if isinstance(found, str) and found else None


def recover(
    *,
    enclosed: Message | None,
    hooks: RecoveryHooks,
    original_rcpt_to: Sequence[str] = (),
    provider_rcpt: Sequence[str] = (),
    return_paths: Sequence[str | None] = (),
) -> tuple[Recipient, ...]:
    """Recipients of a complaint (or of a bounce whose report names none), by the DESIGN.md
    order. A redacted address never becomes `address`: later rules are tried for a real one,
    and if none has one the first redacted value is returned with `redacted=True`."""
    mine = ours(enclosed, hooks, return_paths=return_paths)
    if mine is not None:
        return (Recipient(address=mine[0], found_by=mine[1]),)

    redacted: Recipient | None = None
    rules: list[tuple[FoundBy, list[str]]] = [
        ("original_rcpt_to", [v for v in original_rcpt_to if v]),
        ("provider_field", [v for v in provider_rcpt if v]),
        ("enclosed_to", _to_addresses(enclosed)),
    ]
    for rule, values in rules:
        found: list[Recipient] = []
        seen: set[str] = set()
        for value in values[:MAX_RECIPIENTS]:
            address = clean(value)
            if not address:
                continue
            if is_redacted(address):
                if redacted is None:
                    redacted = Recipient(
                        address=None, original_address=value.strip(), found_by=rule, redacted=True
                    )
                continue
            if first_address(address) is None:
                continue  # "undisclosed-recipients:;" and other non-addresses
            key = address.lower()
            if key not in seen:
                seen.add(key)
                found.append(Recipient(address=address, found_by=rule))
        if found:
            return tuple(found)
    return (redacted,) if redacted is not None else ()


# Where the original message names its recipient: the header fields, and the delivery headers
# the receiving side adds (Delivered-To, X-Original-To, Envelope-To).
_ORIGINAL_RECIPIENT_FIELDS: Final = (
    "To",
    "Cc",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
)


def complete_address(value: str | None, enclosed: Message | None) -> str | None:
    """The full address a report means by a bare local part, from the returned original.

    A report may name a recipient without a domain ("Final-Recipient: rfc822; john"): RFC 3464
    2.3.2 asks for the address as the reporting MTA knew it, and a local delivery knows only
    the local part. The original's To/Cc/Delivered-To/X-Original-To says which address the
    sender used: the one with that local part, if exactly one has it. Never invents a domain
    (the reporting MTA's host name is not the recipient's): None when the original does not
    settle it, and for a value that already has a domain."""
    if not value or enclosed is None:
        return None
    local = value.strip().strip("<>").strip().rstrip("@").strip('"').lower()
    if not local or any(c in local for c in '@ \t<>,;:"'):
        return None
    found: dict[str, str] = {}
    for name in _ORIGINAL_RECIPIENT_FIELDS:
        for field in header_all(enclosed, name)[:MAX_RECIPIENTS]:
            for address in addresses_in(field[:MAX_DECODED_HEADER]):
                if address.rpartition("@")[0].strip('"').lower() == local:
                    found.setdefault(address.lower(), address)
    return next(iter(found.values())) if len(found) == 1 else None


def _to_addresses(enclosed: Message | None) -> list[str]:
    values = header_all(enclosed, "To")
    out: list[str] = []
    for value in values:
        found = addresses_in(value)
        if found:
            out.extend(found)
        elif value.strip():
            out.append(value.strip())
    return out
