"""Opt-outs, suppressions and withdrawals reach downstream systems as signed webhooks, retried
until acknowledged, in order per address, and only then is an opt-out's clock stopped."""

from __future__ import annotations

import datetime
import time

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from compliance.models import OptOutRequest
from compliance.webhooks.models import DeadLetter, WebhookDelivery
from compliance.webhooks.services import delivery
from suppression import services as suppression_services
from tests.webhooks.receiver import Behaviour

Status = WebhookDelivery.Status


def test_an_opt_out_is_posted_signed_so_a_standard_webhooks_library_verifies_it(
    endpoint, receiver, suppress
):
    hook = endpoint(types="optout.created")
    suppress("pat@example.com", "unsubscribe", origin="api")
    request = OptOutRequest.objects.get()
    assert request.propagated_at is None  # a downstream system still has to apply it

    delivery.deliver_endpoint(hook.pk)

    (sent,) = receiver.at("/hook")
    payload = Webhook(hook.secret).verify(sent.body, sent.headers)
    assert payload["type"] == "optout.created"
    assert payload["id"] == sent.headers["webhook-id"]
    data = payload["data"]
    assert data["address"] == "pat@example.com"
    assert data["address_hash"] == bytes(request.address_hash).hex()
    assert data["tenant"] == "default"
    assert data["scope"] == "commercial"
    assert data["channel"] == "api"
    assert data["received_at"] and data["provider_due_at"] and data["can_spam_due_at"]
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        Webhook("whsec_" + "A" * 43 + "=").verify(sent.body, sent.headers)
    request.refresh_from_db()
    assert request.propagated_at is not None


def test_a_tampered_body_fails_verification(endpoint, receiver, suppress):
    hook = endpoint(types="suppression.added")
    suppress("pat@example.com", "hard_bounce", scope="global")
    delivery.deliver_endpoint(hook.pk)
    (sent,) = receiver.at("/hook")
    with pytest.raises(WebhookVerificationError):
        Webhook(hook.secret).verify(sent.body.replace("pat@", "bob@"), sent.headers)


def test_without_endpoints_an_opt_out_is_propagated_when_applied(suppress):
    suppress("pat@example.com", "unsubscribe")
    request = OptOutRequest.objects.get()
    assert request.propagated_at == request.applied_at


def test_the_clock_stops_only_when_every_endpoint_has_acknowledged(
    endpoint, receiver, suppress, fast_retries
):
    good = endpoint("/good", types="optout.created")
    bad = endpoint("/bad", types="optout.created")
    receiver.behaviours["/bad"] = Behaviour(status=[503])
    suppress("pat@example.com", "unsubscribe")

    delivery.deliver_endpoint(good.pk)
    delivery.deliver_endpoint(bad.pk)
    assert OptOutRequest.objects.get().propagated_at is None

    receiver.behaviours["/bad"] = Behaviour(status=[200])
    delivery.deliver_endpoint(bad.pk)
    assert OptOutRequest.objects.get().propagated_at is not None


@pytest.mark.parametrize(
    "behaviour, error",
    [
        (Behaviour(status=[500]), "answered 500"),
        (Behaviour(close=True), "ConnectionError"),
        (Behaviour(status=[302], location="http://elsewhere.invalid/x"), "not followed"),
        (Behaviour(delay=1.5), "timed out"),
    ],
    ids=["500", "closed", "redirect", "timeout"],
)
def test_failures_are_retried_then_dead_lettered(
    endpoint, receiver, suppress, settings, behaviour, error
):
    settings.WEBHOOK_RETRY_DELAYS = [0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    hook = endpoint(types="suppression.added")
    receiver.behaviours["/hook"] = behaviour
    suppress("pat@example.com", "hard_bounce", scope="global")

    for attempt in (1, 2):
        delivery.deliver_endpoint(hook.pk)
        row = WebhookDelivery.objects.get()
        assert (row.status, row.attempts) == (Status.PENDING, attempt)
        assert error in row.last_error
    delivery.deliver_endpoint(hook.pk)

    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == (Status.DEAD, 3)
    assert list(DeadLetter.objects.filter(status=Status.DEAD)) == [row]
    assert len(receiver.at("/hook")) == 3  # tried three times, the redirect never followed


def test_a_retry_waits_for_its_delay(endpoint, receiver, suppress, settings):
    settings.WEBHOOK_RETRY_DELAYS = [3600]
    hook = endpoint(types="suppression.added")
    receiver.behaviours["/hook"] = Behaviour(status=[500, 200])
    suppress("pat@example.com", "hard_bounce", scope="global")
    delivery.deliver_endpoint(hook.pk)
    delivery.deliver_endpoint(hook.pk)
    assert len(receiver.at("/hook")) == 1  # not due for an hour
    row = WebhookDelivery.objects.get()
    assert row.next_attempt_at > timezone.now() + datetime.timedelta(minutes=59)
    assert delivery.due_endpoints(timezone.now() + datetime.timedelta(hours=2)) == [hook.pk]


def test_dead_letters_are_retried_from_the_admin(
    endpoint, receiver, suppress, staff_client, fast_retries
):
    hook = endpoint(types="optout.created")
    receiver.behaviours["/hook"] = Behaviour(status=[500])
    suppress("pat@example.com", "unsubscribe")
    for _ in range(3):
        delivery.deliver_endpoint(hook.pk)
    dead = WebhookDelivery.objects.get(status=Status.DEAD)

    page = staff_client.get("/admin/webhooks/deadletter/")
    assert page.status_code == 200
    assert "optout.created" in page.content.decode()

    receiver.behaviours["/hook"] = Behaviour(status=[200])
    answer = staff_client.post(
        "/admin/webhooks/deadletter/",
        {"action": "retry", "_selected_action": [dead.pk]},
        follow=True,
    )
    assert "1 dead letters queued again" in answer.content.decode()
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (Status.PENDING, 0)
    delivery.deliver_endpoint(hook.pk)
    dead.refresh_from_db()
    assert dead.status == Status.DELIVERED
    assert OptOutRequest.objects.get().propagated_at is not None


def test_events_for_one_address_arrive_in_the_order_they_happened(
    endpoint, receiver, suppress, settings
):
    settings.WEBHOOK_RETRY_DELAYS = [3600]
    hook = endpoint(types="suppression.added,suppression.lifted")
    # Pat's first event is refused once: pat's later ones must wait for it. The batch is posted
    # concurrently, so the refusal is chosen by what it carries, not by arrival.
    receiver.behaviours["/hook"] = Behaviour(refuse_first="pat@example.com")
    row = suppress("pat@example.com", "unsubscribe")
    suppression_services.lift(suppression=row, note="asked to be back")
    suppress("pat@example.com", "unsubscribe")
    suppress("other@example.com", "unsubscribe")

    delivery.deliver_endpoint(hook.pk)  # pat's first is refused; other's goes through
    assert sorted((r.json["type"], r.json["data"]["address"]) for r in receiver.at("/hook")) == [
        ("suppression.added", "other@example.com"),
        ("suppression.added", "pat@example.com"),
    ]
    # An hour later the retry falls due, and pat's events follow it in order.
    WebhookDelivery.objects.filter(status=Status.PENDING).update(next_attempt_at=timezone.now())
    delivery.deliver_endpoint(hook.pk)
    pats = [
        r.json["type"]
        for r in receiver.at("/hook")
        if r.json["data"]["address"] == "pat@example.com"
    ]
    assert pats == [
        "suppression.added",
        "suppression.added",
        "suppression.lifted",
        "suppression.added",
    ]


def test_a_slow_endpoint_costs_one_timeout_and_holds_up_no_other(
    endpoint, receiver, suppress, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOK_BATCH = 5
    slow = endpoint("/slow", types="suppression.added")
    fast = endpoint("/fast", types="suppression.added")
    receiver.behaviours["/slow"] = Behaviour(delay=3)
    for n in range(20):
        suppress(f"user{n}@example.com", "hard_bounce", scope="global")

    started = time.monotonic()
    tally = delivery.deliver_endpoint(slow.pk)
    assert time.monotonic() - started < 2  # one batch timed out, then it stopped trying
    assert tally.delivered == 0
    delivery.deliver_endpoint(fast.pk)
    assert WebhookDelivery.objects.filter(endpoint=fast, status=Status.DELIVERED).count() == 20


def test_a_tenants_endpoint_gets_only_that_tenants_events(
    endpoint, receiver, suppress, make_tenant, default_tenant
):
    other = make_tenant("acme")
    mine = endpoint("/mine", types="suppression.added", tenant=default_tenant)
    everyone = endpoint("/all", types="suppression.added")
    suppress("pat@example.com", "unsubscribe")
    suppress("pat@example.com", "unsubscribe", tenant=other)
    suppress("gone@example.com", "hard_bounce", scope="global", tenant=None)
    delivery.deliver_endpoint(mine.pk)
    delivery.deliver_endpoint(everyone.pk)
    assert [r.json["data"]["tenant"] for r in receiver.at("/mine")] == ["default"]
    assert sorted(str(r.json["data"]["tenant"]) for r in receiver.at("/all")) == [
        "None",
        "acme",
        "default",
    ]


def test_a_lift_and_a_consent_withdrawal_are_events_too(endpoint, receiver, suppress, api_client):
    hook = endpoint()
    row = suppress("pat@example.com", "unsubscribe")
    suppression_services.lift(suppression=row, note="resubscribed")
    delivery.deliver_endpoint(hook.pk)
    types = [r.json["type"] for r in receiver.at("/hook")]
    # The opt-out is also a withdrawal of consent to the purposes it covers.
    assert types[0] == "suppression.added"
    assert sorted(types[1:3]) == ["consent.withdrawn", "optout.created"]
    assert types[-1] == "suppression.lifted"
    lifted = receiver.at("/hook")[-1].json["data"]
    assert lifted["address"] == "pat@example.com" and lifted["lifted_at"]


def test_consent_withdrawn_through_the_api_is_sent(endpoint, receiver, api_client):
    hook = endpoint(types="consent.withdrawn")
    client = api_client("consent:write")
    answer = client.post(
        "/api/v1/consents",
        {
            "address": "pat@example.com",
            "purpose": "marketing",
            "action": "withdraw",
            "basis": "consent",
            "method": "web_form",
            "evidence": {
                "collected_at": "2026-11-02T10:15:00Z",
                "ip": "192.0.2.10",
                "user_agent": "Mozilla/5.0",
                "page_url": "https://acme.example/preferences",
                "form_id": "footer",
                "wording": "Stop sending me the newsletter.",
                "privacy_notice_version": "2026-03",
            },
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    delivery.deliver_endpoint(hook.pk)
    (sent,) = receiver.at("/hook")
    assert sent.json["data"]["address"] == "pat@example.com"
    assert sent.json["data"]["stream"] == "marketing"


def test_an_endpoint_that_is_down_never_blocks_the_opt_out(endpoint, suppress, receiver):
    hook = endpoint()
    receiver.__exit__(None, None, None)  # nothing listens any more
    suppress("pat@example.com", "unsubscribe")  # recorded at once, nothing waits for delivery
    assert OptOutRequest.objects.count() == 1
    delivery.deliver_endpoint(hook.pk)
    assert "ConnectionError" in WebhookDelivery.objects.first().last_error


@pytest.mark.django_db(transaction=True)
def test_a_committed_opt_out_is_delivered_without_anyone_asking(
    endpoint, receiver, suppress, settings
):
    settings.WEBHOOK_KICK_SECONDS = 0
    endpoint(types="optout.created")
    suppress("pat@example.com", "unsubscribe")
    (sent,) = receiver.wait_for("/hook", 1)
    assert sent.json["type"] == "optout.created"
    end = time.monotonic() + 5
    while OptOutRequest.objects.get().propagated_at is None and time.monotonic() < end:
        time.sleep(0.05)
    assert OptOutRequest.objects.get().propagated_at is not None
