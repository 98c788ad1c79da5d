"""Safe reading of report messages: MIME structure, headers, part text, field blocks, the
enclosed original, with limits on what hostile mail may cost.

Every reader here tolerates broken input: header access on a malformed message returns None
instead of raising, because `parse` promises to raise nothing but ParseError.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from email.feedparser import BytesFeedParser
from email.header import Header, decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Final

from fbl.boundary_lines import PARSEGEN
from fbl.indexed_message import IndexedMessage

__all__ = [
    "MAX_DECODED_HEADER",
    "MAX_ENCODED_WORDS",
    "MAX_MIME_DEPTH",
    "content_type",
    "decoded_header",
    "enclosed_original",
    "field_blocks",
    "header",
    "header_all",
    "header_block",
    "leaves",
    "parse_date",
    "part_text",
    "read_message",
    "report_type",
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

_FOLD: Final = re.compile(r"\r?\n[ \t]+")
_FIELD: Final = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$")  # RFC 5322 2.2 field-name ":"


class _Flattened(IndexedMessage):
    """A part below MAX_MIME_DEPTH: whatever its Content-Type says, it reads as text/plain, so
    the parser keeps its body as text instead of descending (the header stays as written)."""

    def get_content_type(self) -> str:
        return "text/plain"


class _BoundedParser(BytesFeedParser):
    """The stdlib parser, descending at most MAX_MIME_DEPTH levels (multipart and message/*).
    Deeper parts keep their text as a text/plain payload."""

    too_deep = False
    _parsegen = PARSEGEN  # the stdlib's, without a pattern compiled per boundary

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
    parser = _BoundedParser(IndexedMessage, policy=compat32)
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
        parsed = HeaderParser(IndexedMessage, policy=compat32).parsestr(block, headersonly=True)
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
