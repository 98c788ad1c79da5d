"""Finding addresses in stored mail for the erasure index, and redacting one (fbl/redaction.py):
encoded parts and VERP forms included, the rest of the message kept."""

from __future__ import annotations

import base64
import email
import email.policy

from fbl import redaction
from tests.fbl.messages import crlf

ADDRESS = "pat.doe@example.com"
PLACEHOLDER = "0123456789abcdef@erased.invalid"


def message() -> bytes:
    returned = base64.encodebytes(f"To: {ADDRESS.upper()}\nSubject: hi\n".encode()).decode()
    return crlf(
        "From: MAILER-DAEMON@mx.example\nTo: bounces+pat.doe=example.com@sender.example\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Delivery to Pat.Doe@Example.com failed =3D(\n"
        "--B\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n\n"
        f"{returned}\n--B--\n"
    )


def test_every_address_is_found_also_in_encoded_parts_and_verp_forms():
    found = redaction.addresses_mentioned(message())
    assert ADDRESS in found  # from the VERP return path, the QP notice and the base64 part
    assert "mailer-daemon@mx.example" in found


def test_an_address_only_in_a_base64_part_is_found():
    encoded = base64.encodebytes(b"Final-Recipient: rfc822; hidden@example.org\n").decode()
    raw = crlf(
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n'
        f"--B\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{encoded}\n--B--\n"
    )
    assert "hidden@example.org" in redaction.addresses_mentioned(raw)


def test_redaction_removes_every_spelling_and_keeps_the_message_readable():
    raw = message()
    cleaned = redaction.redact_message(raw, ADDRESS, PLACEHOLDER)

    parsed = email.message_from_bytes(cleaned, policy=email.policy.compat32)
    texts = [cleaned.decode("latin-1")]
    texts += [p.get_payload(decode=True).decode() for p in parsed.walk() if not p.is_multipart()]
    joined = "\n".join(texts).lower()
    assert "pat.doe" not in joined
    assert PLACEHOLDER in joined
    assert parsed["From"] == "MAILER-DAEMON@mx.example"
    assert "subject: hi" in joined  # the rest of the returned headers is kept


def test_a_message_without_the_address_is_left_byte_for_byte():
    raw = message()
    assert redaction.redact_message(raw, "someone@else.example", PLACEHOLDER) == raw
