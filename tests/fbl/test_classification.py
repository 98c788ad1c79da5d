"""The bounce classification table: what a status and its words mean for the recipient."""

from __future__ import annotations

import pytest

from fbl.classification import choose_status, classify, infer_status, is_hard, status_in


@pytest.mark.parametrize(
    ("status", "diagnostic", "category"),
    [
        # The dead-address class (DESIGN.md: permanent only for these).
        ("5.1.1", "550 5.1.1 User unknown", "permanent"),
        ("5.1.2", "550 5.1.2 Host unknown", "permanent"),
        ("5.1.3", "501 5.1.3 Bad recipient address syntax", "permanent"),
        ("5.1.6", "550 5.1.6 Mailbox has moved", "permanent"),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "permanent"),
        ("5.2.1", "550 5.2.1 Mailbox disabled", "permanent"),
        ("5.4.4", "Host or domain name not found", "permanent"),
        # Mailbox full: RFC 3463 3.3 calls it a persistent transient failure.
        ("5.2.2", "552 5.2.2 Mailbox full", "transient"),
        # Every 4.x.x is transient.
        ("4.1.1", "450 4.1.1 Recipient temporarily unavailable", "transient"),
        ("4.4.7", "Message expired", "transient"),
        # Policy and spam blocks are reputation signals, never suppressions.
        ("5.7.1", "554 5.7.1 Message rejected as spam", "blocked"),
        ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted due to DMARC", "blocked"),
        ("5.7.25", "550 5.7.25 The IP address has no PTR record", "blocked"),
        ("5.1.1", "550 5.1.1 Refused due to recipient preferences", "blocked"),
        ("5.0.0", "550 Your IP is listed at zen.spamhaus.org", "blocked"),
        ("4.7.0", "421 4.7.0 Blocked for spam, try later", "blocked"),
        ("5.1.8", "501 5.1.8 Sender address rejected", "blocked"),
        ("5.6.1", "550 5.6.1 Media not supported", "blocked"),
        # Generic codes: the words decide.
        ("5.7.1", "553 Invalid recipient alice@example.com", "permanent"),
        ("5.0.0", "550 No such user here", "permanent"),
        ("5.5.0", "554 Domain does not exist", "permanent"),
        ("5.0.0", "550 Mailbox is full", "transient"),
        (
            "5.2.1",
            "550-5.2.1 The user you are trying to contact is receiving mail at a rate "
            "that prevents additional messages from being delivered",
            "transient",
        ),
        ("5.4.4", "Name service error: Malformed or unexpected name server reply", "transient"),
        # RFC 7505: a recipient domain with a null MX is dead; a sender's is our problem.
        ("5.7.27", "550 Host does not accept mail", "permanent"),
        ("5.7.27", "550 5.7.27 Sender address has null MX", "blocked"),
        # Nothing about the recipient.
        ("5.3.4", "552 5.3.4 Message too big", "unknown"),
        ("5.0.0", "554 A problem occurred", "unknown"),
        ("2.0.0", "250 OK", "unknown"),
        (None, None, "unknown"),
    ],
)
def test_classification_table(status, diagnostic, category):
    assert classify(status, diagnostic) == category


def test_mailbox_names_do_not_speak_for_the_failure():
    assert classify("5.0.0", "550 <blocked@example.com>: no such user") == "permanent"
    assert classify("5.0.0", "550 <userunknown@example.com>: relay denied") == "blocked"


def test_refusal_of_mail_from_or_connection_is_not_about_the_recipient():
    assert classify("5.1.2", "Domain does not exist", phase="MAIL") == "blocked"
    assert classify("5.0.0", "554 go away", phase="CONNECT") == "blocked"
    assert classify("5.1.1", "User unknown", phase="RCPT") == "permanent"


def test_unknown_user_after_data_is_a_filter_only_for_hosts_known_to_do_that():
    assert (
        classify("5.0.0", "550 Unknown user", phase="DATA", remote_host="mfsmax.docomo.ne.jp")
        == "blocked"
    )
    # Yahoo answers unknown users after DATA too: the words stand elsewhere.
    assert (
        classify(
            "5.0.0",
            "554 delivery error: dd This user doesn't have a yahoo.com account",
            phase="DATA",
            remote_host="mta5.am0.yahoodns.net",
        )
        == "permanent"
    )


@pytest.mark.parametrize(
    ("category", "status", "action", "hard"),
    [
        ("permanent", "5.1.1", "failed", True),
        ("permanent", "5.1.1", None, True),
        ("permanent", "5.1.1", "delayed", False),
        ("permanent", "4.1.1", "failed", False),
        ("transient", "5.2.2", "failed", False),
        ("blocked", "5.7.1", "failed", False),
    ],
)
def test_hard_means_permanent_and_failed(category, status, action, hard):
    assert is_hard(category, status, action) is hard


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 5.1.1 <a@example.com>... User unknown", "5.1.1"),
        ("550-5.7.26 Unauthenticated", "5.7.26"),
        ("550 #5.1.0 Address rejected.", "5.1.0"),
        ("5.1.0 - Unknown address error 550-'5.2.2 <a@example.com>... Mailbox Full'", "5.2.2"),
        ("550 5.4.312 Message expired", "5.4.312"),
        ("version 1.2.3 of something", None),
        ("no code here", None),
    ],
)
def test_status_in_text(text, status):
    assert status_in(text) == status


@pytest.mark.parametrize(
    ("text", "default_class", "status"),
    [
        ("550 Requested action not taken: no such user here", None, "5.1.1"),
        ("452 Mailbox full", None, "4.2.2"),
        ("User unknown", "5", "5.1.1"),
        ("retry timeout exceeded", "5", "4.4.7"),
        ("Host or domain name not found", "5", "5.1.2"),
        ("something went wrong", "5", "5.0.0"),
        ("something went wrong", None, None),
    ],
)
def test_infer_status(text, default_class, status):
    assert infer_status(text, default_class=default_class) == status


def test_choose_status_keeps_a_status_field_of_another_class():
    assert choose_status("5.4.7 (delivery expired)", "421 4.4.2 timed out") == "5.4.7"
    assert choose_status("4.4.7", "450 4.7.1 Access denied") == "4.7.1"
    assert choose_status(None, "550 Unknown user") == "5.1.1"
