"""Adding endpoints (command and admin), where they may point, and their delivery counts."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks.webhooks import Webhook

from compliance.errors import ServiceError
from compliance.webhooks.models import DownstreamEndpoint, WebhookDelivery
from compliance.webhooks.services import delivery, endpoints
from tests.webhooks.receiver import Behaviour


def add(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("add_downstream_endpoint", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_command_adds_an_endpoint_and_prints_its_secret_last(db, receiver, make_tenant):
    make_tenant("acme")
    lines = add(receiver.url(), "--events", "optout.created,suppression.lifted", "--tenant", "acme")
    endpoint = DownstreamEndpoint.objects.get()
    assert lines[-1] == endpoint.secret and lines[-1].startswith("whsec_")
    Webhook(lines[-1])  # a secret the specification's library accepts
    assert endpoint.event_types == ["optout.created", "suppression.lifted"]
    assert endpoint.tenant.slug == "acme"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--events", "optout.deleted"], "unknown event type optout.deleted"),
        (["--events", ","], "name at least one event type"),
        (["--events", "optout.created", "--tenant", "nobody"], "unknown tenant 'nobody'"),
    ],
)
def test_the_command_refuses_bad_input_with_a_reason(db, receiver, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        add(receiver.url(), *args)
    assert raised.value.returncode == 2
    assert not DownstreamEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://hooks.example.com/x", "must use HTTPS"),
        ("https://127.0.0.1/x", "127.0.0.1, a loopback, private or link-local"),
        ("https://localhost:8443/x", "a loopback, private or link-local"),
        ("https://10.1.2.3/x", "a loopback, private or link-local"),
        ("https://192.168.0.10/x", "a loopback, private or link-local"),
        ("https://169.254.169.254/latest/meta-data", "a loopback, private or link-local"),
        ("https://[::1]/x", "a loopback, private or link-local"),
        ("https://[::ffff:10.0.0.1]/x", "a loopback, private or link-local"),
        ("https://user:pw@hooks.example.com/x", "no user name or password"),
        ("ftp://hooks.example.com/x", "https://host/path"),
    ],
)
def test_private_and_plain_http_targets_are_refused_in_production(db, settings, url, reason):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ServiceError, match=reason):
        endpoints.add_endpoint(url=url, event_types="optout.created")


def test_a_public_https_address_is_accepted(db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint = endpoints.add_endpoint(
        url="https://93.184.215.14/hook", event_types="optout.created"
    )
    assert endpoint.pk


def test_the_setting_allows_loopback_and_http(db, settings, receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert endpoints.add_endpoint(url=receiver.url(), event_types="optout.created").pk


def test_an_endpoint_turned_private_is_not_posted_to(db, settings, receiver, endpoint, suppress):
    hook = endpoint(types="suppression.added")
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # as in production: loopback is refused
    suppress("pat@example.com", "hard_bounce", scope="global")
    delivery.deliver_endpoint(hook.pk)
    assert receiver.at("/hook") == []
    row = WebhookDelivery.objects.get()
    assert "must use HTTPS" in row.last_error and row.attempts == 1


def test_the_admin_adds_an_endpoint_with_a_secret_and_refuses_a_private_one(
    staff_client, settings, receiver
):
    answer = staff_client.post(
        "/admin/webhooks/downstreamendpoint/add/",
        {"url": receiver.url(), "event_types": ["optout.created"], "is_active": "on"},
    )
    assert answer.status_code == 302, answer.content.decode()
    endpoint = DownstreamEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    page = staff_client.get(f"/admin/webhooks/downstreamendpoint/{endpoint.pk}/change/")
    assert endpoint.secret in page.content.decode()

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    refused = staff_client.post(
        "/admin/webhooks/downstreamendpoint/add/",
        {"url": "https://10.0.0.5/hook", "event_types": ["optout.created"], "is_active": "on"},
    )
    assert refused.status_code == 200
    assert "loopback, private or link-local" in refused.content.decode()
    assert DownstreamEndpoint.objects.count() == 1


def test_webhook_status_counts_delivered_pending_and_dead(endpoint, receiver, suppress, settings):
    settings.WEBHOOK_RETRY_DELAYS = []
    good = endpoint("/good", types="suppression.added")
    bad = endpoint("/bad", types="suppression.added")
    receiver.behaviours["/bad"] = Behaviour(status=[500])
    suppress("a@example.com", "hard_bounce", scope="global")
    suppress("b@example.com", "hard_bounce", scope="global")
    delivery.deliver_endpoint(good.pk)
    delivery.deliver_endpoint(bad.pk)
    suppress("c@example.com", "hard_bounce", scope="global")

    out = io.StringIO()
    call_command("webhook_status", "--json", stdout=out)
    report = {row["url"]: row for row in json.loads(out.getvalue())}
    assert (report[good.url]["delivered"], report[good.url]["pending"]) == (2, 1)
    assert (report[bad.url]["dead"], report[bad.url]["pending"]) == (2, 1)
    assert report[bad.url]["events"] == ["suppression.added"]


def test_erasure_takes_the_address_out_of_stored_events(endpoint, suppress):
    from django.conf import settings as django_settings

    from compliance.webhooks.erasure import forget_in_events
    from compliance.webhooks.models import WebhookEvent
    from suppression import addresses
    from suppression.erasure_steps import Subject

    endpoint()
    suppress("pat@example.com", "unsubscribe")
    suppress("other@example.com", "unsubscribe")
    digest = addresses.address_hash("pat@example.com", django_settings.ADDRESS_HASH_KEY.encode())
    while forget_in_events(Subject("pat@example.com", digest, None), 1):
        pass
    for event in WebhookEvent.objects.filter(address_hash=digest):
        assert "pat@example.com" not in event.body
        assert json.loads(event.body)["data"]["address_hash"] == digest.hex()
    assert all(
        "other@example.com" in e.body for e in WebhookEvent.objects.exclude(address_hash=digest)
    )
