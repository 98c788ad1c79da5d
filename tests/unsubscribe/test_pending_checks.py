"""A one-click recorded but not applied yet already stops mail (DESIGN.md: a check one second after
the click answers `suppressed`): every read path sees the pending request as the `unsubscribe`
entry it is about to become, and once applied it is counted once, not twice."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import Stream
from suppression import addresses, policy_server, rules, selectors, sql
from suppression.models import Suppression
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims

pytestmark = pytest.mark.django_db

READ = "suppression:read"


@pytest.fixture
def deferred(settings):
    settings.UNSUBSCRIBE_APPLY_INLINE = False


def click(client, link) -> None:
    response = client.post(urlparse(link.url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200


def single(client, address: str, stream: str = "marketing", **more) -> dict:
    answer = client.get(
        "/api/v1/suppressions/check", {"address": address, "stream": stream, **more}
    )
    assert answer.status_code == 200, answer.content
    return answer.json()


def batch(client, addresses: list[str], stream: str = "marketing", **more) -> dict:
    answer = client.post(
        "/api/v1/suppressions/check",
        {"stream": stream, "addresses": addresses, **more},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    return answer.json()


def decisions(client, addresses: list[str]) -> dict:
    answer = client.post(
        "/api/v1/send-decisions",
        {"stream": "marketing", "addresses": addresses, "jurisdiction": "US"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    return {d["address"]: d["reason"] for d in answer.json()["denied"]}


def policy_verdict(default_tenant, address: str, stream: str = "marketing") -> str:
    s = Stream.objects.get(tenant=default_tenant, slug=stream)
    ref = policy_server.StreamRef(
        tenant_id=s.tenant_id,
        tenant_slug=default_tenant.slug,
        stream_id=s.pk,
        slug=s.slug,
        commercial=s.is_commercial,
    )
    [action] = policy_server.check_recipients([(ref, address)], settings.ADDRESS_HASH_KEY.encode())
    return action.verb


def test_a_pending_one_click_is_suppressed_everywhere_at_once(
    client, mint, deferred, api_client, default_tenant
):
    click(client, mint("pat@example.com"))
    request = UnsubscribeRequest.objects.get()
    assert request.applied_at is None and not Suppression.objects.exists()

    relay = api_client(READ)
    assert single(relay, "Pat@Example.com") == {
        "address": "Pat@Example.com",
        "suppressed": True,
        "reason": "unsubscribe",
        "scope": "stream:marketing",
    }
    answer = batch(relay, ["pat@example.com", "other@example.com"])
    assert answer["checked"] == 2
    assert [(s["address"], s["reason"], s["scope"]) for s in answer["suppressed"]] == [
        ("pat@example.com", "unsubscribe", "stream:marketing")
    ]
    pat = addresses.hash_address("pat@example.com", settings.ADDRESS_HASH_KEY.encode()).hex()
    by_hash = relay.post(
        "/api/v1/suppressions/check", {"stream": "marketing", "hashes": [pat]}, format="json"
    ).json()
    assert [(s["hash"], s["reason"]) for s in by_hash["suppressed"]] == [(pat, "unsubscribe")]
    assert policy_verdict(default_tenant, "pat@example.com") == "REJECT"
    assert decisions(api_client("consent:read"), ["pat@example.com", "other@example.com"]) == {
        "pat@example.com": "suppressed"
    }
    # A marketing opt-out never stops a password reset, pending or not.
    assert single(relay, "pat@example.com", stream="transactional")["suppressed"] is False
    assert policy_verdict(default_tenant, "pat@example.com", "transactional") == "DUNNO"

    assert services.apply_pending_opt_outs() == 1
    assert single(relay, "pat@example.com")["suppressed"] is True
    answer = batch(relay, ["pat@example.com"])
    assert len(answer["suppressed"]) == 1  # the entry, and no longer the request besides
    assert Suppression.objects.count() == 1
    assert policy_verdict(default_tenant, "pat@example.com") == "REJECT"


def test_an_address_both_listed_and_pending_is_reported_once(
    client, mint, deferred, api_client, suppress
):
    suppress("pat@example.com", "hard_bounce", scope="global")
    click(client, mint("pat@example.com"))
    answer = batch(api_client(READ), ["pat@example.com", "PAT@example.com"])
    # One verdict per address asked; the widest entry is the one reported.
    assert [(s["address"], s["reason"], s["scope"]) for s in answer["suppressed"]] == [
        ("pat@example.com", "hard_bounce", "global"),
        ("PAT@example.com", "hard_bounce", "global"),
    ]


def test_a_pending_topic_or_commercial_opt_out_blocks_what_its_entry_will(
    client, mint, deferred, api_client, default_tenant, make_topic
):
    marketing = default_tenant.streams.get(slug="marketing")
    offers = make_topic(marketing, "offers")
    make_topic(marketing, "events")
    Stream.objects.create(
        tenant=default_tenant, slug="news", name="News", kind=Stream.Kind.COMMERCIAL
    )
    click(client, mint("topic@example.com", topic=offers))
    relay = api_client(READ)
    assert single(relay, "topic@example.com", topic="offers")["scope"] == "topic:marketing/offers"
    assert single(relay, "topic@example.com", topic="events")["suppressed"] is False
    assert single(relay, "topic@example.com")["suppressed"] is False

    # The landing page's "all commercial mail" reaches every commercial stream.
    services.record_opt_out(
        claims=Claims(
            tenant_id=default_tenant.pk, recipient="all@example.com", stream_id=marketing.pk
        ),
        evidence=services.Evidence(channel="landing_page"),
        breadth="commercial",
    )
    assert single(relay, "all@example.com", stream="news")["scope"] == "commercial"
    assert batch(relay, ["all@example.com"], stream="news")["suppressed"][0]["scope"] == (
        "commercial"
    )
    assert single(relay, "all@example.com", stream="transactional")["suppressed"] is False


def test_a_pending_opt_out_of_another_tenant_blocks_nothing_here(
    client, mint, deferred, api_client, make_tenant
):
    click(client, mint("pat@example.com"))
    other = make_tenant("acme")
    assert single(api_client(READ, tenant=other), "pat@example.com")["suppressed"] is False


def test_the_one_click_stays_one_insert(client, mint, deferred, default_tenant):
    link = mint("pat@example.com")
    with CaptureQueriesContext(connection) as queries:
        click(client, link)
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(writes) == 1 and "unsubscribe_unsubscriberequest" in writes[0]
    marketing = default_tenant.streams.get(slug="marketing")
    assert (
        UnsubscribeRequest.objects.get().scope_key == f"{default_tenant.pk}:stream:{marketing.pk}"
    )


def test_the_orm_path_sees_pending_opt_outs_too(client, mint, deferred, default_tenant):
    """SQLite's path (run here on whatever database the suite has)."""
    click(client, mint("pat@example.com"))
    marketing = default_tenant.streams.get(slug="marketing")
    digest = addresses.address_hash("pat@example.com", settings.ADDRESS_HASH_KEY.encode())
    keys = rules.blocking_keys(tenant_id=default_tenant.pk, stream_id=marketing.pk, commercial=True)
    [row] = sql._blocking_rows_orm([digest], keys, timezone.now())
    assert (row.scope_key, row.reason) == (
        f"{default_tenant.pk}:stream:{marketing.pk}",
        "unsubscribe",
    )
    assert selectors.is_suppressed(stream=marketing, address="pat@example.com").suppressed
