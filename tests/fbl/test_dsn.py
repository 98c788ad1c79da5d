"""Bounces: RFC 3464 DSNs, DSNs that break the RFC, and bounces with no DSN part at all."""

from __future__ import annotations

import json

import pytest

from fbl.parse import parse
from fbl.recipients import RecoveryHooks

from .messages import ENCLOSED, crlf, dsn, plain

UNKNOWN_USER = """\
Final-Recipient: rfc822; alice@example.com
Original-Recipient: rfc822;alias@example.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown
"""
MAILBOX_FULL = """\
Final-Recipient: rfc822; bob@example.org
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full
"""


def test_standard_dsn_one_entry_per_recipient():
    report = parse(
        dsn(
            UNKNOWN_USER,
            MAILBOX_FULL,
            per_message="Reporting-MTA: dns; mx.sender.example\n"
            "Arrival-Date: Thu, 29 Apr 2021 10:00:05 +0000\n",
        )
    )
    assert report.kind == "dsn"
    assert report.reporting_mta == "mx.sender.example"
    assert report.arrival_date.isoformat() == "2021-04-29T10:00:05+00:00"
    assert report.original_message_id == "<offer-1@sender.example>"
    alice, bob = report.recipients
    assert alice.address == "alice@example.com"
    assert alice.original_address == "alias@example.com"
    assert (alice.status, alice.action, alice.hard, alice.category) == (
        "5.1.1",
        "failed",
        True,
        "permanent",
    )
    assert alice.remote_mta == "mx.example.com"
    assert alice.diagnostic.startswith("550 5.1.1")
    assert alice.found_by == "dsn_final_recipient"
    assert (bob.status, bob.action, bob.hard, bob.category) == (
        "4.2.2",
        "delayed",
        False,
        "transient",
    )
    assert report.problems == ()


def test_original_recipient_alone_is_used():
    report = parse(
        dsn("Original-Recipient: rfc822; carol@example.net\nAction: failed\nStatus: 5.1.1\n")
    )
    assert [(r.address, r.found_by) for r in report.recipients] == [
        ("carol@example.net", "dsn_original_recipient")
    ]


@pytest.mark.parametrize(
    ("status_field", "diagnostic", "status"),
    [
        # A generic Status gives way to the receiver's specific code (RFC 3464 2.3.6).
        ("5.0.0", "smtp; 550 5.1.1 <a@example.com>... User Unknown", "5.1.1"),
        # Same class: the receiver's reason beats the relay's "delivery time expired".
        ("4.4.7", "smtp; 450 4.7.1 Access denied. IP name lookup failed", "4.7.1"),
        # The innermost reply a relay quotes is the receiver's.
        ("4.4.7", "smtp; 554 4.4.7 Message expired <421 4.4.2 Connection timed out>", "4.4.2"),
        # A different class: the reporting MTA's final verdict stands.
        ("5.4.7", "smtp; 421 4.4.2 Connection timed out", "5.4.7"),
        # No Status: inferred from the words under the reply code's class.
        (None, "smtp; 550 Requested action not taken: no such user here", "5.1.1"),
        (None, "smtp; 552 Mailbox is full", "5.2.2"),
    ],
)
def test_status_comes_from_the_field_and_the_diagnostic(status_field, diagnostic, status):
    block = "Final-Recipient: rfc822; a@example.com\nAction: failed\n"
    if status_field:
        block += f"Status: {status_field}\n"
    block += f"Diagnostic-Code: {diagnostic}\n"
    (recipient,) = parse(dsn(block)).recipients
    assert recipient.status == status


def test_field_order_within_a_block_does_not_matter():
    block = (
        "Diagnostic-Code: smtp; 550 5.1.1 RCP-P2 Refused due to recipient preferences\n"
        "Status: 5.1.1\nFinal-Recipient: rfc822; dave@example.com\nAction: failed\n"
    )
    (recipient,) = parse(dsn(block)).recipients
    assert recipient.address == "dave@example.com"
    # "5.1.1" with the recipient's own preferences as the reason is a block, not a dead address.
    assert (recipient.category, recipient.hard) == ("blocked", False)


def test_recipients_run_together_without_blank_lines_are_split():
    run_together = UNKNOWN_USER + MAILBOX_FULL
    report = parse(dsn(run_together))
    assert [r.address for r in report.recipients] == ["alice@example.com", "bob@example.org"]


def test_status_comment_explains_when_there_is_no_diagnostic():
    block = (
        "Final-Recipient: rfc822; erin@example.net\nAction: delayed\n"
        "Status: 4.0.0 (example.net: host name lookup failure)\n"
    )
    (recipient,) = parse(dsn(block)).recipients
    assert recipient.diagnostic == "example.net: host name lookup failure"
    assert recipient.category == "transient"


def test_delivery_status_fields_pasted_into_a_text_part():
    raw = plain(
        "From: MAILER-DAEMON@mx.example.net\nSubject: Delivery Status Notification (Failure)",
        "An error occurred while trying to deliver the mail.\n\n"
        "Reporting-MTA: dns; mx.example.net\n"
        "Final-Recipient: rfc822; frank@example.com\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User Unknown\n",
    )
    report = parse(raw)
    assert [(r.address, r.status, r.hard) for r in report.recipients] == [
        ("frank@example.com", "5.1.1", True)
    ]
    assert report.reporting_mta == "mx.example.net"
    assert any("text part" in p for p in report.problems)


def test_delivery_status_part_without_recipients_falls_back_and_says_so():
    report = parse(dsn())  # only the per-message block
    assert [(r.address, r.found_by) for r in report.recipients] == [
        ("alice@example.com", "enclosed_to")
    ]
    assert any("names no recipient" in p for p in report.problems)
    assert any("taken from enclosed_to" in p for p in report.problems)


QMAIL = """\
Hi. This is the qmail-send program at mx.sender.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<grace@example.com>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <grace@example.com>... User unknown
Giving up on 192.0.2.1.

<heidi@example.org>:
192.0.2.2 does not like recipient.
Remote host said: 552 Mailbox quota exceeded

--- Below this line is a copy of the message.

Return-Path: <news@sender.example>
From: news@sender.example
To: grace@example.com, heidi@example.org
Subject: Offers
"""


def test_non_standard_bounce_is_read_from_its_text():
    raw = plain("From: MAILER-DAEMON@mx.sender.example\nSubject: failure notice", QMAIL)
    report = parse(raw)
    assert report.kind == "dsn"
    grace, heidi = report.recipients
    assert (grace.address, grace.status, grace.hard, grace.found_by) == (
        "grace@example.com",
        "5.1.1",
        True,
        "bounce_text",
    )
    assert "User unknown" in grace.diagnostic
    # "552 ... quota exceeded": the class of the reply, the subject of the words.
    assert (heidi.address, heidi.status, heidi.category, heidi.hard) == (
        "heidi@example.org",
        "5.2.2",
        "transient",
        False,
    )
    assert report.original_mail_from == "<news@sender.example>"
    assert any("bounce text" in p for p in report.problems)


def test_flufl_bounce_finds_what_the_text_scan_cannot():
    # IMail (SMTP32) writes "Delivery failed N attempts: address", words that say nothing of
    # the recipient to the text scan; flufl.bounce knows the format by its X-Mailer.
    raw = plain(
        'From: "Postmaster" <postmaster@example.org>\nSubject: Undeliverable Mail\n'
        "X-Mailer: <SMTP32 v990729>",
        "Delivery failed 3 attempts: ivan@example.com\n\nOriginal message follows.\n\n"
        "From: news@sender.example\nTo: ivan@example.com\n",
    )
    (recipient,) = parse(raw).recipients
    assert (recipient.address, recipient.found_by) == ("ivan@example.com", "flufl_bounce")


def test_bounce_naming_no_recipient_uses_the_returned_original():
    raw = plain(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.sender.example>\n"
        "Subject: Returned mail: Cannot send message for 4 days",
        "   ----- Transcript of session follows -----\n"
        "421 example.com (smtp)... Deferred: Connection timed out\n"
        "   ----- Unsent message follows -----\n"
        "From: news@sender.example\nTo: judy@example.com\nSubject: Offers\n\nHi\n",
    )
    (recipient,) = parse(raw).recipients
    assert (recipient.address, recipient.found_by) == ("judy@example.com", "enclosed_to")
    assert recipient.status.startswith("4.") and not recipient.hard


def test_rejected_at_mail_from_is_not_about_the_recipient():
    raw = plain(
        "From: Mail Delivery System <Mailer-Daemon@mx.sender.example>\n"
        "Subject: Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\n"
        "  ken@example.edu\n"
        "    host mail.example.edu [192.0.2.9] SMTP error from remote mail server after MAIL "
        "FROM:<news@sender.example>: 553 5.1.2 Domain does not exist\n",
    )
    (recipient,) = parse(raw).recipients
    assert recipient.address == "ken@example.edu"
    assert (recipient.category, recipient.hard) == ("blocked", False)


def _transcript_bounce(reply_after_data: str, then: str) -> bytes:
    return plain(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.sender.example>\n"
        "Subject: Returned mail: see transcript for details",
        "   ----- The following addresses had permanent fatal errors -----\n"
        "<leo@mobile.example>\n\n"
        "   ----- Transcript of session follows -----\n"
        "... while talking to mfsmax.docomo.ne.jp.:\n"
        ">>> DATA\n"
        f"<<< {reply_after_data}\n"
        f"{then}\n",
    )


def test_docomo_unknown_user_after_data_is_its_filter_not_a_dead_address():
    raw = _transcript_bounce("550 Unknown user leo@mobile.example", "554 5.0.0 Service unavailable")
    (recipient,) = parse(raw).recipients
    assert (recipient.category, recipient.hard) == ("blocked", False)


def test_pipelined_rcpt_refusal_is_still_a_dead_address():
    # With PIPELINING the 550 answers RCPT TO; "503 Need RCPT" answers the DATA.
    raw = _transcript_bounce(
        "550 5.1.1 <leo@mobile.example>... User unknown", "<<< 503 5.0.0 Need RCPT (recipient)"
    )
    (recipient,) = parse(raw).recipients
    assert (recipient.category, recipient.hard) == ("permanent", True)


def test_au_domain_filter_answer_is_policy():
    block = (
        "Final-Recipient: rfc822; mia@ezweb.ne.jp\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 : User unknown\n"
    )
    (recipient,) = parse(dsn(block)).recipients
    assert (recipient.category, recipient.hard) == ("blocked", False)


def test_forwarded_bounce_is_read_from_the_enclosure():
    inner = dsn(UNKNOWN_USER).decode()
    raw = crlf(
        "From: someone@sender.example\nTo: bounces@sender.example\nSubject: Fwd: bounce\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nsee attached\n"
        f"--F\nContent-Type: message/rfc822\n\n{inner}\n--F--\n"
    )
    report = parse(raw)
    assert report.kind == "dsn"
    assert [(r.address, r.hard) for r in report.recipients] == [("alice@example.com", True)]
    assert any("forwarded" in p for p in report.problems)


def test_redacted_bounce_recipient():
    block = "Final-Recipient: rfc822; xxxx@example.fr\nAction: failed\nStatus: 5.1.1\n"
    (recipient,) = parse(dsn(block)).recipients
    assert (recipient.address, recipient.original_address, recipient.redacted) == (
        None,
        "xxxx@example.fr",
        True,
    )


def test_our_token_names_the_recipient_of_a_forwarded_address():
    hooks = RecoveryHooks(read_token=lambda v: "alias@example.com" if "TOKEN-ALICE" in v else None)
    block = UNKNOWN_USER.replace("Original-Recipient: rfc822;alias@example.com\n", "")
    (recipient,) = parse(dsn(block), hooks=hooks).recipients
    assert (recipient.address, recipient.original_address, recipient.found_by) == (
        "alias@example.com",
        "alice@example.com",
        "token",
    )
    assert recipient.hard


def _ses(notification: dict) -> bytes:
    return plain(
        "From: AWS Notifications <no-reply@sns.amazonaws.com>\nSubject: AWS Notification Message",
        json.dumps(notification) + "\n\n--\nIf you wish to stop receiving notifications...\n",
    )


MAIL = {"messageId": "0101-abc", "source": "news@sender.example", "destination": ["a@b.example"]}


def test_amazon_ses_bounce_notification():
    report = parse(
        _ses(
            {
                "notificationType": "Bounce",
                "bounce": {
                    "bounceType": "Permanent",
                    "reportingMTA": "dns; a1.amazonses.com",
                    "bouncedRecipients": [
                        {
                            "emailAddress": "nick@example.com",
                            "action": "failed",
                            "status": "5.1.1",
                            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                        }
                    ],
                },
                "mail": MAIL,
            }
        )
    )
    assert report.kind == "dsn"
    assert report.reporting_mta == "a1.amazonses.com"
    assert report.original_message_id == "0101-abc"
    assert [(r.address, r.status, r.hard, r.found_by) for r in report.recipients] == [
        ("nick@example.com", "5.1.1", True, "provider_field")
    ]


def test_amazon_ses_complaint_notification_is_a_complaint():
    report = parse(
        _ses(
            {
                "notificationType": "Complaint",
                "complaint": {
                    "complaintFeedbackType": "abuse",
                    "complainedRecipients": [{"emailAddress": "olga@example.com"}],
                },
                "mail": MAIL,
            }
        )
    )
    assert (report.kind, report.feedback_type) == ("arf", "abuse")
    assert [r.address for r in report.recipients] == ["olga@example.com"]


def test_text_that_only_mentions_an_address_is_not_a_bounce():
    raw = plain(
        "From: Peggy <peggy@example.com>\nSubject: lunch?", "Ask <quinn@example.com> about it.\n"
    )
    report = parse(raw)
    assert report.kind == "unknown"
    assert report.recipients == ()


def test_enclosed_original_is_not_mistaken_for_the_bounce():
    # A returned original that itself quotes a recipient line must not add recipients.
    enclosed = ENCLOSED.replace("Hello", "<mallory@example.com>: 550 5.1.1 User unknown")
    report = parse(dsn(UNKNOWN_USER, enclosed=enclosed))
    assert [r.address for r in report.recipients] == ["alice@example.com"]
