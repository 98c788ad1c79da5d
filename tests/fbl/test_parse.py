"""The `parse` entry point: its promises (only ParseError, kinds, truncation) and `to_json`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fbl.parse import parse
from fbl.report import ParsedReport, ParseError, Recipient, to_json

from .messages import arf, dsn, plain

COMPLAINT_FIELDS = (
    "Feedback-Type: abuse\nVersion: 1\nSource-IP: 192.0.2.1\nReported-Domain: sender.example\n"
    "Reported-Domain: other.example\nArrival-Date: Thu, 29 Apr 2021 10:00:00 +0000\n"
    "Original-Rcpt-To: alice@example.com\n"
)
UNKNOWN_USER = (
    "Final-Recipient: rfc822; alice@example.com\nAction: failed\nStatus: 5.1.1\n"
    "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
)


def test_to_json_has_exactly_the_public_shape():
    shape = to_json(parse(arf(COMPLAINT_FIELDS)), "reports/1.eml")
    assert shape == {
        "file": "reports/1.eml",
        "kind": "arf",
        "feedback_type": "abuse",
        "reported_domain": "sender.example",
        "source_ip": "192.0.2.1",
        "original_message_id": "<offer-1@sender.example>",
        "arrival_date": "2021-04-29T10:00:00+00:00",
        "recipients": [
            {
                "address": "alice@example.com",
                "status": None,
                "action": None,
                "hard": False,
                "diagnostic": None,
                "found_by": "original_rcpt_to",
            }
        ],
        "problems": [],
    }
    json.dumps(shape)  # serialisable as is


def test_to_json_of_a_bounce():
    shape = to_json(parse(dsn(UNKNOWN_USER)))
    assert shape["file"] is None
    assert shape["kind"] == "dsn"
    assert shape["feedback_type"] is None and shape["reported_domain"] is None
    assert shape["recipients"] == [
        {
            "address": "alice@example.com",
            "status": "5.1.1",
            "action": "failed",
            "hard": True,
            "diagnostic": "550 5.1.1 User unknown",
            "found_by": "dsn_final_recipient",
        }
    ]


def test_ordinary_mail_is_unknown_and_says_so():
    report = parse(plain("From: a@example.com\nTo: b@example.com\nSubject: hello"))
    assert report.kind == "unknown"
    assert report.recipients == ()
    assert report.problems == ("not a feedback report, bounce or auto-reply",)


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\x00\x01\x02", b"no header at all"])
def test_empty_or_headerless_input_is_unknown(raw):
    report = parse(raw)
    assert report.kind == "unknown"
    assert report.problems


@pytest.mark.parametrize("not_bytes", ["From: a@example.com\n\nhi", None, 42, ["x"]])
def test_anything_but_bytes_raises_parse_error(not_bytes):
    with pytest.raises(ParseError):
        parse(not_bytes)


def test_bytearray_and_memoryview_are_bytes_enough():
    raw = dsn(UNKNOWN_USER)
    assert parse(bytearray(raw)).recipients == parse(raw).recipients
    assert parse(memoryview(raw)).recipients == parse(raw).recipients


def test_messages_over_max_bytes_are_parsed_on_their_start_and_flagged():
    raw = dsn(UNKNOWN_USER) + b"\r\n" + b"x" * 50_000
    report = parse(raw, max_bytes=len(raw) - 50_000)
    assert report.raw_size == len(raw)
    assert report.raw == raw
    assert report.recipients[0].address == "alice@example.com"
    assert any("truncated" in p for p in report.problems)
    assert not any("truncated" in p for p in parse(raw).problems)


def test_truncation_that_cuts_the_report_still_returns_a_report():
    raw = dsn(UNKNOWN_USER)
    report = parse(raw, max_bytes=300)
    assert report.kind in ("dsn", "unknown")
    assert any("truncated" in p for p in report.problems)


def test_results_are_frozen():
    report = parse(dsn(UNKNOWN_USER))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.kind = "arf"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.recipients[0].hard = False  # type: ignore[misc]
    assert isinstance(report, ParsedReport) and isinstance(report.recipients[0], Recipient)


def test_raw_8bit_headers_are_read_as_utf8_else_latin1():
    utf8 = plain("From: Rupert <rupert@example.com>\nSubject: Réponse automatique")
    assert parse(utf8).kind == "autoreply"
    raw = plain(
        "From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered \xff\xfe Mail",
        "<a@example.com>: 550 5.1.1 User unknown\n",
    ).replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe")
    report = parse(raw)
    json.dumps(to_json(report))  # no lone surrogates left
    assert report.subject == "Undelivered \xff\xfe Mail"  # not UTF-8: read as Latin-1


def test_no_text_of_a_parsed_report_holds_a_nul_character():
    # A quoted-printable "=00" in a real bounce's diagnostic decodes to NUL, which storage
    # refuses; the raw input is kept exactly as received.
    from tests.fbl.messages import require_fixtures

    raw = (require_fixtures() / "dsn" / "lhost-office365-01.eml").read_bytes()
    report = parse(raw)
    assert report.kind == "dsn"
    assert "\x00" not in json.dumps(to_json(report), ensure_ascii=False)
    assert report.raw == raw
    # The NUL is replaced, not the text around it dropped.
    raw = (
        b"From: MAILER-DAEMON@mx.relay.example\r\nTo: news@sender.example\r\n"
        b"Subject: Undeliverable\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Delivery has failed to these recipients or groups:\r\n\r\n"
        b"ann@dest.example\r\n550 5.1.1 User unknown, see LinkId=3D=00123\r\n"
    )
    (only,) = parse(raw).recipients
    assert "\x00" not in only.diagnostic and "\ufffd123" in only.diagnostic
