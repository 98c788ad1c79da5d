"""A real Postfix asks the policy server about each recipient (check_policy_service).

What an application that submits mail through the relay sees: a suppressed recipient is refused
at RCPT TO with 554 5.7.1, the others are accepted and delivered, and with the policy server down
Postfix answers 451 4.3.5 so the application tries again later.
"""

from __future__ import annotations

import email.message
import signal
import smtplib
import subprocess
import sys
import tempfile
from contextlib import contextmanager

import pytest
from django.conf import settings

from compliance.models import SendingIdentity, Stream
from tests.postfix_instance import postfix  # noqa: F401 - the fixture
from tests.support import ROOT, same_database_env, service_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DOMAIN = "example.org"


@contextmanager
def policy_server_process(env: dict[str, str] | None = None):
    """`manage.py run_policy_server --port 0` (on the test database unless `env` says
    otherwise); yields the process and its port."""
    env = env or same_database_env(ADDRESS_HASH_KEY=settings.ADDRESS_HASH_KEY)
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_policy_server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        line = process.stdout.readline()  # the command prints this once it listens
        if not line.startswith("listening on "):
            log.seek(0)
            pytest.fail(f"the policy server did not start: {line!r} {log.read().decode()}")
        yield process, int(line.strip().rsplit(":", 1)[1])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        process.stdout.close()
        log.close()


def relay_config(policy_port: int) -> dict[str, str]:
    return {
        # Accept mail for the test domain and deliver it nowhere (discard(8) logs "sent").
        "relay_domains": DOMAIN,
        "transport_maps": f"inline:{{ {DOMAIN}=discard: }}",
        # As docs/relays/postfix.md has it; the default timeout (100 s) would stall a failing test.
        "smtpd_recipient_restrictions": (
            f"check_policy_service {{ inet:127.0.0.1:{policy_port}, timeout=20s }}, permit"
        ),
    }


@pytest.fixture
def identities(default_tenant):
    for pattern, slug in (("news@shop.example", "marketing"), ("shop.example", "transactional")):
        SendingIdentity.objects.create(
            pattern=pattern,
            tenant=default_tenant,
            stream=Stream.objects.get(tenant=default_tenant, slug=slug),
        )


def rcpt_replies(mta, sender: str, recipients: list[str]) -> dict[str, tuple[int, str]]:
    with mta.smtp() as client:
        assert client.mail(sender)[0] == 250
        return {r: (code, text.decode()) for r in recipients for code, text in [client.rcpt(r)]}


def test_postfix_rejects_suppressed_recipients_and_accepts_the_others(
    postfix,  # noqa: F811 - the fixture imported above
    suppress,
    identities,
):
    suppress("optout@example.org", "unsubscribe")  # commercial mail only
    suppress("gone@example.org", "hard_bounce")  # every stream
    recipients = ["optout@example.org", "gone@example.org", "Clean@Example.org"]
    with policy_server_process() as (_, port):
        mta = postfix(main_cf=relay_config(port))
        marketing = rcpt_replies(mta, "news@shop.example", recipients)
        receipts = rcpt_replies(mta, "receipts@shop.example", recipients)

        message = email.message.EmailMessage()
        message["From"], message["Subject"] = "news@shop.example", "Spring sale"
        message.set_content("Hello")
        with mta.smtp() as client:
            refused = client.send_message(
                message, to_addrs=["optout@example.org", "clean@example.org"]
            )
        delivered = mta.wait_for_log(r"to=<clean@example\.org>.*status=sent")

    assert marketing["optout@example.org"] == (
        554,
        "5.7.1 <optout@example.org>: Recipient address rejected: "
        "Suppressed: unsubscribe (commercial)",
    )
    assert marketing["gone@example.org"][0] == 554
    assert "Suppressed: hard_bounce (global)" in marketing["gone@example.org"][1]
    assert marketing["Clean@Example.org"][0] == 250
    # Transactional mail: a marketing opt-out does not stop it, a hard bounce does.
    assert receipts["optout@example.org"][0] == 250
    assert receipts["gone@example.org"][0] == 554
    assert receipts["Clean@Example.org"][0] == 250
    # A whole message: the suppressed recipient refused, the other one delivered.
    assert list(refused) == ["optout@example.org"] and refused["optout@example.org"][0] == 554
    assert delivered


def test_with_the_policy_server_down_postfix_defers_every_recipient(
    postfix,  # noqa: F811 - the fixture imported above
    default_tenant,
):
    with policy_server_process() as (process, port):
        mta = postfix(main_cf=relay_config(port))
        assert rcpt_replies(mta, "news@shop.example", ["a@example.org"])["a@example.org"][0] == 250
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        # A fresh session: nothing listens on the policy port any more.
        replies = rcpt_replies(mta, "news@shop.example", ["a@example.org"])
    code, text = replies["a@example.org"]
    assert code == 451
    assert text.startswith("4.3.5 ")
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # a temporary refusal: try again later
        with mta.smtp() as client:
            client.sendmail("news@shop.example", ["a@example.org"], b"Subject: x\r\n\r\nx\r\n")


def test_with_the_database_unreachable_commercial_mail_waits(
    postfix,  # noqa: F811 - the fixture imported above
    default_tenant,
):
    unreachable = service_env(
        DATABASE_URL="postgres://postgres@127.0.0.1:1/x", DB_CONNECT_TIMEOUT="1"
    )
    with policy_server_process(unreachable) as (_, port):
        mta = postfix(main_cf=relay_config(port))
        replies = rcpt_replies(mta, "news@shop.example", ["a@example.org"])
    assert replies["a@example.org"] == (
        450,
        "4.4.3 <a@example.org>: Recipient address rejected: "
        "Suppression list unavailable, try again later",
    )
