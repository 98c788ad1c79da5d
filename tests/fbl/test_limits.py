"""Hostile mail is read within named limits: what a limit cuts is said in `problems`, the rest of
the report is still read, and the raw message is kept as received."""

from __future__ import annotations

import pytest

from fbl.arf import MAX_FEEDBACK_TYPE
from fbl.headers import MAX_ENCODED_WORDS
from fbl.parse import MAX_HEADER_CHARS, MAX_MIME_DEPTH, MAX_MIME_PARTS, MAX_RECIPIENTS, parse

from .messages import ENCLOSED, arf, crlf, dsn, plain

FIELDS = (
    "Feedback-Type: {}\nUser-Agent: ISP-FBL/1.0\nVersion: 1\nOriginal-Rcpt-To: alice@example.com\n"
)


# --- Feedback-Type: one token (RFC 5965 section 3.1) ------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "abuse " + "x" * 300,
        "abuse;" + "junk " * 60,
        "(the spam button) Abuse (reported by a user)",
        "abuse\t" + "\u00e9" * 300,
    ],
)
def test_the_feedback_type_is_the_token_without_comments_or_trailing_junk(written):
    report = parse(arf(FIELDS.format(written)))
    assert report.kind == "arf"
    assert report.feedback_type == "abuse"
    assert report.recipients[0].address == "alice@example.com"


def test_junk_after_the_feedback_type_is_named_in_problems():
    report = parse(arf(FIELDS.format("abuse " + "x" * 300)))
    assert any("text after the Feedback-Type 'abuse' ignored" in p for p in report.problems)


def test_an_over_long_feedback_type_is_cut_to_the_limit_and_said_so():
    report = parse(arf(FIELDS.format("z" * 300)))
    assert report.feedback_type == "z" * MAX_FEEDBACK_TYPE
    assert f"Feedback-Type longer than {MAX_FEEDBACK_TYPE} characters: cut" in report.problems


# --- MIME nesting --------------------------------------------------------------------------------


def nested_multipart(levels: int) -> str:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(levels)
    )
    closing = "".join(f"--b{i}--\n" for i in reversed(range(levels)))
    return f"{opening}Content-Type: text/plain\n\nhello\n{closing}"


def nested_rfc822(levels: int) -> str:
    return "Content-Type: message/rfc822\n\n" * levels + "Subject: the innermost\n\nhello\n"


@pytest.mark.parametrize("nested", [nested_multipart, nested_rfc822])
def test_mime_nested_thousands_of_levels_deep_is_read_to_the_limit(nested):
    raw = crlf("From: someone@example.com\nSubject: deep\nMIME-Version: 1.0\n" + nested(5000))
    report = parse(raw)
    assert report.kind == "unknown"
    assert report.subject == "deep"
    assert any(f"nested more than {MAX_MIME_DEPTH} levels deep" in p for p in report.problems)
    assert report.raw == raw


def test_a_complaint_whose_original_is_nested_deeply_is_still_a_complaint():
    deep_original = ENCLOSED.replace("\nHello\n", "") + "MIME-Version: 1.0\n" + nested_rfc822(3000)
    report = parse(arf(FIELDS.format("abuse"), enclosed=deep_original))
    assert report.kind == "arf" and report.feedback_type == "abuse"
    assert [r.address for r in report.recipients] == ["alice@example.com"]
    assert report.original_message_id == "<offer-1@sender.example>"
    assert any(f"nested more than {MAX_MIME_DEPTH} levels deep" in p for p in report.problems)


def test_nesting_within_the_limit_is_read_as_structure():
    report = parse(crlf("From: a@example.com\nSubject: s\nMIME-Version: 1.0\n" + nested_rfc822(10)))
    assert not any("nested" in p for p in report.problems)


# --- headers -------------------------------------------------------------------------------------


def test_a_subject_of_too_many_encoded_words_is_decoded_up_to_the_limit():
    words = MAX_ENCODED_WORDS + 500
    raw = plain("From: a@example.com\nSubject: " + " ".join(["=?utf-8?q?caf=C3=A9?="] * words))
    report = parse(raw)
    assert report.subject == "café" * MAX_ENCODED_WORDS
    assert any(
        f"more than {MAX_ENCODED_WORDS} RFC 2047 encoded words" in p for p in report.problems
    )
    assert report.raw == raw


def test_an_over_long_header_line_is_cut_and_the_report_still_read():
    raw = dsn("Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.1\n").replace(
        b"To: news@sender.example", b"To: " + b"news@sender.example, " * 100_000
    )
    report = parse(raw)
    assert [r.address for r in report.recipients] == ["gone@example.com"]
    assert f"over-long To header cut to {MAX_HEADER_CHARS} characters" in report.problems


# --- counts --------------------------------------------------------------------------------------


def test_a_bounce_naming_tens_of_thousands_of_recipients_is_read_for_the_first_ones():
    blocks = [
        f"Final-Recipient: rfc822; user{i}@example.com\nAction: failed\nStatus: 5.1.1\n"
        for i in range(20_000)
    ]
    report = parse(dsn(*blocks))
    assert report.kind == "dsn"
    assert len(report.recipients) == MAX_RECIPIENTS
    assert report.recipients[0].address == "user0@example.com"
    assert all(r.hard for r in report.recipients)
    assert (
        f"more than {MAX_RECIPIENTS} recipients: only the first {MAX_RECIPIENTS} read"
        in report.problems
    )


def test_a_complaint_naming_tens_of_thousands_of_recipients_is_read_for_the_first_ones():
    fields = FIELDS.format("abuse") + "".join(
        f"Original-Rcpt-To: user{i}@example.com\n" for i in range(20_000)
    )
    report = parse(arf(fields))
    assert len(report.recipients) == MAX_RECIPIENTS
    assert report.recipients[0].address == "alice@example.com"


def test_a_message_of_a_huge_number_of_parts_is_read_on_its_first_parts():
    parts = "".join("--B\nContent-Type: text/plain\n\nnothing here\n" for _ in range(20_000))
    raw = crlf(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nSubject: Undelivered\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n<gone@example.com>: 550 5.1.1 user unknown\n"
        f"{parts}--B--\n"
    )
    report = parse(raw)
    assert report.kind == "dsn"
    assert [r.address for r in report.recipients] == ["gone@example.com"]
    assert (
        f"more than {MAX_MIME_PARTS} MIME parts: only the first {MAX_MIME_PARTS} read"
        in report.problems
    )


def test_a_limit_met_in_many_parts_is_named_once():
    parts = "".join(
        f"--B\nContent-Type: text/plain\nX-Long: {'y' * (MAX_HEADER_CHARS + 1)}\n\nz\n"
        for _ in range(5)
    )
    raw = crlf(
        f'From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\n{parts}--B--\n'
    )
    report = parse(raw)
    assert (
        report.problems.count(f"over-long X-Long header cut to {MAX_HEADER_CHARS} characters") == 1
    )
