"""Complaint reports (RFC 5965 / 6650 / 6591) and the ways real loops break them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from fbl.parse import parse

from .messages import ENCLOSED, arf, crlf

FIELDS = """\
Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <news@sender.example>
Original-Rcpt-To: <alice@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.isp.example
Source-IP: 192.0.2.1
Reported-Domain: sender.example
Reported-URI: http://sender.example/offer
Authentication-Results: mail.isp.example; spf=pass smtp.mailfrom=sender.example
Incidents: 3
Original-Envelope-Id: ENV-42
"""


def test_standard_report_fields():
    report = parse(arf(FIELDS))
    assert report.kind == "arf"
    assert report.feedback_type == "abuse"
    assert report.user_agent == "SomeGenerator/1.0"
    assert report.version == "1"
    assert report.original_mail_from == "<news@sender.example>"
    assert report.original_rcpt_to == ("<alice@example.com>",)
    assert report.arrival_date is not None and report.arrival_date.utcoffset() is not None
    assert report.arrival_date.astimezone(UTC) == datetime(2005, 3, 8, 18, 0, tzinfo=UTC)
    assert report.reporting_mta == "mail.isp.example"
    assert report.source_ip == "192.0.2.1"
    assert report.reported_domains == ("sender.example",)
    assert report.reported_uris == ("http://sender.example/offer",)
    assert report.authentication_results == (
        "mail.isp.example; spf=pass smtp.mailfrom=sender.example",
    )
    assert report.incidents == 3
    assert report.original_envelope_id == "ENV-42"
    assert report.original_message_id == "<offer-1@sender.example>"
    assert report.original_headers.startswith("Return-Path: <news@sender.example>")
    assert [(r.address, r.found_by) for r in report.recipients] == [
        ("alice@example.com", "original_rcpt_to")
    ]
    assert report.problems == ()


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("Abuse", "abuse"),
        ("FRAUD", "fraud"),
        ("opt-out", "opt-out"),
        ("Not-Spam", "not-spam"),
        ("virus", "virus"),
        ("x-weird-type", "x-weird-type"),
    ],
)
def test_feedback_type_is_lower_cased_and_non_standard_types_are_kept(written, normalised):
    report = parse(arf(FIELDS.replace("Feedback-Type: abuse", f"Feedback-Type: {written}")))
    assert report.feedback_type == normalised


def test_repeated_original_rcpt_to_gives_each_recipient():
    fields = FIELDS.replace(
        "Original-Rcpt-To: <alice@example.com>\n",
        "Original-Rcpt-To: alice@example.com\nOriginal-Rcpt-To: bob@example.org\n",
    )
    report = parse(arf(fields))
    assert [r.address for r in report.recipients] == ["alice@example.com", "bob@example.org"]


def test_feedback_part_labelled_text_plain_is_read_and_flagged():
    report = parse(arf(FIELDS, feedback_content_type="text/plain"))
    assert report.kind == "arf"
    assert report.feedback_type == "abuse"
    assert report.source_ip == "192.0.2.1"
    assert any("text/plain" in p for p in report.problems)


def test_base64_feedback_part_is_decoded():
    report = parse(arf(FIELDS, feedback_content_type="text/plain", feedback_encoding="base64"))
    assert report.feedback_type == "abuse"
    assert report.incidents == 3


def test_base64_encoded_enclosed_message_is_decoded():
    encoded = base64.encodebytes(ENCLOSED.encode()).decode()
    raw = arf(FIELDS.replace("Original-Rcpt-To: <alice@example.com>\n", ""), enclosed=encoded)
    # RFC 2046 5.2.1 forbids encoding a message/rfc822 part; loops do it anyway.
    raw = raw.replace(
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n",
    )
    report = parse(raw)
    assert report.original_message_id == "<offer-1@sender.example>"
    assert [(r.address, r.found_by) for r in report.recipients] == [
        ("alice@example.com", "enclosed_to")
    ]


def test_missing_enclosed_message_is_a_problem_not_a_failure():
    report = parse(arf(FIELDS, enclosed=None))
    assert report.kind == "arf"
    assert report.recipients[0].address == "alice@example.com"
    assert any("no enclosed original" in p for p in report.problems)


def test_text_rfc822_headers_is_read_as_the_original():
    report = parse(
        arf(
            FIELDS.replace("Original-Rcpt-To: <alice@example.com>\n", ""),
            enclosed_type="text/rfc822-headers",
        )
    )
    assert report.original_message_id == "<offer-1@sender.example>"
    assert report.recipients[0].found_by == "enclosed_to"


def test_missing_feedback_type_and_version_are_named():
    fields = FIELDS.replace("Feedback-Type: abuse\n", "").replace("Version: 1\n", "")
    report = parse(arf(fields))
    assert report.kind == "arf"
    assert report.feedback_type is None
    assert any("Feedback-Type" in p for p in report.problems)
    assert any("Version" in p for p in report.problems)


def test_unreadable_arrival_date_and_incidents_are_named():
    fields = FIELDS.replace("Thu, 8 Mar 2005 14:00:00 EDT", "sometime").replace(
        "Incidents: 3", "Incidents: many"
    )
    report = parse(arf(fields))
    assert report.arrival_date is None and report.incidents is None
    assert any("Arrival-Date" in p for p in report.problems)
    assert any("Incidents" in p for p in report.problems)


def test_auth_failure_fields_rfc_6591():
    fields = """\
Feedback-Type: auth-failure
User-Agent: OpenDMARC/1.3
Version: 1
Auth-Failure: dkim
Delivery-Result: reject
DKIM-Domain: sender.example
DKIM-Identity: @sender.example
DKIM-Selector: s2021
DKIM-Canonicalized-Header: ZnJvbTo=
SPF-DNS: txt : sender.example : "v=spf1 -all"
Identity-Alignment: dkim
Source-IP: 192.0.2.7
"""
    report = parse(arf(fields))
    assert report.feedback_type == "auth-failure"
    failure = report.auth_failure
    assert failure is not None
    assert (failure.auth_failure, failure.delivery_result) == ("dkim", "reject")
    assert (failure.dkim_domain, failure.dkim_identity, failure.dkim_selector) == (
        "sender.example",
        "@sender.example",
        "s2021",
    )
    assert failure.dkim_canonicalized_header == "ZnJvbTo="
    assert failure.spf_dns == ('txt : sender.example : "v=spf1 -all"',)
    assert failure.identity_alignment == "dkim"


JMRP = """\
From: staff@hotmail.com
To: abuse-report@sender.example
Subject: complaint about message from 192.0.2.5
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: message/rfc822
Content-Disposition: inline

X-HmXmrOriginalRecipient: carol@outlook.example
X-Reporter-IP: 192.0.2.5
From: News <news@sender.example>
To: carol@outlook.example
Subject: Offers
Message-ID: <jmrp-1@sender.example>

Hello
--B--
"""


def test_outlook_jmrp_is_recognised_by_its_provider_field():
    report = parse(crlf(JMRP))
    assert report.kind == "arf"
    assert report.feedback_type == "abuse"
    assert report.source_ip == "192.0.2.5"
    assert report.original_message_id == "<jmrp-1@sender.example>"
    assert [(r.address, r.found_by) for r in report.recipients] == [
        ("carol@outlook.example", "provider_field")
    ]
    assert any("JMRP" in p for p in report.problems)


@pytest.mark.parametrize(
    "redacted",
    [
        "redacted@example.net",
        "xxxxx@example.net",
        "[REDACTED]",
        "redacted",
        "XXXX@xxxx.example",
        "5f4dcc3b5aa765d61d8327deb882cf99@example.net",
        "hashed@example.net",
    ],
)
def test_redacted_recipients_are_recognised_and_never_returned_as_the_address(redacted):
    fields = FIELDS.replace(
        "Original-Rcpt-To: <alice@example.com>\n", f"Original-Rcpt-To: {redacted}\n"
    )
    enclosed = ENCLOSED.replace("To: Alice <alice@example.com>", f"To: {redacted}")
    report = parse(arf(fields, enclosed=enclosed))
    assert len(report.recipients) == 1
    only = report.recipients[0]
    assert only.redacted is True
    assert only.address is None
    assert only.original_address == redacted
    assert any("redacted" in p for p in report.problems)


def test_a_redacted_field_falls_through_to_a_real_address_later_in_the_order():
    fields = FIELDS.replace(
        "Original-Rcpt-To: <alice@example.com>\n", "Original-Rcpt-To: redacted@example.com\n"
    )
    report = parse(arf(fields))
    assert [(r.address, r.found_by, r.redacted) for r in report.recipients] == [
        ("alice@example.com", "enclosed_to", False)
    ]


def test_undisclosed_recipients_give_no_recipient():
    fields = FIELDS.replace("Original-Rcpt-To: <alice@example.com>\n", "")
    enclosed = ENCLOSED.replace("To: Alice <alice@example.com>", "To: undisclosed-recipients:;")
    report = parse(arf(fields, enclosed=enclosed))
    assert report.recipients == ()
    assert "no recipient address found" in report.problems


def test_report_without_report_type_but_with_feedback_part_is_flagged():
    report = parse(arf(FIELDS, report_type="x-unknown"))
    assert report.kind == "arf"
    assert any("report-type=feedback-report" in p for p in report.problems)
