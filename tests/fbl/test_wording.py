"""Bounce wording from real MTAs and providers: what each class of text means for the recipient.

The texts below are each MTA's own wording (cited beside each case); the messages in
samples/wording/ are synthetic, written in that wording (see its README.md), because no sample
under a licence that allows copying was found for these classes.
"""

from __future__ import annotations

from email.header import Header
from pathlib import Path

import pytest

from fbl.classification import (
    block_status,
    classify,
    failure_status,
    infer_status,
    is_hard,
    readable,
)
from fbl.parse import parse

SAMPLES = Path(__file__).parent / "samples" / "wording"


def only_recipient(name: str):
    report = parse((SAMPLES / name).read_bytes())
    assert report.kind == "dsn"
    assert len(report.recipients) == 1
    return report.recipients[0]


# --- user unknown ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "550 User not exist",  # Chinese and Korean providers' English
        "550 5.1.1 <a@example.com>: user does not exist",
        "550 5.1.1 Recipient does not exists here",
        "550 Requested action not taken: no such user here",  # Apache James
        "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in local "
        "recipient table",  # Postfix
        "550 5.1.1 Recipient not found",
        "550 unknown recipient",
        "550 Requested action not taken: mailbox unavailable",  # RFC 5321 4.2.2's 550 text
        "550 5.1.1 Address rejected",
        "553 Invalid recipient",
        "550 5.1.1 The email account that you tried to reach does not exist.",  # Gmail
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found",  # Exchange Server
        "The email address you entered couldn't be found.",  # Office 365 NDR
        "gone wasn't found at example.com.",  # Office 365 NDR, newer layout
        "550 no such local user",
        # The address between the noun and the verdict.
        "550 User <a@example.com> does not exist",
        "550 5.1.1 Recipient (a@example.com) not found",
        "550 Mailbox a@example.com does not exist",
        "554 delivery error: dd Requested mailbox is unavailable - mta1047.mail.example",
        # Chinese providers' wordings, as their help pages list them.
        "550 #2175041 unavailable mail user",
        "550 local server don't exists that user",
        "550 recipient does not have an account",
        "550 not user of this server",
        "550 RC:LD The email account that you tried to reach does no exists.",
        "551 5.1.1 recipient is not exist",
        "550 Local User [a@example.com] not found.",
        "550 5.1.1 a@example.com recipient rejected",
        "550 Mailbox not found or access denied",  # NetEase: not a policy refusal
        "550 Mailbox a@example.com unavailable or access denied",
        "550 用户不存在",
        "550 존재하지 않는 계정입니다",
        "550 Benutzer unbekannt",
        "550 destinataire inconnu",
        "The recipient name is not recognized",  # Exchange 2003
        "550 宛先不明",
        "550 ユーザが存在しません",
        "該当するユーザーがいません",
        # A name between the noun and its verdict, or the address alone after the code.
        "550 User john was not found",
        "550 5.1.1 Recipient john was not found in LDAP",
        "550 RCPT <a@example.com> does not exist",
        "550 <a@example.com> not found",
        "550 a@example.com does not exist.",
        "550 Unknown e-mail address",
        "550 Bad destination recipient",
        "550 5.1.1 Mailbox not present",
        "550 a@example.com is not an active address at this host",
        "550 a@example.com not a local address",
        "550 There is no one at this address",
        "550 Email address could not be found, or was misspelled",
        "550 This email address is wrong or no longer valid",
        "550 Destination addresses were unknown",
        "550 No mail box available for this user",
        "550 Mailbox unavaiable",
        "550 No existe dicha persona",
        "550 Nessun utente simile in questo indirizzo",
        # As PHP bounce handlers' tables list them.
        "550 no such email address",
        "550 No one with that email address here",
        "550 Email Address was not found",
        "550 unknown or illegal user",
        "550 Unknown account",
        "550 Unable to find alias user",
        "550 server doesn't handle mail for that user",
        "550 No such mail drop defined",
        "550 Destinatario errato",
        "550 Adressat unbekannt",
        "Ihre Nachricht konnte nicht zugestellt werden, da die Adresse nicht existiert.",
        # The providers' own languages, without an enhanced code to lean on.
        "550 Die Adresse ist unbekannt",
        "550 Benutzer hat kein Postfach",
        "550 Cette adresse n'existe pas",
        "550 La dirección de correo no existe",
        "550 Usuário desconhecido",
        "550 Utente inesistente",
        "550 Gebruiker onbekend",
        "550 Nie ma takiego użytkownika",
        "550 Пользователь не найден",
        "550 Такого пользователя нет",
        "550 存在しないメールアドレスです",
        "550 受信者が存在しません",
    ],
)
def test_unknown_user_wordings_are_a_dead_address(text):
    assert classify("5.0.0", text) == "permanent"
    assert infer_status(text, default_class="5")[:4] in ("5.1.", "5.0.")


@pytest.mark.parametrize(
    "text",
    [
        # qmail-smtpd with the badrcptto / validrcptto patches: a catch-all #5.7.1 code.
        "553 sorry, your envelope recipient is in my badrcptto list (#5.7.1)",
        "553 sorry, this recipient is not in my validrcptto list (#5.7.1)",
        "553 sorry, this recipient is in my badrecipientto list (#5.7.1)",
        "553 sorry, your envelope recipient has been denied (#5.7.1)",
        "550 sorry, badrcptto",
        "vdeliver: Invalid or unknown virtual user 'a'",  # vpopmail
        "user missing home directory (#5.1.1)",  # qmail-local
    ],
)
def test_qmail_recipient_lists_are_a_dead_address(text):
    status = infer_status(text, default_class="5")
    assert classify(status, text) == "permanent"
    assert is_hard("permanent", status, "failed")


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 recipient no longer on server", "5.1.6"),  # Apple iCloud
        ("550 user is terminated", "5.2.1"),  # Mail.ru
        ("554 delivery error: dd This account has been disabled or discontinued", "5.2.1"),
        # Suspended and inactive accounts.
        ("550 a@example.com is currently suspended", "5.2.1"),
        ("550 Mailbox currently suspended", "5.2.1"),
        ("550 recipient suspend the service", "5.2.1"),  # NetEase
        ("550 a@example.com is a deactivated mailbox", "5.2.1"),  # QQ Mail
        ("553 user is inactive (eyou mta)", "5.2.1"),
        ("550 invalid/inactive user", "5.2.1"),
        ("550 User not active", "5.2.1"),
        ("550 This address no longer accepts mail.", "5.2.1"),
        ("vdelivermail: account is locked email bounced", "5.2.1"),  # vpopmail
        ("550 Boite du destinataire archivee", "5.2.1"),  # Orange
        ("550 Account non attivo", "5.2.1"),
        ("550 Compte désactivé", "5.2.1"),
        ("550 Cuenta suspendida", "5.2.1"),
        ("550 Mailbox was not used for more than 3 months. http://mail.i.ua/err/3", "5.2.1"),
        ("554 delivery error: dd a@example.com is no longer valid. - mta1.example", "5.2.1"),
        ("550 Recipient mailbox was disabled", "5.2.1"),
        ("550 Mailbox Locked or Suspended", "5.2.1"),
        ("550 El usuario esta en estado: inactivo", "5.2.1"),
        ("550 Esta casilla ha expirado por falta de uso", "5.2.1"),
        ("550 Questo indirizzo e' bloccato per inutilizzo", "5.2.1"),
        ("550 Podane konto jest zablokowane administracyjnie lub nieaktywne", "5.2.1"),
    ],
)
def test_moved_and_closed_accounts(text, status):
    assert infer_status(text) == status
    assert classify("5.0.0", text) == "permanent"


@pytest.mark.parametrize(
    "text",
    [
        "550 5.7.1 Message rejected: a@example.com sender not found in whitelist",
        "550 Requested action not taken: message not found",
        "535 5.7.8 Invalid account or password",  # our smarthost login, not the recipient
        "550 5.7.1 <a@example.com>: Recipient address rejected: Access denied",
    ],
)
def test_other_things_not_found_are_not_a_dead_address(text):
    assert classify(infer_status(text, default_class="5"), text) != "permanent"


@pytest.mark.parametrize(
    "text",
    [
        # Postfix's smtpd_helo_restrictions: our HELO name, whatever the words after it.
        "550 5.7.1 <mx.sender.example>: Helo command rejected: Host not found",
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
        # The recipient's own filter, not a host without mail service (RFC 7505).
        "550 5.7.1 The recipient does not accept mail from your domain",
        "550 This recipient does not accept mail from this sender",
        "550 Mail refused - a@example.com does not accept mail from unknown senders",
    ],
)
def test_refusals_of_our_helo_or_by_the_recipients_filter_are_policy(text):
    assert classify(infer_status(text, default_class="5"), text) == "blocked"


def test_a_host_that_accepts_no_mail_at_all_is_still_a_dead_address():
    assert classify("5.0.0", "550 Host does not accept mail") == "permanent"


def test_a_sender_address_said_unknown_is_about_us():
    assert classify("5.0.0", "553 Sender address <news@sender.example> unknown") == "blocked"
    text = "550 5.1.0 <news@sender.example> sender address does not exist E2110"
    assert classify(infer_status(text), text) == "blocked"
    assert classify("5.0.0", "550 unroutable sender address") == "blocked"
    # Yahoo: too many unknown recipients from our server is a verdict on our sending.
    text = "451 VS1-IP Excessive unknown recipients - possible Open Relay (#4.1.8)"
    assert classify("4.1.8", text) == "blocked"


def test_exchange_online_directory_based_edge_blocking_is_user_unknown():
    # Microsoft, "Fix email delivery issues for error code 5.4.1 in Exchange Online": the
    # recipient is not in the tenant's directory. The same words from a Postfix access map,
    # under 5.7.1 and without the AS(201806281) tag, are a policy refusal.
    dbeb = "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"
    assert classify("5.4.1", dbeb) == "permanent"
    assert classify("5.4.1", "550 Recipient address rejected: Access denied") == "permanent"
    assert (
        classify("5.7.1", "554 5.7.1 <a@example.com>: Recipient address rejected: Access denied")
        == "blocked"
    )
    recipient = only_recipient("exchange-online-dbeb.eml")
    assert (recipient.status, recipient.category, recipient.hard) == ("5.4.1", "permanent", True)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        # Postfix, for a name that does not exist in the DNS.
        (
            "Host or domain name not found. Name service error for name=nx.example type=MX: "
            "Host not found",
            "5.1.2",
        ),
        ("550 5.1.2 no such domain", "5.1.2"),
        # Exim (routers/dnslookup.c) for an MX pointing nowhere, and for a null MX.
        ("all relevant MX records point to non-existent hosts", "5.1.2"),
        ("an MX or SRV record indicated no SMTP service", "5.1.10"),
        ("unknown mail domain", "5.1.2"),
        ("Domain example.net does not exist", "5.1.2"),
        # Exchange Online; the code is its own, the words say no such domain.
        (
            "550 5.4.310 DNS domain example.net does not exist "
            "[Message=InfoDomainNonexistent]",
            "5.4.310",
        ),
        (
            "DNS Error: DNS type 'mx' lookup of nx.example responded with code NXDOMAIN",
            "5.1.2",
        ),  # Gmail
        ("nx.example: Name or service not known", "5.1.2"),  # getaddrinfo(3)
        # hMailServer
        ("No mail servers appear to exists for the recipients address.", "5.1.2"),
        ("550 Recipient domain must exist", "5.1.2"),
        ("the domain nx.example is unknown", "5.1.2"),
        # Postfix for a null MX (RFC 7505).
        ("Domain nullmx.example does not accept mail (nullMX)", "5.1.10"),
    ],
)
def test_no_such_domain_and_null_mx(text, status):
    assert infer_status(text, default_class="5") == status
    assert classify(status, text) == "permanent"


def test_exim_null_mx_bounce_is_hard():
    recipient = only_recipient("exim-null-mx.eml")
    assert recipient.address == "someone@nullmx.example"
    assert (recipient.status, recipient.hard) == ("5.1.10", True)


# --- Japanese, decoded from its charset -------------------------------------------------------


def test_iso_2022_jp_text_is_decoded_before_it_is_read():
    raw = "宛先不明 (ユーザが存在しません)".encode("iso-2022-jp")
    as_read = raw.decode("utf-8")  # what a part without a charset gives
    assert "\x1b$B" in as_read
    assert readable(as_read) == "宛先不明 (ユーザが存在しません)"
    assert classify("5.0.0", as_read) == "permanent"
    word = "=?ISO-2022-JP?B?GyRCJWYhPCU2JCxCODpfJDckXiQ7JHMbKEI=?="
    assert readable(f"550 {word}") == "550 ユーザが存在しません"
    assert readable("=?bogus?B?!!!?= stays") == "=?bogus?B?!!!?= stays"
    # A text split over two encoded words reads as one (RFC 2047 6.2); JIS runs beside UTF-8.
    first, second = (Header(t, "iso-2022-jp").encode() for t in ("ユーザが存", "在しません"))
    assert readable(f"550 {first} {second}") == "550 ユーザが存在しません"
    mixed = "宛先 " + "ユーザが存在しません".encode("iso-2022-jp").decode("ascii") + " (不明)"
    assert readable(mixed) == "宛先 ユーザが存在しません (不明)"


@pytest.mark.parametrize(
    "name",
    [
        "iso-2022-jp-text-bounce.eml",
        "iso-2022-jp-unlabelled-text-bounce.eml",
        "encoded-word-diagnostic.eml",
    ],
)
def test_japanese_bounces_are_hard_whatever_their_encoding(name):
    recipient = only_recipient(name)
    assert recipient.category == "permanent"
    assert recipient.hard is True
    assert "存在しません" in recipient.diagnostic


# --- words beat a wrong code ----------------------------------------------------------------


def test_a_sender_rate_limit_under_5_1_1_is_not_a_dead_address():
    text = "550 5.1.1 <a@example.com>: sender exceeded the per-hour recipient limit"
    assert classify("5.1.1", text) == "blocked"
    assert classify("5.1.1", "550 5.1.1 Recipient limit exceeded, try later") == "blocked"
    assert classify("5.1.1", "452 Number recipients per hour exceeded") == "blocked"
    recipient = only_recipient("postfix-5.1.1-rate-limit.eml")
    assert (recipient.category, recipient.hard) == ("blocked", False)


@pytest.mark.parametrize(
    "text",
    [
        "550 5.1.1 <a@example.com>: Mailbox is full",
        "550 5.1.1 user over quota",
        "550 5.1.1 メールボックスの容量を超えています",
        "550 5.1.1 Quota exceed the hard limit for user a@example.com",
        "552 This person's account is exceeding their quota.",
    ],
)
def test_a_full_mailbox_under_5_1_1_is_transient(text):
    assert classify("5.1.1", text) == "transient"


@pytest.mark.parametrize(
    "text",
    [
        "552 User has too many messages on the server",  # vpopmail
        "Maildir delivery failed: userdisk quota 2000000 exceeded",  # vpopmail
        "552 a@example.com is over disk quota",  # Courier, Dovecot
        "552 5.2.2 Quota violation for a@example.com",
        "552 5.2.2 Recipient rejected: mailbox would exceed maximum allowed storage",
        "cannot update mailbox /var/mail/a for user a. mail file size exceeds the maximum size "
        "allowed for mail delivery",  # Postfix local(8)
        "552 The user's space has been used up.",  # Chinese providers
        "550 Unknown user: too much mail data",  # NTT docomo
        "552 Account(s) <a@example.com> does not have enough space",
        "Message rejected. Not enough storage space in user's mailbox to accept message.",
        "551 bounce as<the destination mailbox <a@example.com> is full> queue as 100.1.x",
        "550 Boite du destinataire pleine.",  # Orange, Wanadoo
        "550 full mailbox",
        "552 Account storage limit",  # GoDaddy
        "550 5.2.1 Account disabled temporarly for exceeding receiving limits",
        "552 Das Postfach des Empfängers ist voll",
        "552 Quota dépassé",
        "552 La boîte aux lettres du destinataire est pleine",
        "552 El buzón del destinatario está lleno",
        "552 La casella di posta del destinatario è piena",
        "552 Caixa postal cheia",
        "552 Mailbox vol",
        "552 Skrzynka pocztowa jest pełna",
        "552 Почтовый ящик переполнен",
        "552 メールボックスの容量がいっぱいです",
    ],
)
def test_full_mailbox_wordings_are_transient(text):
    # Read before the words for a dead address: "Unknown user: too much mail data" is full.
    assert classify(infer_status(text, default_class="5"), text) == "transient"
    assert classify("5.0.0", text) == "transient"


def test_orange_and_la_postes_blocked_recipient_account_is_a_disabled_mailbox():
    # LPN007_426: the recipient's account, not our mail, is blocked; whatever the code says.
    for text in (
        "550 5.5.0 Le compte du destinataire est bloque. The recipient account isblocked. "
        "LPN007_426",
        "550 5.5.0 Le compte du destinataire est bloqué. The recipient account is blocked.",
    ):
        assert classify("5.5.0", text) == "permanent"
        assert infer_status(text) == "5.5.0"


@pytest.mark.parametrize(
    "text",
    [
        "550 5.1.0 Your email was rejected for having too many invalid recipients AUP#O-1560",
        "550 The sending IP address has exceeded the threshold of invalid recipients",
        "550 Mailbox unavailable or access denined [MwsmQ==]",  # QQ Mail's frequency limit
        "550 Connection frequency limited. http://service.mail.qq.com/",
    ],
)
def test_limits_on_our_sending_are_not_a_dead_address(text):
    assert classify(infer_status(text, default_class="5"), text) == "blocked"


def test_too_many_messages_sent_is_still_a_rate_limit():
    assert classify("5.0.0", "421 Too many messages from your IP, slow down") == "blocked"


def test_a_full_mailbox_bounce_with_5_1_1_is_not_hard():
    recipient = only_recipient("postfix-5.1.1-mailbox-full.eml")
    assert (recipient.status, recipient.category, recipient.hard) == ("5.1.1", "transient", False)


def test_a_recipient_receiving_too_much_mail_is_transient():
    # Outlook.com: a limit of the recipient's, not of ours.
    text = (
        "554 5.2.122 The recipient has exceeded their limit for the number of messages they "
        "can receive per hour."
    )
    assert classify("5.2.122", text) == "transient"


# --- a failed recipient never has a success status ------------------------------------------


@pytest.mark.parametrize(
    ("status", "text", "action", "wanted"),
    [
        ("2.0.0", "550 Requested action not taken: mailbox unavailable", "failed", "5.1.1"),
        (None, "550 User unknown", "failed", "5.1.1"),
        ("2.0.0", "it did not work", "failed", "5.0.0"),
        ("2.0.0", None, "delayed", "4.0.0"),
        ("2.1.5", "250 2.1.5 Ok then 452 4.2.2 Mailbox full", "failed", "4.2.2"),
        # What is not a failure keeps its status.
        ("2.0.0", "250 OK", "delivered", "2.0.0"),
        ("5.1.1", "550 5.1.1 User unknown", "failed", "5.1.1"),
    ],
)
def test_failure_status(status, text, action, wanted):
    assert failure_status(status, text, action=action) == wanted


def test_a_dsn_saying_failed_with_status_2_0_0_takes_the_status_from_its_text():
    recipient = only_recipient("failed-with-success-status.eml")
    assert recipient.action == "failed"
    assert (recipient.status, recipient.hard) == ("5.1.1", True)


def test_a_success_reply_quoted_before_the_refusal_is_not_the_status():
    assert (
        infer_status("250 2.1.5 Ok; then: 4.3.1 Insufficient system storage", default_class="5")
        == "4.3.1"
    )
    assert infer_status("250 Accepted 451 Temporary local problem", default_class="5") == "4.0.0"
    recipient = only_recipient("exim-smtp-error-4xx-after-250.eml")
    assert (recipient.status, recipient.category, recipient.hard) == ("4.3.1", "transient", False)


# --- policy blocks keep their 5.7.x ---------------------------------------------------------


def test_a_policy_block_takes_its_own_5_7_code_over_a_catch_all():
    text = "550-5.7.1 [192.0.2.10] Message blocked 550 5.5.0 Message rejected"
    assert block_status("5.5.0", text, category="blocked") == "5.7.1"
    # Only policy refusals, only catch-all codes, only a 5.7 code the text gives.
    assert block_status("5.5.0", text, category="unknown") == "5.5.0"
    assert block_status("5.1.8", "550 5.1.8 sender rejected 5.7.1", category="blocked") == "5.1.8"
    assert block_status("5.5.0", "550 domain mismatches client ip", category="blocked") == "5.5.0"
    recipient = only_recipient("sendmail-policy-under-5.5.0.eml")
    assert (recipient.status, recipient.category) == ("5.7.1", "blocked")


# --- network errors after the retries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (
            "delivery temporarily suspended: connect to mx.example.net[192.0.2.1]:25: "
            "No route to host",
            "4.4.1",
        ),
        ("connect to mx.example.net[192.0.2.1]:25: Connection timed out", "4.4.1"),
        ("Connection refused by mx.example.net", "4.4.1"),
        ("Network is unreachable", "4.4.1"),
        ("retry timeout exceeded", "4.4.7"),
        ("retry time not reached for any host after a long failure period", "4.4.7"),
        (
            "lost connection with mx.example.net[192.0.2.1] while receiving the initial "
            "server greeting",
            "4.4.1",
        ),  # Postfix
        ("Could not initiate SMTP conversation with any hosts", "4.4.1"),  # Gmail
        ("Network error: 10060", "4.4.1"),
        ("Remote host closed connection during the SMTP conversation", "4.4.1"),
        ("Unable to connect to remote host", "4.4.1"),
        (
            "I'm not going to try again; this message has been in the queue too long.",
            "4.4.7",
        ),  # qmail-send
    ],
)
def test_network_errors_after_retries_are_transient(text, status):
    assert infer_status(text, default_class="5") == status
    assert classify("5.0.0", text) == "transient"
    assert not is_hard(classify("5.0.0", text), "5.0.0", "failed")


def test_postfix_no_route_bounce_is_transient():
    recipient = only_recipient("postfix-no-route-after-retries.eml")
    assert (recipient.status, recipient.category, recipient.hard) == ("4.4.1", "transient", False)


def test_an_unknown_user_beside_a_later_timeout_is_still_unknown():
    # sendmail transcripts: one recipient's "User unknown", then a connection timing out.
    text = "550 <a@example.org>... User unknown 421 Deferred: Connection timed out"
    assert classify("5.0.0", text) == "permanent"


def test_wording_is_read_whatever_its_case():
    # The rules are matched against lower-cased text; capitals in a rule or a text change nothing.
    assert classify("5.0.0", "550 USER UNKNOWN") == "permanent"
    assert classify("5.0.0", "554 Rejected: listed at ZEN.SPAMHAUS.ORG") == "blocked"
    assert classify("5.4.1", "550 5.4.1 RECIPIENT ADDRESS REJECTED: ACCESS DENIED") == "permanent"
    assert infer_status("CONNECTION TIMED OUT", default_class="5") == "4.4.1"
