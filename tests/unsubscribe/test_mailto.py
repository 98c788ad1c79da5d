"""Unsubscribes by mail to unsubscribe+TOKEN@DOMAIN, handed over by the MTA to ingest_mail."""

from email.message import EmailMessage

import pytest

from fbl.models import InboundMessage
from suppression.models import Suppression
from tests.support import ROOT, run_manage, same_database_env
from unsubscribe.models import UnsubscribeRequest

AUTOREPLIES = ROOT.parent / "shared" / "fixtures" / "email" / "autoreply"


@pytest.fixture
def mailto(mint, settings):
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.example.com"
    return mint("writer@example.com").mailto


def message_to(address: str, **headers) -> bytes:
    message = EmailMessage()
    message["From"] = "Writer <writer@example.com>"
    message["To"] = address
    message["Subject"] = "unsubscribe"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Please remove me.")
    return message.as_bytes()


def ingest(raw: bytes, recipient: str = "") -> tuple:
    args = ["ingest_mail", "--sender", "writer@example.com"]
    if recipient:
        args += ["--recipient", recipient]
    return run_manage(*args, input=raw, env=same_database_env())


@pytest.mark.django_db(transaction=True)
def test_a_mail_to_the_token_address_unsubscribes(mailto):
    result = ingest(message_to(mailto), recipient=mailto)
    assert result.returncode == 0, result.stderr
    request = UnsubscribeRequest.objects.get()
    assert request.channel == "mailto"
    assert Suppression.objects.get().address == "writer@example.com"
    stored = InboundMessage.objects.get()
    assert (stored.kind, stored.status) == ("unsubscribe", "processed")


@pytest.mark.django_db(transaction=True)
def test_the_token_is_found_in_the_headers_when_the_envelope_does_not_carry_it(mailto):
    result = ingest(message_to(mailto))
    assert result.returncode == 0, result.stderr
    assert Suppression.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"X_Autoreply": "yes"},
        {"Precedence": "auto_reply"},
        {"Subject_": None},
    ],
)
def test_auto_replies_to_the_token_address_change_nothing(mailto, headers):
    if "Subject_" in headers:
        raw = message_to(mailto).replace(b"Subject: unsubscribe", b"Subject: Out of Office")
    else:
        raw = message_to(mailto, **headers)
    result = ingest(raw, recipient=mailto)
    assert result.returncode == 0, result.stderr
    assert Suppression.objects.count() == 0
    assert InboundMessage.objects.get().status == "ignored"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fixture", sorted(p.name for p in AUTOREPLIES.glob("*.eml")))
def test_real_vacation_notices_change_nothing(mailto, fixture):
    raw = (AUTOREPLIES / fixture).read_bytes()
    result = ingest(raw, recipient=mailto)
    assert result.returncode == 0, result.stderr
    assert Suppression.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_forged_token_address_unsubscribes_nobody(mailto):
    forged = mailto.replace("unsubscribe+", "unsubscribe+x")
    result = ingest(message_to(forged), recipient=forged)
    assert result.returncode == 0
    assert Suppression.objects.count() == 0
    assert InboundMessage.objects.get().status == "unrecognised"


@pytest.mark.django_db(transaction=True)
def test_the_same_mail_delivered_twice_is_one_message_and_one_opt_out(mailto):
    raw = message_to(mailto)
    ingest(raw, recipient=mailto)
    ingest(raw, recipient=mailto)
    stored = InboundMessage.objects.get()
    assert stored.times_received == 2
    assert UnsubscribeRequest.objects.count() == 1


def test_with_the_database_down_the_mta_is_told_to_retry(mint_free_mail):
    from tests.support import service_env

    result = run_manage(
        "ingest_mail",
        input=mint_free_mail,
        env=service_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/x", DB_CONNECT_TIMEOUT="1"),
    )
    assert result.returncode == 75  # EX_TEMPFAIL: Postfix keeps the message and retries
    assert b"retry" in result.stderr


@pytest.fixture
def mint_free_mail() -> bytes:
    return message_to("unsubscribe+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@unsub.example.com")


def test_an_empty_stdin_is_refused_with_status_2():
    result = run_manage("ingest_mail", input=b"")
    assert result.returncode == 2
    assert b"no message" in result.stderr


def test_the_vacation_fixtures_are_there():
    # Guards the parametrised test above, which would otherwise collect nothing.
    assert len(list(AUTOREPLIES.glob("*.eml"))) >= 3, f"missing fixtures in {AUTOREPLIES}"
