"""Opt-outs applied by the worker in batches reach downstream systems as one by one would: each
with its signed events, sent after the batch commits, its clock stopped once every endpoint has
them."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from standardwebhooks.webhooks import Webhook

from compliance.models import OptOutRequest
from unsubscribe import services


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_one_clicks_is_delivered_after_it_commits(
    client, mint, endpoint, receiver, settings
):
    settings.UNSUBSCRIBE_APPLY_INLINE = False
    settings.WEBHOOK_KICK_SECONDS = 0
    hook = endpoint()  # every event type
    addresses = [f"reader{n}@example.com" for n in range(3)]
    for address in addresses:
        response = client.post(urlparse(mint(address).url).path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    assert receiver.at("/hook") == []  # recorded, not applied: nothing to send yet

    assert services.apply_pending_opt_outs() == 3
    sent = receiver.wait_for("/hook", 9)  # per opt-out: the entry, the opt-out, the withdrawal
    verifier = Webhook(hook.secret)
    payloads = [verifier.verify(r.body, r.headers) for r in sent]
    assert sorted((p["type"], p["data"]["address"]) for p in payloads) == sorted(
        (kind, address)
        for address in addresses
        for kind in ("suppression.added", "optout.created", "consent.withdrawn")
    )
    created = [p["data"] for p in payloads if p["type"] == "optout.created"]
    assert {d["scope"] for d in created} == {"stream:marketing"}
    assert {d["channel"] for d in created} == {"one_click"}
    assert all(d["received_at"] and d["applied_at"] and d["can_spam_due_at"] for d in created)

    end = time.monotonic() + 5
    while OptOutRequest.objects.filter(propagated_at=None).exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert not OptOutRequest.objects.filter(propagated_at=None).exists()
