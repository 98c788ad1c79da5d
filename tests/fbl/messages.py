"""Small builders for hand-made report messages, and the shared fixture corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/fbl/ -> tests/ -> the repository -> its parent, where shared/ sits beside the clone.
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "email"


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.eml"))


def require_fixtures() -> Path:
    """The corpus directory; a missing corpus fails the run instead of passing silently."""
    if not FIXTURES.is_dir() or not fixture_files():
        pytest.fail(f"the shared email fixtures are missing: expected them under {FIXTURES}")
    return FIXTURES


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


ENCLOSED = """\
Return-Path: <news@sender.example>
From: News <news@sender.example>
To: Alice <alice@example.com>
Subject: Our spring offers
Message-ID: <offer-1@sender.example>
List-Unsubscribe: <https://u.sender.example/u/TOKEN-ALICE>, <mailto:unsubscribe@sender.example>
Date: Thu, 29 Apr 2021 10:00:00 +0000

Hello
"""


def arf(
    fields: str,
    *,
    enclosed: str | None = ENCLOSED,
    feedback_content_type: str = "message/feedback-report",
    feedback_encoding: str | None = None,
    enclosed_type: str = "message/rfc822",
    report_type: str = "feedback-report",
) -> bytes:
    """An RFC 5965 report: human part, feedback part, enclosed original (each optional or
    mislabelled as the test needs)."""
    body = fields
    encoding_header = ""
    if feedback_encoding == "base64":
        import base64

        body = base64.encodebytes(fields.encode()).decode()
        encoding_header = "Content-Transfer-Encoding: base64\n"
    parts = [
        "Content-Type: text/plain\n\nThis is an email abuse report.\n",
        f"Content-Type: {feedback_content_type}\n{encoding_header}\n{body}",
    ]
    if enclosed is not None:
        parts.append(f"Content-Type: {enclosed_type}\n\n{enclosed}")
    joined = "".join(f"--BOUNDARY\n{part}\n" for part in parts)
    return crlf(
        "From: Feedback Loop <fbl@isp.example>\n"
        "To: fbl@sender.example\n"
        "Subject: Abuse report\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="BOUNDARY"\n'
        "\n"
        f"{joined}--BOUNDARY--\n"
    )


def dsn(
    *recipient_blocks: str,
    notice: str = "Your message could not be delivered.\n",
    enclosed: str | None = ENCLOSED,
    per_message: str = "Reporting-MTA: dns; mx.sender.example\n",
) -> bytes:
    """An RFC 3464 DSN with the given per-recipient blocks."""
    status = per_message + "".join(f"\n{block}" for block in recipient_blocks)
    parts = [
        f"Content-Type: text/plain\n\n{notice}",
        f"Content-Type: message/delivery-status\n\n{status}",
    ]
    if enclosed is not None:
        parts.append(f"Content-Type: message/rfc822\n\n{enclosed}")
    joined = "".join(f"--BOUNDARY\n{part}\n" for part in parts)
    return crlf(
        "From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>\n"
        "To: news@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\n'
        "\n"
        f"{joined}--BOUNDARY--\n"
    )


def plain(headers: str, body: str = "Hello\n") -> bytes:
    """A single-part message from header lines and a body."""
    return crlf(f"{headers.rstrip()}\n\n{body}")
