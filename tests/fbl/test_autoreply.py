"""RFC 3834 auto-replies: recognised, reported as kind "autoreply", never a bounce or opt-out."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import compat32, default

import pytest

from fbl.autoreply import is_auto_reply
from fbl.parse import parse

from .messages import plain

PERSON = "From: Rupert <rupert@example.com>\nTo: news@sender.example\nIn-Reply-To: <offer-1@x>"


def message(headers: str, *, policy=compat32) -> Message:
    return email.message_from_bytes(plain(headers), policy=policy)


@pytest.mark.parametrize(
    "marker",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-notified; owner-email=x@example.com",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: auto_reply",
        "X-Apple-Action: VACATION",
    ],
)
def test_headers_mark_an_auto_reply(marker):
    assert is_auto_reply(message(f"{PERSON}\nSubject: Re: Offers\n{marker}"))


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Offers",
        "Automatic reply: Offers",
        "Auto reply: Nyaan",
        "AutoReply",
        "Abwesenheitsnotiz: Angebote",
        "Réponse automatique : Offres",
        "On vacation until May 5",
        "=?UTF-8?Q?Abwesenheitsnotiz=3A_Angebote?=",
    ],
)
def test_vacation_subjects_mark_an_auto_reply(subject):
    assert is_auto_reply(message(f"{PERSON}\nSubject: {subject}"))


@pytest.mark.parametrize(
    "headers",
    [
        f"{PERSON}\nSubject: Re: Offers",
        f"{PERSON}\nSubject: Re: Offers\nAuto-Submitted: no",
        f"{PERSON}\nSubject: Re: Offers\nPrecedence: bulk",
    ],
)
def test_a_person_writing_is_not_an_auto_reply(headers):
    assert not is_auto_reply(message(headers))


def test_works_with_either_policy_and_never_raises():
    assert is_auto_reply(message(f"{PERSON}\nAuto-Submitted: auto-replied", policy=default))

    class Broken(Message):
        def get(self, *args, **kwargs):
            raise ValueError("malformed header")

    assert is_auto_reply(Broken()) is False


def test_parse_reports_an_auto_reply_with_its_sender_as_the_recipient():
    report = parse(plain(f"{PERSON}\nSubject: Out of Office\nAuto-Submitted: auto-replied"))
    assert report.kind == "autoreply"
    assert [(r.address, r.found_by, r.hard) for r in report.recipients] == [
        ("rupert@example.com", "auto_reply_from", False)
    ]
    assert report.original_message_id == "<offer-1@x>"
    assert report.feedback_type is None


def test_a_bounce_saying_auto_submitted_is_still_a_bounce():
    raw = plain(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        "Subject: Mail delivery failed: returning message to sender\n"
        "Auto-Submitted: auto-replied",
        "  sam@example.com\n    host mx.example.com [192.0.2.1]: 550 5.1.1 User unknown\n",
    )
    report = parse(raw)
    assert report.kind == "dsn"
    assert [r.address for r in report.recipients] == ["sam@example.com"]


def test_an_auto_reply_quoting_a_bounce_subject_is_an_auto_reply():
    raw = plain(
        f"{PERSON}\nSubject: Automatic reply: Undeliverable: Offers\nAuto-Submitted: auto-replied"
    )
    assert parse(raw).kind == "autoreply"
