"""Whose input reaches whom (fbl/provenance.py): a tenant's reports and relay events act for that
tenant only, shared "never mail" entries come only from sources the operator trusts, and a report
cannot suppress the world."""

from __future__ import annotations

import json

import pytest

from compliance.models import SendingIdentity, Stream
from fbl import ingest, services
from fbl.models import InboundMessage, RelayEvent
from suppression.models import Suppression
from suppression.selectors import is_suppressed
from tests.fbl.messages import ENCLOSED, dsn
from tests.fbl.test_kumomta import bounce as kumo_bounce
from tests.fbl.test_report_actions import bounce, enclosed_for

pytestmark = pytest.mark.django_db

Status = InboundMessage.Status


@pytest.fixture
def two_tenants(default_tenant, make_tenant):
    """Tenant A (acme) and tenant B (the default tenant), each with its streams."""
    acme = make_tenant("acme")
    return {
        "a": acme,
        "a_transactional": Stream.objects.get(tenant=acme, slug="transactional"),
        "b_transactional": Stream.objects.get(tenant=default_tenant, slug="transactional"),
        "b_marketing": Stream.objects.get(tenant=default_tenant, slug="marketing"),
    }


def blocked(stream, address: str) -> bool:
    return is_suppressed(stream=stream, address=address).suppressed


def post_report(client, raw: bytes):
    return client.post("/api/v1/reports", data=raw, content_type="message/rfc822")


def many_recipients(count: int, *, domain: str = "victims.example") -> bytes:
    blocks = [
        f"Final-Recipient: rfc822; user{i}@{domain}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
        for i in range(count)
    ]
    return dsn(*blocks, enclosed=ENCLOSED.replace("news@sender.example", "x@stranger.example"))


# --- 1. a tenant's input never changes another tenant's mail -------------------------------------


def test_a_bounce_posted_with_a_tenant_key_blocks_that_tenants_mail_only(api_client, two_tenants):
    client = api_client("reports:write", tenant=two_tenants["a"])
    answer = post_report(client, bounce("gone@example.com", "5.1.1", "550 5.1.1 user unknown"))
    assert answer.status_code == 201, answer.content
    assert blocked(two_tenants["a_transactional"], "gone@example.com")
    # Tenant B's password resets still go out: A's key cannot make a shared entry.
    assert not blocked(two_tenants["b_transactional"], "gone@example.com")
    entry = Suppression.objects.get()
    assert (entry.tenant, entry.scope, entry.reason) == (two_tenants["a"], "global", "hard_bounce")


def test_a_kumomta_bounce_posted_with_a_tenant_key_stays_with_that_tenant(api_client, two_tenants):
    client = api_client("reports:write", tenant=two_tenants["a"])
    record = kumo_bounce(recipient="gone@example.com", meta={"stream": "marketing"})
    answer = client.post(
        "/api/v1/events/kumomta", data=json.dumps(record), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["outcomes"] == {"suppressed": 1}
    assert blocked(two_tenants["a_transactional"], "gone@example.com")
    assert not blocked(two_tenants["b_transactional"], "gone@example.com")


def test_a_relay_key_marked_operator_level_makes_shared_hard_bounces(
    make_api_key, two_tenants, client
):
    api_key, plain = make_api_key("reports:write", tenant=two_tenants["a"])
    api_key.operator_level = True
    api_key.save()
    record = kumo_bounce(recipient="gone@example.com", meta={"stream": "marketing"})
    answer = client.post(
        "/api/v1/events/kumomta",
        data=json.dumps(record),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {plain}",
    )
    assert answer.status_code == 200, answer.content
    assert blocked(two_tenants["b_transactional"], "gone@example.com")
    assert Suppression.objects.get().tenant is None


def test_an_unbound_key_and_the_mta_pipe_make_shared_hard_bounces(api_client, two_tenants):
    post_report(api_client("reports:write"), bounce("one@example.com", "5.1.1", "550 no such user"))
    ingest.receive(bounce("two@example.com", "5.1.1", "550 no such user"), source="pipe")[0]
    for address in ("one@example.com", "two@example.com"):
        assert blocked(two_tenants["a_transactional"], address)
        assert blocked(two_tenants["b_transactional"], address)


def test_a_report_naming_another_tenants_token_acts_for_the_posting_tenant_only(
    api_client, two_tenants, mint
):
    # B's token (the default tenant's link) inside a report that A's key posts.
    link = mint("token-owner@example.com")
    raw = dsn(
        "Final-Recipient: rfc822; token-owner@example.com\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n",
        enclosed=enclosed_for("token-owner@example.com", list_unsubscribe=link.list_unsubscribe),
    )
    post_report(api_client("reports:write", tenant=two_tenants["a"]), raw)
    assert not blocked(two_tenants["b_marketing"], "token-owner@example.com")
    assert Suppression.objects.get().tenant == two_tenants["a"]


def test_soft_bounces_of_one_tenant_do_not_count_towards_anothers_threshold(
    api_client, two_tenants, settings
):
    settings.SOFT_BOUNCE_THRESHOLD = 1
    client = api_client("reports:write", tenant=two_tenants["a"])
    post_report(client, bounce("full@example.com", "4.2.2", "452 4.2.2 mailbox full", "delayed"))
    entry = Suppression.objects.get()
    assert (entry.tenant, entry.reason) == (two_tenants["a"], "soft_bounce")
    assert not blocked(two_tenants["b_marketing"], "full@example.com")


def test_reposting_another_tenants_report_reveals_nothing(api_client, two_tenants):
    raw = bounce("gone@example.com", "5.1.1", "550 5.1.1 user unknown")
    first = post_report(api_client("reports:write"), raw).json()
    answer = post_report(api_client("reports:write", tenant=two_tenants["a"]), raw)
    assert answer.status_code == 201  # a message of A's own, not "you posted this before"
    body = answer.json()
    assert body["id"] != first["id"] and body["duplicate"] is False
    assert InboundMessage.objects.get(pk=body["id"]).tenant == two_tenants["a"]


def test_a_tenant_cannot_pre_empt_another_sources_relay_events(api_client, two_tenants):
    record = kumo_bounce(recipient="gone@example.com", meta={"stream": "marketing"})
    body = json.dumps(record)
    acme = api_client("reports:write", tenant=two_tenants["a"])
    operator = api_client("reports:write")
    acme.post("/api/v1/events/kumomta", data=body, content_type="application/json")
    answer = operator.post("/api/v1/events/kumomta", data=body, content_type="application/json")
    assert answer.json()["outcomes"] == {"suppressed": 1}  # not taken for a duplicate
    assert RelayEvent.objects.count() == 2


# --- 2. a report cannot suppress the world --------------------------------------------------------


def test_a_bounce_listing_thousands_of_strangers_suppresses_only_a_few(db, settings):
    settings.REPORT_UNTIED_RECIPIENT_LIMIT = 10
    message = ingest.receive(many_recipients(500), source="pipe")[0]
    assert Suppression.objects.count() == 10
    assert message.status == Status.PENDING_REVIEW
    assert "490 recipient(s) not tied to mail we sent held for staff review" in message.note


def test_staff_accepting_a_held_bounce_acts_on_every_recipient(db, settings, django_user_model):
    settings.REPORT_UNTIED_RECIPIENT_LIMIT = 2
    message = ingest.receive(many_recipients(5), source="pipe")[0]
    assert Suppression.objects.count() == 2
    reviewer = django_user_model.objects.create_user("reviewer", is_staff=True)
    services.accept(message, user=reviewer)
    assert Suppression.objects.count() == 5


def test_recipients_tied_to_our_mail_are_never_held(db, settings, make_tenant):
    settings.REPORT_UNTIED_RECIPIENT_LIMIT = 0
    tenant = make_tenant("acme")
    SendingIdentity.objects.create(
        pattern="sender.example",
        tenant=tenant,
        stream=Stream.objects.get(tenant=tenant, slug="marketing"),
    )
    # The enclosed message came from a sending identity of ours: every recipient is tied.
    blocks = [
        f"Final-Recipient: rfc822; user{i}@example.com\nAction: failed\nStatus: 5.1.1\n"
        for i in range(3)
    ]
    message = ingest.receive(dsn(*blocks), source="pipe")[0]
    assert message.status == Status.PROCESSED
    assert Suppression.objects.count() == 3


def test_a_verp_return_path_ties_the_recipient(db, settings):
    settings.REPORT_UNTIED_RECIPIENT_LIMIT = 0
    raw = bounce("alice@example.com", "5.1.1", "550 5.1.1 user unknown").replace(
        b"To: news@sender.example", b"To: bounces+alice=example.com@sender.example"
    )
    message = ingest.receive(raw, source="pipe")[0]
    assert message.status == Status.PROCESSED
    assert Suppression.objects.get().address == "alice@example.com"


def test_an_envelope_recipient_verp_address_ties_the_recipient(db, settings):
    settings.REPORT_UNTIED_RECIPIENT_LIMIT = 0
    raw = bounce("alice@example.com", "5.1.1", "550 5.1.1 user unknown")
    message = ingest.receive(
        raw, source="pipe", envelope_recipient="bounces+alice=example.com@sender.example"
    )[0]
    assert message.status == Status.PROCESSED
    assert Suppression.objects.get().address == "alice@example.com"


# --- bodies are size-checked before they are read ----------------------------------------------


class Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize(
    ("url", "content_type"),
    [("/api/v1/reports", "message/rfc822"), ("/api/v1/events/kumomta", "application/json")],
)
def test_an_oversized_body_is_refused_from_its_length_alone(api_client, url, content_type):
    client = api_client("reports:write")
    answer = client.generic(
        "POST",
        url,
        content_type=content_type,
        CONTENT_LENGTH=str(300 * 1024 * 1024),
        **{"wsgi.input": Unreadable()},
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_large"
    assert not InboundMessage.objects.exists()
