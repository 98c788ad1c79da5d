"""The Postfix SMTP access policy delegation protocol: requests in, actions out.

Pure Python (no Django), so the wire format is tested on its own and the server only moves bytes.

The protocol, as Postfix documents it (SMTPD_POLICY_README, "Protocol description"):

- a request is a sequence of `name=value` lines ended by an empty line;
- the answer is one `action=...` line, also ended by an empty line;
- the client may send further requests over the same connection;
- "In case of trouble the policy server must not send a reply. Instead the server must log a
  warning and disconnect. Postfix will retry the request at some later time."

The action is anything an access(5) table may answer: here `DUNNO` (no opinion, the next
restriction decides), `REJECT` for a suppressed recipient, and the configured fail action when the
suppression list cannot be asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

# Postfix's own line_length_limit default. No attribute Postfix sends is longer in practice
# (addresses are at most 254 octets, RFC 5321 4.5.3.1), and the cap keeps what one client can
# make the server hold small.
MAX_LINE: Final = 2048
# Postfix 3.7 sends about 30 attributes per request.
MAX_ATTRIBUTES: Final = 100
# SMTP reply lines are at most 512 octets with the code (RFC 5321 4.5.3.1.5), and Postfix adds
# "<recipient>: Recipient address rejected: " before our text.
MAX_TEXT: Final = 200

ACCESS_POLICY_REQUEST: Final = "smtpd_access_policy"
RCPT_STATE: Final = "RCPT"

DUNNO_VERB: Final = "DUNNO"
REJECT_VERB: Final = "REJECT"

# access(5) actions that make sense when the list cannot be asked. OK is missing on purpose:
# it would skip every later restriction, which no outage should do.
_FAIL_VERBS: Final = frozenset(
    {"DUNNO", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "REJECT", "HOLD"}
)
_TEMPORARY_VERBS: Final = frozenset({"DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT"})
_NUMERIC_REPLY: Final = re.compile(r"[45]\d\d\Z")
_UNSAFE_TEXT: Final = re.compile(r"[^\x20-\x7e]+")
# RFC 3463 3.5, X.4.3 "Directory server failure": the lookup service needed to decide is down.
FAIL_TEXT_TEMPORARY: Final = "4.4.3 Suppression list unavailable, try again later"
FAIL_TEXT_PERMANENT: Final = "5.4.3 Suppression list unavailable"


class MalformedRequest(ValueError):
    """Input that breaks the protocol: the server logs `reason` and disconnects."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PolicyRequest:
    """One request's attributes as they arrived (the last one wins if a name repeats).

    Values are decoded only when asked for: a request carries about 30 attributes and the
    server reads four. They are UTF-8 (Postfix passes SMTPUTF8 addresses as they came);
    undecodable octets become U+FFFD, which no valid address contains, so such a recipient is
    simply not found.
    """

    raw: Mapping[bytes, bytes] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, name: str) -> str:
        return _text(self.raw.get(name.encode("ascii")))

    @property
    def attributes(self) -> dict[str, str]:
        return {_text(name): _text(value) for name, value in self.raw.items()}

    @property
    def request(self) -> str:
        return _text(self.raw.get(b"request"))

    @property
    def protocol_state(self) -> str:
        return _text(self.raw.get(b"protocol_state"))

    @property
    def sender(self) -> str:
        """The envelope sender; empty for the null sender `<>` of bounces."""
        return _text(self.raw.get(b"sender"))

    @property
    def recipient(self) -> str:
        return _text(self.raw.get(b"recipient"))

    @property
    def queue_id(self) -> str:
        return _text(self.raw.get(b"queue_id"))

    @property
    def asks_about_recipient(self) -> bool:
        """Only the RCPT TO stage of an access policy request names the recipient to check;
        other stages (CONNECT, HELO, MAIL, DATA, END-OF-MESSAGE) get no opinion from us."""
        return (
            self.raw.get(b"request") == _ACCESS_POLICY_REQUEST
            and self.raw.get(b"protocol_state") == _RCPT_STATE
        )


_ACCESS_POLICY_REQUEST: Final = ACCESS_POLICY_REQUEST.encode()
_RCPT_STATE: Final = RCPT_STATE.encode()


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def parse_attribute(line: bytes) -> tuple[bytes, bytes]:
    """One `name=value` line, without its LF, as (name, value).

    Raises MalformedRequest for a line over MAX_LINE octets, without `=`, or with an empty name.
    """
    if len(line) > MAX_LINE:
        raise MalformedRequest(f"line longer than {MAX_LINE} octets")
    name, sep, value = line.partition(b"=")
    if not sep:
        raise MalformedRequest(f"line without '=': {_preview(line)}")
    if not name:
        raise MalformedRequest(f"attribute without a name: {_preview(line)}")
    return name, value


def parse_attributes(lines: list[bytes]) -> dict[bytes, bytes]:
    """The lines of one request (without the empty line) as a dict. Raises MalformedRequest."""
    if len(lines) > MAX_ATTRIBUTES:
        raise MalformedRequest(f"more than {MAX_ATTRIBUTES} attributes in one request")
    try:
        # One C-level pass for the usual, well-formed request; a line without "=" makes a
        # one-element item and dict() refuses it.
        attributes = dict(line.split(b"=", 1) for line in lines)  # type: ignore[misc]
    except ValueError:
        attributes = dict(parse_attribute(line) for line in lines)
    if b"" in attributes or (lines and max(map(len, lines)) > MAX_LINE):
        for line in lines:
            parse_attribute(line)  # raises with the precise reason
    return attributes


class RequestParser:
    """Turns the bytes of a connection, in chunks as they arrive, into requests.

    `feed` returns the requests completed by the chunk (several when the client pipelines) and
    keeps an unfinished request for the next chunk. It raises MalformedRequest for a bad line as
    soon as the line is complete, for a line longer than MAX_LINE even before its end has
    arrived, and for more than MAX_ATTRIBUTES attributes: what the server keeps between reads
    stays under MAX_ATTRIBUTES x MAX_LINE octets.

    Lines end with LF, as Postfix sends them; CR LF (a person testing with telnet) works too.
    """

    def __init__(self) -> None:
        self._pending = b""

    @property
    def in_progress(self) -> bool:
        """Part of a request has arrived but not its terminating empty line."""
        return bool(self._pending)

    def feed(self, data: bytes) -> list[PolicyRequest]:
        buffer = self._pending + data if self._pending else data
        if b"\r" in buffer:
            # A CR at the very end may be the first half of a CR LF split across reads.
            buffer = buffer.replace(b"\r\n", b"\n")
        completed = []
        start = 0
        while True:
            if buffer.startswith(b"\n", start):  # an empty line alone: a request of nothing
                completed.append(PolicyRequest(MappingProxyType({})))
                start += 1
                continue
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            attributes = parse_attributes(buffer[start:end].split(b"\n"))
            completed.append(PolicyRequest(MappingProxyType(attributes)))
            start = end + 2
        self._pending = rest = buffer[start:]
        if rest:
            self._check_unfinished(rest)
        return completed

    @staticmethod
    def _check_unfinished(rest: bytes) -> None:
        lines = rest.split(b"\n")
        partial = lines.pop()
        if len(partial.rstrip(b"\r")) > MAX_LINE:
            raise MalformedRequest(f"line longer than {MAX_LINE} octets")
        parse_attributes(lines)


def parse_requests(data: bytes) -> list[PolicyRequest]:
    """Every complete request in `data`. Raises MalformedRequest."""
    return RequestParser().feed(data)


def encode_request(attributes: Mapping[str, str]) -> bytes:
    """The wire form of a request, as Postfix sends it."""
    lines = [f"{name}={value}\n" for name, value in attributes.items()]
    return ("".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Action:
    """An access(5) action with its optional text."""

    verb: str
    text: str = ""

    def encode(self) -> bytes:
        """`action=VERB text` and the empty line that ends the answer."""
        text = _clean_text(self.text)
        line = f"action={self.verb} {text}" if text else f"action={self.verb}"
        return (line + "\n\n").encode("ascii")


DUNNO: Final = Action(DUNNO_VERB)


def reject_suppressed(*, reason: str, scope: str) -> Action:
    """Postfix passes the text on: `554 5.7.1 <rcpt>: Recipient address rejected: TEXT`.
    RFC 3463 X.7.1: delivery not authorized, message refused."""
    return Action(REJECT_VERB, f"5.7.1 Suppressed: {reason} ({scope})")


def fail_action(setting: str) -> Action:
    """The action a POLICY_FAIL_* setting names (`DEFER_IF_PERMIT`, `DUNNO`, `450 text`, ...).

    Verbs that carry text get a default one with an RFC 3463 status code unless the setting
    gives its own. Raises ValueError for anything else, so a typo stops the server at start.
    """
    verb, _, text = setting.strip().partition(" ")
    upper = verb.upper()
    if _NUMERIC_REPLY.match(verb):
        return Action(verb, text or _default_fail_text(verb.startswith("4")))
    if upper not in _FAIL_VERBS:
        allowed = ", ".join(sorted(_FAIL_VERBS))
        raise ValueError(f"unknown policy fail action {setting!r}: use one of {allowed} or 4NN/5NN")
    if upper == DUNNO_VERB:
        return DUNNO
    return Action(upper, text.strip() or _default_fail_text(upper in _TEMPORARY_VERBS))


def _default_fail_text(temporary: bool) -> str:
    return FAIL_TEXT_TEMPORARY if temporary else FAIL_TEXT_PERMANENT


def _clean_text(text: str) -> str:
    """One line of printable ASCII: a newline would end the answer early."""
    return _UNSAFE_TEXT.sub(" ", text).strip()[:MAX_TEXT]


def _preview(line: bytes) -> str:
    return repr(line[:60]) + ("..." if len(line) > 60 else "")
