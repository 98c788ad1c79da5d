"""Double opt-in: the sign-up is pending until the mailed link's button is pressed; a GET never
confirms; a second click records nothing twice; links expire; mails per address are capped."""

from __future__ import annotations

import datetime
import re
import smtplib
import threading
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from compliance.consent import double_opt_in
from compliance.consent.models import ConsentRecord, PendingConfirmation
from compliance.consent.tasks import expire_confirmations
from tests.support import require

pytestmark = pytest.mark.django_db(transaction=True)  # the mail goes out on commit

URL = "/api/v1/consents"


def sign_up(address="pat@example.com", **evidence):
    return {
        "address": address,
        "purpose": "marketing",
        "action": "grant",
        "basis": "consent",
        "method": "double_opt_in",
        "evidence": {
            "ip": "192.0.2.10",
            "page_url": "https://acme.example/signup",
            "wording": "Send me the newsletter.",
            "user_agent": "Mozilla/5.0",
            **evidence,
        },
    }


@pytest.fixture
def writer(api_client, default_tenant):
    return api_client("consent:write", "consent:read")


def link_in(message) -> str:
    return urlparse(re.search(r"https?://\S+/confirm/\S+", message.body).group(0)).path


def test_a_sign_up_is_pending_and_mails_a_link(writer):
    answer = writer.post(URL, sign_up(), format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["state"] == "pending"
    assert not ConsentRecord.objects.exists()
    (message,) = mail.outbox
    assert message.to == ["pat@example.com"]
    assert "Marketing" in message.subject
    assert link_in(message).startswith("/confirm/")
    assert PendingConfirmation.objects.get().status == "pending"


def test_the_confirmation_mail_speaks_the_requests_language(writer):
    writer.post(URL, sign_up(), format="json", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert PendingConfirmation.objects.get().language == "de"
    (message,) = mail.outbox
    assert message.subject == "Bitte bestätigen Sie Ihre Anmeldung für Marketing"
    assert message.body.startswith("Guten Tag,\n\njemand – hoffentlich Sie – hat Default gebeten")
    assert re.search(
        r"Der Link ist gültig bis \d+\. \w+ \d{4} \d\d:\d\d \(UTC\)\. Falls", message.body
    )
    assert "/confirm/" in message.body


@pytest.mark.parametrize("accept", [None, "fr-FR,fr;q=0.9"])
def test_the_confirmation_mail_is_english_otherwise(writer, accept):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    writer.post(URL, sign_up(), format="json", **headers)
    assert PendingConfirmation.objects.get().language == "en"
    (message,) = mail.outbox
    assert message.subject == "Please confirm your subscription to Marketing"
    assert message.body.startswith("Hello,\n\nsomeone, hopefully you, asked Default")
    # The expiry says its time zone (and a time ending in "p.m." gets no second full stop).
    assert re.search(r"The link works until [^\n]+ \(UTC\)\. If", message.body)


def test_the_page_speaks_the_browsers_language(writer, client):
    # The mail was asked for in English; the page follows whoever opens it.
    writer.post(URL, sign_up(), format="json")
    path = link_in(mail.outbox[0])

    page = client.get(path, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content.decode()
    assert '<html lang="de">' in page
    assert "<title>Bitte bestätigen Sie Ihre Anmeldung</title>" in page
    assert "um Marketing von Default zu erhalten" in page
    assert "Ja, Anmeldung bestätigen</button>" in page
    done = client.post(path, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Ihre Anmeldung für Marketing von Default ist bestätigt." in done
    again = client.post(path, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "wurde bereits bestätigt" in again
    assert (
        "Dieser Link ist ungültig"
        in client.get("/confirm/x", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    )

    english = client.get(path, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="en">' in english and "Already confirmed" in english


def test_an_expired_link_says_so_in_german(writer, client, monkeypatch):
    writer.post(URL, sign_up(), format="json")
    later = timezone.now() + datetime.timedelta(days=8)
    monkeypatch.setattr(double_opt_in, "_now", lambda: later)
    page = client.get(link_in(mail.outbox[0]), HTTP_ACCEPT_LANGUAGE="de")
    assert page.status_code == 410
    assert "Dieser Link ist abgelaufen" in page.content.decode()


def test_get_shows_a_button_and_confirms_nothing_post_confirms_once(writer, client):
    writer.post(URL, sign_up(), format="json")
    path = link_in(mail.outbox[0])

    page = client.get(path)
    assert page.status_code == 200
    assert "<button" in page.content.decode()
    assert not ConsentRecord.objects.exists()

    done = client.post(path, HTTP_USER_AGENT="Firefox", REMOTE_ADDR="198.51.100.7")
    assert done.status_code == 200
    assert "is confirmed" in done.content.decode()
    record = ConsentRecord.objects.get()
    assert (record.action, record.method, record.basis) == ("granted", "double_opt_in", "consent")
    assert record.confirmed_ip == "198.51.100.7"
    assert record.confirmed_at is not None
    assert record.ip == "192.0.2.10"  # the sign-up's own evidence is kept
    assert record.page_url == "https://acme.example/signup"
    assert record.text.body == "Send me the newsletter."
    state = writer.get(URL, {"address": "pat@example.com"}).json()
    assert [p["state"] for p in state["purposes"]] == ["granted"]

    again = client.post(path)
    assert again.status_code == 200
    assert "confirmed before" in again.content.decode()
    assert ConsentRecord.objects.count() == 1


def test_a_head_request_confirms_nothing_and_other_methods_are_refused(writer, client):
    writer.post(URL, sign_up(), format="json")
    path = link_in(mail.outbox[0])
    head = client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert "no-cache" in head["Cache-Control"]
    assert not ConsentRecord.objects.exists()
    for method in (client.put, client.delete, client.options):
        refused = method(path)
        assert refused.status_code == 405
        assert refused["Allow"] == "GET, HEAD, POST"
    assert PendingConfirmation.objects.get().status == "pending"


def test_a_click_racing_another_finds_it_confirmed_and_records_nothing(writer, monkeypatch):
    """Two clicks (a double click, two tabs) both find the sign-up pending; the one that takes
    the row second sees the first one's grant and records nothing."""
    require(connection.vendor == "postgresql", "PostgreSQL (row locks)")
    writer.post(URL, sign_up(), format="json")
    token = link_in(mail.outbox[0]).rsplit("/", 1)[1]
    real_look_up = double_opt_in.look_up
    other_click = []

    def look_up_then_lose_the_race(token):
        found = real_look_up(token)
        if not other_click:  # the other click runs to its commit between look-up and lock
            other_click.append(None)
            thread = threading.Thread(target=click_in_another_connection)
            thread.start()
            thread.join()
        return found

    def click_in_another_connection():
        try:
            other_click[0] = double_opt_in.confirm(token, ip="198.51.100.8").state
        finally:
            connection.close()

    monkeypatch.setattr(double_opt_in, "look_up", look_up_then_lose_the_race)
    late = double_opt_in.confirm(token, ip="198.51.100.7")
    assert other_click == ["confirmed_now"]
    assert late.state == "confirmed"
    record = ConsentRecord.objects.get()
    assert record.confirmed_ip == "198.51.100.8"


@pytest.mark.parametrize("token", ["x", "A" * 43, "A" * 500])
def test_a_tampered_or_unknown_link_gets_a_4xx_page(client, writer, token):
    writer.post(URL, sign_up(), format="json")
    for method in (client.get, client.post):
        page = method(f"/confirm/{token}")
        assert page.status_code == 404
        assert "not valid" in page.content.decode()
    assert not ConsentRecord.objects.exists()


def test_an_expired_link_confirms_nothing(writer, client, monkeypatch):
    writer.post(URL, sign_up(), format="json")
    path = link_in(mail.outbox[0])
    later = timezone.now() + datetime.timedelta(days=8)
    monkeypatch.setattr(double_opt_in, "_now", lambda: later)

    assert client.post(path).status_code == 410
    assert not ConsentRecord.objects.exists()
    assert expire_confirmations() == 1
    assert PendingConfirmation.objects.get().status == "expired"


def test_confirmation_mails_per_address_are_capped(writer, settings):
    settings.CONSENT_CONFIRMATIONS_PER_DAY = 2
    assert writer.post(URL, sign_up(), format="json").status_code == 202
    assert writer.post(URL, sign_up(), format="json").status_code == 202
    answer = writer.post(URL, sign_up(), format="json")
    assert answer.status_code == 429
    assert answer.json()["code"] == "too_many_confirmations"
    assert len(mail.outbox) == 2
    # Another address is not held back.
    assert writer.post(URL, sign_up("sam@example.com"), format="json").status_code == 202


def test_a_mail_that_cannot_be_sent_keeps_no_sign_up_and_says_so(writer, settings, monkeypatch):
    """The mail server refuses the second of three mails: the first sign-up stands, the other
    two are not kept (nobody holds their links, and they must not count against the cap), and
    the client is told to send them again."""
    settings.CONSENT_CONFIRMATIONS_PER_DAY = 1
    real_send_mail = double_opt_in.send_mail

    def refuse_sam(subject, body, sender, to):
        if to == ["sam@example.com"]:
            raise smtplib.SMTPServerDisconnected("the relay hung up")
        return real_send_mail(subject, body, sender, to)

    monkeypatch.setattr(double_opt_in, "send_mail", refuse_sam)
    batch = [sign_up("pat@example.com"), sign_up("sam@example.com"), sign_up("kim@example.com")]
    answer = writer.post(URL, batch, format="json")
    assert answer.status_code == 503
    assert answer.json()["code"] == "confirmation_mail_failed"
    assert "sam@example.com" in answer.json()["detail"]
    assert [m.to for m in mail.outbox] == [["pat@example.com"]]
    assert [p.address for p in PendingConfirmation.objects.all()] == ["pat@example.com"]

    monkeypatch.setattr(double_opt_in, "send_mail", real_send_mail)
    again = writer.post(URL, batch[1:], format="json")
    assert again.status_code == 202, again.content
    assert [m.to for m in mail.outbox[1:]] == [["sam@example.com"], ["kim@example.com"]]


def test_a_sign_up_without_its_evidence_is_refused(writer):
    answer = writer.post(URL, sign_up(page_url=""), format="json")
    assert answer.status_code == 400
    assert "page_url" in answer.json()["detail"]
    assert not mail.outbox
