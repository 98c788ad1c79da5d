"""Addresses in a stored message, for the erasure index, and removing one address from it.

A message hides addresses in places a plain byte search misses: base64 and quoted-printable
parts (a returned original, a text/rfc822-headers part) and VERP return paths
(`bounces+pat=example.com@ours`). Both functions read the message the same way: the raw bytes,
plus the decoded body of every encoded part. Plain Python, no Django.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import quopri
import re
from collections.abc import Iterator
from email.message import Message

from fbl.addresses import ADDRESS
from suppression import erased

# Only worth parsing the MIME structure when some part is encoded.
_ENCODED = re.compile(rb"(?i)content-transfer-encoding:\s*(?:base64|quoted-printable)")
# `local+user=domain@host`: the VERP form of user@domain.
_VERP = re.compile(r"\+([^@+=\s]+)=([^@=\s]+)@")


def _encoded_leaves(raw: bytes) -> Iterator[Message]:
    if not _ENCODED.search(raw):
        return
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in message.walk():
            if part.is_multipart():
                continue
            if part.get("Content-Transfer-Encoding", "").strip().lower() in (
                "base64",
                "quoted-printable",
            ):
                yield part
    except Exception:  # noqa: BLE001 (hostile mail: the plain search still ran)
        return


def _decoded(part: Message) -> bytes:
    try:
        return part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001
        return b""


def addresses_mentioned(raw: bytes) -> set[str]:
    """Every address-like token in the message, lower-cased, VERP forms decoded too: one regex
    pass over the bytes and one over each encoded part."""
    texts = [raw.decode("latin-1")]
    texts.extend(_decoded(part).decode("utf-8", "replace") for part in _encoded_leaves(raw))
    found: set[str] = set()
    for text in texts:
        for token in ADDRESS.findall(text):
            token = token.lower()
            found.add(token)
            verp = _VERP.search(token)
            if verp:
                found.add(f"{verp.group(1)}@{verp.group(2)}")
    return found


def addresses_in_text(text: str) -> set[str]:
    """The same, for a JSON record or a note."""
    found = {token.lower() for token in ADDRESS.findall(text)}
    for token in list(found):
        verp = _VERP.search(token)
        if verp:
            found.add(f"{verp.group(1)}@{verp.group(2)}")
    return found


def _redact_bytes(data: bytes, address: str, placeholder: str) -> bytes:
    # latin-1 maps every byte to one character and back: other bytes stay as they were.
    text = data.decode("latin-1")
    pattern = erased.pattern(address)
    if not pattern.search(text):
        return data
    return pattern.sub(placeholder, text).encode("latin-1")


def redact_message(raw: bytes, address: str, placeholder: str) -> bytes:
    """`raw` with every spelling of `address` replaced by `placeholder`, in any letter case,
    inside encoded parts too (re-encoded the same way). The rest of the bytes are kept."""
    changed = False
    message = None
    if _ENCODED.search(raw):
        try:
            message = email.message_from_bytes(raw, policy=email.policy.compat32)
        except Exception:  # noqa: BLE001
            message = None
    if message is not None:
        for part in message.walk():
            if part.is_multipart():
                continue
            encoding = part.get("Content-Transfer-Encoding", "").strip().lower()
            if encoding not in ("base64", "quoted-printable"):
                continue
            body = _decoded(part)
            cleaned = _redact_bytes(body, address, placeholder)
            if cleaned == body:
                continue
            if encoding == "base64":
                payload = base64.encodebytes(cleaned).decode("ascii")
            else:
                payload = quopri.encodestring(cleaned).decode("ascii")
            part.set_payload(payload)
            changed = True
    if changed:
        try:
            raw = message.as_bytes(policy=email.policy.compat32.clone(max_line_length=0))
        except (binascii.Error, UnicodeError, LookupError):
            pass  # keep the bytes: the plain pass below still removes what it sees
    return _redact_bytes(raw, address, placeholder)
