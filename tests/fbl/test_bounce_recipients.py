"""Who a bounce is about, read the way each MTA words it: the samples in tests/fbl/samples/
(their README.md says where each comes from) and small messages built here.

Each rule tested is a class of real bounces, not one message: the failed address named only in
the human-readable text (in the MTA's own language), every address of a listing, an address
without a domain, and addresses quoted the way the text around them quotes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from fbl.parse import parse
from fbl.report import to_json

from .messages import dsn, plain

SAMPLES = Path(__file__).resolve().parent / "samples"
EXPECTED: dict[str, list[str]] = json.loads((SAMPLES / "expected.json").read_text())


def addresses(raw: bytes) -> list[str]:
    return [r.address for r in parse(raw).recipients]


def test_every_sample_has_its_expectation():
    assert sorted(p.name for p in SAMPLES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_names_every_failed_recipient(name):
    report = parse((SAMPLES / name).read_bytes())
    assert report.kind == "dsn"
    assert [r.address for r in report.recipients] == EXPECTED[name]


def test_hmailserver_reads_each_recipient_with_its_own_error():
    report = parse((SAMPLES / "hmailserver-no-mail-servers.eml").read_bytes())
    assert [(r.status, r.hard) for r in report.recipients] == [("5.1.2", True), ("5.1.1", True)]


def test_an_ndrs_administrator_section_gives_each_recipient_its_remote_code():
    report = parse((SAMPLES / "office365-admin-diagnostics.eml").read_bytes())
    assert [(r.status, r.hard) for r in report.recipients] == [
        ("5.1.10", True),
        ("5.2.2", False),
    ]


# --- an address without a domain -----------------------------------------------------------

DOMAINLESS = "Final-Recipient: rfc822; john\nAction: failed\nStatus: 5.1.1\n"


def _enclosed_to(to: str) -> str:
    return f"From: News <news@sender.example>\nTo: {to}\nSubject: Offers\n\nHello\n"


def test_address_without_domain_is_completed_from_the_originals_recipient():
    report = parse(dsn(DOMAINLESS, enclosed=_enclosed_to("John <john@corp.example>")))
    (only,) = report.recipients
    assert (only.address, only.original_address) == ("john@corp.example", "john")
    assert only.hard


def test_delivery_headers_of_the_original_complete_it_too():
    enclosed = "Delivered-To: john@corp.example\n" + _enclosed_to("undisclosed-recipients:;")
    assert addresses(dsn(DOMAINLESS, enclosed=enclosed)) == ["john@corp.example"]


@pytest.mark.parametrize(
    "to",
    [
        "Mary <mary@corp.example>",  # no address with that local part
        "john@corp.example, john@other.example",  # two: the original does not say which
    ],
)
def test_address_without_domain_is_never_given_an_invented_one(to):
    report = parse(dsn(DOMAINLESS, enclosed=_enclosed_to(to)))
    (only,) = report.recipients
    # Not the reporting MTA's host (mx.sender.example), not a guess: as the report says it.
    assert (only.address, only.original_address) == (None, "john")
    assert to_json(report)["recipients"][0]["address"] == "john"


def test_address_with_a_domain_is_kept_as_the_report_gives_it():
    block = "Final-Recipient: rfc822; john@mx.sender.example\nAction: failed\nStatus: 5.1.1\n"
    enclosed = _enclosed_to("john@corp.example")
    assert addresses(dsn(block, enclosed=enclosed)) == ["john@mx.sender.example"]


# --- reading addresses out of prose ----------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "The recipient 'ruth@gw.example' does not exist (550 5.1.1).",
        "550 5.1.1 `ruth@gw.example' unknown user",  # smail's and old Exim's quoting
        'Recipient "ruth@gw.example": 550 5.1.1 user unknown',
    ],
)
def test_quotes_around_an_address_are_not_part_of_it(line):
    raw = plain(
        "From: Mail Administrator <postmaster@gw.example>\nTo: news@sender.example\n"
        "Subject: Undeliverable mail",
        f"{line}\n",
    )
    assert addresses(raw) == ["ruth@gw.example"]


def test_an_apostrophe_inside_a_local_part_is_kept():
    raw = plain(
        "From: MAILER-DAEMON@mx.example\nTo: news@sender.example\nSubject: failure notice",
        "<o'brien@dest.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n",
    )
    assert addresses(raw) == ["o'brien@dest.example"]


def test_a_contact_address_on_its_own_line_is_not_a_recipient():
    # Synthetic, in the wording of list managers' and gateways' notices.
    raw = plain(
        "From: Mail Delivery Service <mailer-daemon@relay.example>\nTo: news@sender.example\n"
        "Subject: Delivery has failed",
        "Your message to <tom@dest.example> cannot be delivered:\n550 5.1.1 unknown alias\n\n"
        "For help, send mail with the word 'help' to the address\n\n  help@relay.example\n\n"
        "The postmaster of this site can be reached as\n  helpdesk@relay.example\n",
    )
    assert addresses(raw) == ["tom@dest.example"]


def test_parse_report_prints_the_recipient_a_bounce_names(tmp_path, capsys):
    path = tmp_path / "domainless.eml"
    path.write_bytes(dsn(DOMAINLESS, enclosed=None))
    call_command("parse_report", str(path), "--json")
    (line,) = capsys.readouterr().out.splitlines()
    assert [r["address"] for r in json.loads(line)["recipients"]] == ["john"]


@pytest.mark.parametrize(
    "body",
    [
        # IMail (SMTP32): the reason, then the address
        "Unknown user: ivan@dest.example\n",
        # MailFoundry: "Unable to deliver message to: <address>"
        "Unable to deliver message to: <ivan@dest.example>\nDelivery failed for the following "
        "reason:\nServer mx.dest.example failed with: 550 No such user here\n",
        # Zoho: the address, then its reason on the same line
        "A message that you sent could not be delivered.\n\n"
        "ivan@dest.example Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1\n",
        # a numbered list of failed addresses
        "The following recipients failed:\n\n1. ivan@dest.example\n2. olga@dest.example\n",
        # Yandex: "Local mailbox x is unavailable", after a sentence naming no recipient
        "Message was not accepted -- invalid mailbox. Local mailbox ivan@dest.example is "
        "unavailable: account is disabled\nQuestions: write to the postmaster at "
        "pm@relay.example today\n",
        # Bigfoot-style "Failed to deliver to '<x>'"
        "Failed to deliver to '<ivan@dest.example>'\nSMTP module(domain dest.example) "
        "reports: host mx.dest.example says: 550 5.1.1 user unknown\n"
        "Report abuse of this service to abuse.desk@relay.example today\n",
        # "The attached message was undeliverable to x"
        "The attached message was undeliverable to ivan@dest.example because the mailbox "
        "does not exist. See help@relay.example for more.\n",
        # Exim: a pipe delivery and the address that generated it
        "The following address(es) failed:\n\n  pipe to |/usr/bin/vacation\n"
        "    generated by ivan@dest.example\n",
    ],
)
def test_recipient_named_in_the_middle_of_a_line_of_prose(body):
    # Synthetic, in the wording of each MTA's own notice.
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\n"
        "To: news@sender.example\nSubject: Undeliverable Mail",
        body,
    )
    listed = ["ivan@dest.example", "olga@dest.example"] if "olga" in body else ["ivan@dest.example"]
    assert addresses(raw) == listed
    assert parse(raw).recipients[0].found_by == "bounce_text"


# --- several recipients ----------------------------------------------------------------------


def _block(address: str, status: str = "5.1.1") -> str:
    return f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: {status}\n"


def test_every_recipient_block_of_a_dsn_comes_back():
    raw = dsn(_block("a@dest.example"), _block("b@dest.example"), _block("c@dest.example", "4.2.2"))
    assert addresses(raw) == ["a@dest.example", "b@dest.example", "c@dest.example"]


def test_a_blocks_own_original_recipient_written_last_starts_no_new_recipient():
    blocks = [
        f"{_block(a)}Original-Recipient: rfc822; {a}\n" for a in ("a@x.example", "b@x.example")
    ]
    report = parse(dsn("".join(blocks)))
    assert [(r.address, r.status) for r in report.recipients] == [
        ("a@x.example", "5.1.1"),
        ("b@x.example", "5.1.1"),
    ]


def test_indented_dsn_fields_quoted_in_the_notice_are_read():
    fields = "\n".join(
        f"    {line}"
        for line in (_block("a@x.example") + "\n" + _block("b@x.example")).splitlines()
    )
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\nTo: news@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender",
        "Your message could not be delivered.\n\n"
        f"    Reporting-MTA: dns; mx.relay.example\n\n{fields}\n",
    )
    assert addresses(raw) == ["a@x.example", "b@x.example"]


@pytest.mark.parametrize(
    "line",
    [
        "The following addresses failed: a@x.example, <b@y.example>; c@z.example",
        "Delivery to the following recipients failed: a@x.example and b@y.example and c@z.example",
    ],
)
def test_every_address_of_a_list_on_one_line_comes_back(line):
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\nTo: news@sender.example\n"
        "Subject: Undeliverable Mail",
        f"{line}\n",
    )
    assert addresses(raw) == ["a@x.example", "b@y.example", "c@z.example"]


def test_a_reply_that_ends_in_a_contact_hint_still_names_its_recipient():
    # Postfix bounce(5) text; the remote reply is the receiving site's own words.
    raw = plain(
        "From: MAILER-DAEMON@mx.relay.example (Mail Delivery System)\nTo: news@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender",
        "This is the mail system at host mx.relay.example.\n\n"
        "<ivan@dest.example>: host mx.dest.example[192.0.2.9] said: 550 5.1.1 No such user, "
        "please contact postmaster@dest.example (in reply to RCPT TO command)\n",
    )
    assert addresses(raw) == ["ivan@dest.example"]


def test_html_notice_lines_and_raw_bracketed_addresses_are_read():
    # Synthetic, in Exchange's HTML layout, all on one line, the text part left empty.
    markup = (
        "<html><body><p>Delivery has failed to these recipients or groups:</p><p>"
        '<a href="mailto:a@x.example">a@x.example</a><br><b@x.example></p>'
        "<p>The email address you entered couldn&#39;t be found.</p></body></html>"
    )
    raw = (
        "From: postmaster@x.example\nTo: news@sender.example\nSubject: Undeliverable: Offers\n"
        'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="A"\n\n'
        "--A\nContent-Type: text/plain\n\n\n"
        f"--A\nContent-Type: text/html\n\n{markup}\n--A--\n"
    ).encode()
    assert addresses(raw) == ["a@x.example", "b@x.example"]


@pytest.mark.parametrize(
    "body",
    [
        # Sendmail's transcript alone (no "permanent fatal errors" list)
        "   ----- Transcript of session follows -----\n550 5.1.1 <ivan@dest.example>... User "
        "unknown\n\nThe postmaster is postmaster@relay.example alone.\n",
        # Exchange: a display name with the address, a signature address alone further down
        "Delivery has failed to these recipients or groups:\n\nIvan Petrov (ivan@dest.example)\n"
        "The email address you entered couldn't be found.\n\nQuestions? Write to "
        "help@relay.example today.\n",
        'Delivery has failed:\n\n"Ivan Petrov" <ivan@dest.example>\n550 5.1.1 not found\n',
    ],
)
def test_recipient_in_a_reply_line_or_beside_its_display_name(body):
    raw = plain(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example>\n"
        "To: news@sender.example\nSubject: Returned mail: see transcript for details",
        body,
    )
    assert addresses(raw) == ["ivan@dest.example"]


def test_text_bounce_naming_a_local_part_is_completed_from_the_returned_original():
    # qmail-send's bounce for a local delivery (QSBMF paragraphs).
    raw = plain(
        "From: MAILER-DAEMON@mail.corp.example\nTo: news@sender.example\nSubject: failure notice",
        "Hi. This is the qmail-send program at mail.corp.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<john>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Return-Path: <news@sender.example>\nFrom: news@sender.example\n"
        "To: Mary <mary@corp.example>, John <john@corp.example>\nSubject: Offers\n\nHello\n",
    )
    (only,) = parse(raw).recipients
    assert (only.address, only.original_address, only.hard) == ("john@corp.example", "john", True)


def test_text_bounce_naming_a_local_part_the_original_cannot_complete():
    # Sendmail's text bounce without a returned original.
    raw = plain(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.relay.example>\n"
        "To: news@sender.example\nSubject: Returned mail: see transcript for details",
        "   ----- The following addresses had permanent fatal errors -----\njohn\n"
        "    (reason: 550 5.1.1 User unknown)\n\n"
        "   ----- Transcript of session follows -----\njohn... User unknown\n",
    )
    report = parse(raw)
    (only,) = report.recipients
    assert (only.address, only.original_address) == (None, "john")  # no invented domain
    assert to_json(report)["recipients"][0]["address"] == "john"


def test_local_parts_alone_on_their_lines_are_read_whatever_the_line_ends():
    # Sendmail lists each failed address on its own line, as given: "<john>". `plain` writes
    # CRLF line ends, as mail has on the wire.
    raw = plain(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mail.corp.example>\n"
        "To: news@sender.example\nSubject: Returned mail: see transcript for details",
        "   ----- The following addresses had permanent fatal errors -----\n<john>\n"
        "    (reason: 550 5.1.1 <john>... User unknown)\n<mary>\n"
        "    (reason: 552 5.2.2 <mary>... Mailbox full)\n\n"
        "   ----- Original message follows -----\n"
        "From: news@sender.example\nTo: Mary <mary@corp.example>, John <john@corp.example>\n"
        "Subject: Offers\n\nHello\n",
    )
    assert b"\r\n" in raw
    found = [(r.address, r.original_address, r.hard) for r in parse(raw).recipients]
    assert found == [("john@corp.example", "john", True), ("mary@corp.example", "mary", False)]


def test_postfix_names_the_failed_address_before_the_alias_it_was_expanded_from():
    raw = plain(
        "From: MAILER-DAEMON@mx.relay.example\nTo: news@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender",
        "<real.person@dest.example> (expanded from <alias@relay.example>): host\n"
        "    mx.dest.example[192.0.2.8] said: 550 5.1.1 User unknown (in reply to RCPT TO\n"
        "    command)\n",
    )
    assert addresses(raw) == ["real.person@dest.example"]


def test_original_recipient_with_a_domain_wins_over_a_final_recipient_without_one():
    block = "Final-Recipient: rfc822; john\nOriginal-Recipient: rfc822; john@corp.example\n"
    (only,) = parse(dsn(block + "Action: failed\nStatus: 5.1.1\n", enclosed=None)).recipients
    assert (only.address, only.original_address, only.found_by) == (
        "john@corp.example",
        "john",
        "dsn_original_recipient",
    )


def test_a_word_before_dots_is_no_local_part():
    raw = plain(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.relay.example>\n"
        "To: news@sender.example\nSubject: Warning: could not send message for past 4 hours",
        "   ----- Transcript of session follows -----\nDeferred... Connection timed out\n\n"
        "   ----- Original message follows -----\n"
        "From: news@sender.example\nTo: ivan@dest.example\nSubject: Offers\n\nHello\n",
    )
    report = parse(raw)
    assert [(r.address, r.found_by) for r in report.recipients] == [
        ("ivan@dest.example", "enclosed_to")
    ]


@pytest.mark.parametrize(
    "body",
    [
        "Absender: Newsletter <news@sender.example>\n"
        "Die folgende Adresse ist ungültig: ivan@dest.example\n"
        "Bei Fragen hilft hilfe@relay.example gerne.\n",
        "Expéditeur : news@sender.example\nDestinataire concerné : <ivan@dest.example>\n"
        "Pour toute question, écrivez à aide@relay.example.\n",
        "差出人: news@sender.example\n宛先：ivan@dest.example\n"
        "お問い合わせは info@relay.example までどうぞ。\n",
    ],
)
def test_recipient_after_a_word_for_address_in_the_notices_language(body):
    # Synthetic, in the wording of German, French and Japanese providers' notices.
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\n"
        "To: other@sender.example\nSubject: Undeliverable Mail",
        body,
    )
    assert addresses(raw) == ["ivan@dest.example"]


def test_inline_original_headers_after_a_localised_heading_are_not_the_notice():
    # Exchange's German NDR; the original's folded To: must not add recipients.
    raw = plain(
        "From: Microsoft Outlook <postmaster@corp.example>\nTo: news@sender.example\n"
        "Subject: Unzustellbar: Offers",
        "Die Nachricht konnte nicht an folgende Empfänger oder Gruppen zugestellt werden:\n\n"
        "ivan@corp.example\nDie eingegebene E-Mail-Adresse wurde nicht gefunden.\n\n"
        "Ursprüngliche Nachrichtenkopfzeilen:\n\n"
        "Authentication-Results: spf=pass smtp.mailfrom=sender.example\n"
        "From: news@sender.example\nTo: ivan@corp.example,\n  olga@corp.example\n"
        "Subject: Offers\n",
    )
    assert addresses(raw) == ["ivan@corp.example"]


def test_a_folded_to_field_quoted_in_the_notice_adds_no_recipient():
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\nTo: news@sender.example\n"
        "Subject: Undeliverable Mail",
        "Your message\n\n  To: ivan@dest.example,\n      olga@dest.example\n  Subject: Offers\n\n"
        "could not be delivered to:\n\n  ivan@dest.example\n\nbecause: 550 5.1.1 User unknown\n",
    )
    assert addresses(raw) == ["ivan@dest.example"]


def test_a_signature_address_is_not_a_recipient():
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\nTo: news@sender.example\n"
        "Subject: Undeliverable Mail",
        "Your message could not be delivered to <ivan@dest.example>: 550 5.1.1 user unknown\n\n"
        "Kind regards,\n  team@relay.example\n\n  postmaster@relay.example\n",
    )
    assert addresses(raw) == ["ivan@dest.example"]


@pytest.mark.parametrize(
    ("heading", "on"),
    [
        ("did not reach the following recipient(s):", "on"),
        ("hat folgende Empfänger nicht erreicht:", "am"),
        ("n'est pas parvenu aux destinataires suivants :", "le"),
    ],
)
def test_exchange_2003_recipient_line_in_its_languages(heading, on):
    raw = plain(
        "From: System Administrator <postmaster@corp.example>\nTo: news@sender.example\n"
        "Subject: Undeliverable: Offers",
        f"Your message\n\n  Subject: Offers\n\n{heading}\n\n"
        f"ivan@corp.example {on} 10/10/2023 10:00\n    <mx.corp.example #5.1.1>\n\n"
        "Message sent by relay@corp.example for news@sender.example.\n",
    )
    assert addresses(raw) == ["ivan@corp.example"]


def test_a_listed_support_mailbox_is_a_recipient_like_any_other():
    # Exim: one remote refusal (named by "RCPT TO:<...>") and one local failure.
    raw = plain(
        "From: Mail Delivery System <Mailer-Daemon@mx.relay.example>\nTo: news@sender.example\n"
        "Subject: Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  ivan@dest.example\n    host mx.dest.example [192.0.2.7]\n"
        "    SMTP error from remote mail server after RCPT TO:<ivan@dest.example>:\n"
        "    550 5.1.1 User unknown\n  support@dest.example\n    Unrouteable address\n",
    )
    assert addresses(raw) == ["ivan@dest.example", "support@dest.example"]


def test_japanese_sentence_around_the_address():
    # Synthetic, in the wording of Japanese carriers' notices; the sender is addressed by name.
    raw = plain(
        "From: Mail Delivery System <MAILER-DAEMON@mail.carrier.example>\n"
        "To: news@sender.example\nSubject: =?UTF-8?B?6YWN6YCB5aSx5pWX?=",
        "news@sender.example 様\n\n送信先 <ivan@carrier-user.example> は存在しません。\n"
        "配信元サーバー relay@carrier.example からの通知です。\n",
    )
    assert addresses(raw) == ["ivan@carrier-user.example"]


def test_the_returned_originals_to_wins_over_an_address_in_the_subject():
    raw = plain(
        "From: postmaster@relay.example\nTo: news@sender.example\n"
        "Subject: Undeliverable: your order from support@shop.example",
        "Your message could not be delivered.\n\n--- Original message follows.\n\n"
        "From: news@sender.example\nTo: ivan@dest.example\nSubject: your order\n\nHello\n",
    )
    assert addresses(raw) == ["ivan@dest.example"]
