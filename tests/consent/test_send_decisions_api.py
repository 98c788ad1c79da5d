"""POST /api/v1/send-decisions end to end: suppressions, the ledger and the decision table."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from compliance.consent import services as consent
from compliance.models import OptOutRequest, Tenant
from suppression import services as suppression
from suppression.models import Origin, Suppression
from suppression.scopes import parse_scope

pytestmark = pytest.mark.django_db

READ = "consent:read"
URL = "/api/v1/send-decisions"


def grant(
    tenant: Tenant,
    address: str,
    *,
    purpose="marketing",
    basis="consent",
    age_days=1,
    action="grant",
):
    collected = timezone.now() - datetime.timedelta(days=age_days)
    consent.record(
        tenant,
        [
            {
                "action": action,
                "basis": basis,
                "method": "api",
                "address": address,
                "purpose": purpose,
                "evidence": {"collected_at": collected.isoformat(), "wording": "Send me news"},
            }
        ],
    )


def one_click(tenant: Tenant, address: str) -> Suppression:
    """An opt-out as the one-click POST records it: the list's entry and, through the signal,
    the ledger's withdrawal."""
    return suppression.suppress(
        target=parse_scope(tenant, None, reason="unsubscribe"),
        address=address,
        reason="unsubscribe",
        origin=Origin.RECIPIENT,
        channel=OptOutRequest.Channel.ONE_CLICK,
    ).suppression


def ask(client, addresses, **fields):
    answer = client.post(URL, {"stream": "marketing", "addresses": addresses, **fields}, "json")
    assert answer.status_code == 200, answer.content
    return answer.json()


def reasons(body) -> dict[str, str]:
    return {d["address"]: d["reason"] for d in body["denied"]}


def test_an_eu_tenant_may_mail_only_those_who_granted_consent(api_client, default_tenant):
    grant(default_tenant, "yes@example.com")
    body = ask(api_client(READ), ["Yes@Example.com", "unknown@example.com"])
    assert body["checked"] == 2
    assert body["allowed"] == 1
    assert body["denied"] == [
        {"address": "unknown@example.com", "reason": "no_consent", "rule": "opt_in_eu"}
    ]
    assert body["invalid"] == []


def test_a_suppressed_address_is_denied_with_the_blocking_entry(api_client, suppress):
    suppress("gone@example.com", "hard_bounce", scope="global")
    suppress("off@example.com", "unsubscribe", scope="stream:marketing")
    body = ask(api_client(READ), ["gone@example.com", "off@example.com"], jurisdiction="US")
    assert body["allowed"] == 0
    assert sorted(body["denied"], key=lambda d: d["address"]) == [
        {
            "address": "gone@example.com",
            "reason": "suppressed",
            "rule": "commercial_suppressed",
            "suppression_reason": "hard_bounce",
            "scope": "global",
        },
        {
            "address": "off@example.com",
            "reason": "suppressed",
            "rule": "commercial_suppressed",
            "suppression_reason": "unsubscribe",
            "scope": "stream:marketing",
        },
    ]


def test_a_one_click_opt_out_withdraws_consent_even_once_its_entry_is_lifted(
    api_client, default_tenant
):
    grant(default_tenant, "pat@example.com")
    client = api_client(READ)
    entry = one_click(default_tenant, "pat@example.com")
    assert reasons(ask(client, ["pat@example.com"])) == {"pat@example.com": "suppressed"}
    suppression.lift(suppression=entry, note="list clean-up")
    for jurisdiction in ("DE", "US"):
        body = ask(client, ["pat@example.com"], jurisdiction=jurisdiction)
        assert body["denied"] == [
            {
                "address": "pat@example.com",
                "reason": "consent_withdrawn",
                "rule": "commercial_withdrawn",
            }
        ]
    grant(default_tenant, "pat@example.com", age_days=0)  # given again, later
    assert ask(client, ["pat@example.com"])["allowed"] == 1


def test_the_us_allows_commercial_mail_without_consent(api_client, default_tenant):
    body = ask(api_client(READ), ["a@example.com", "b@example.com"], jurisdiction="US")
    assert (body["allowed"], body["denied"]) == (2, [])


def test_the_tenants_jurisdiction_applies_unless_the_request_names_one(api_client, default_tenant):
    default_tenant.jurisdiction = "US"
    default_tenant.save()
    client = api_client(READ)
    assert ask(client, ["a@example.com"])["allowed"] == 1
    assert reasons(ask(client, ["a@example.com"], jurisdiction="gb")) == {
        "a@example.com": "no_consent"
    }


def test_casl_implied_consent_lapses_after_two_years(api_client, default_tenant):
    grant(default_tenant, "recent@example.com", basis="soft_opt_in", age_days=300)
    grant(default_tenant, "old@example.com", basis="soft_opt_in", age_days=800)
    body = ask(api_client(READ), ["recent@example.com", "old@example.com"], jurisdiction="CA")
    assert body["allowed"] == 1
    assert body["denied"] == [
        {"address": "old@example.com", "reason": "no_consent", "rule": "casl_implied_expired"}
    ]


def test_a_topic_is_decided_by_the_latest_of_its_own_and_its_streams_state(
    api_client, default_tenant, make_topic
):
    make_topic(default_tenant.streams.get(slug="marketing"), "offers")
    grant(default_tenant, "stream@example.com", age_days=2)
    grant(default_tenant, "topic@example.com", purpose="marketing/offers")
    # Both states: the later one decides, whichever purpose it is for.
    grant(default_tenant, "topic-off@example.com", age_days=3)
    grant(default_tenant, "topic-off@example.com", purpose="marketing/offers", action="withdraw")
    grant(default_tenant, "stream-off@example.com", purpose="marketing/offers", age_days=3)
    grant(default_tenant, "stream-off@example.com", action="withdraw")
    client = api_client(READ)
    everyone = [
        "stream@example.com",
        "topic@example.com",
        "topic-off@example.com",
        "stream-off@example.com",
    ]
    on_topic = ask(client, everyone, topic="offers")
    assert on_topic["allowed"] == 2
    assert reasons(on_topic) == {
        "topic-off@example.com": "consent_withdrawn",
        "stream-off@example.com": "consent_withdrawn",
    }
    # The stream as a whole: a topic's grant is no grant for it, nor its withdrawal one.
    assert reasons(ask(client, everyone)) == {
        "topic@example.com": "no_consent",
        "stream-off@example.com": "consent_withdrawn",
    }


def test_transactional_mail_needs_no_consent_and_stops_only_for_never_mail(api_client, suppress):
    suppress("opted-out@example.com", "unsubscribe", scope="commercial")
    suppress("bounced@example.com", "hard_bounce", scope="global", tenant=None)
    suppress("erased@example.com", "erasure", scope="global", tenant=None)
    body = ask(
        api_client(READ),
        ["opted-out@example.com", "bounced@example.com", "erased@example.com", "new@x.org"],
        stream="transactional",
    )
    assert body["allowed"] == 2
    assert {d["address"]: (d["reason"], d["rule"]) for d in body["denied"]} == {
        "bounced@example.com": ("suppressed", "transactional_never_mail"),
        "erased@example.com": ("erased", "erased"),
    }


def test_invalid_addresses_are_listed_apart(api_client):
    body = ask(api_client(READ), ["ok@example.com", "bad@@x", ""], jurisdiction="US")
    assert body["checked"] == 3
    assert body["allowed"] == 1
    assert [i["address"] for i in body["invalid"]] == ["bad@@x", ""]
    assert all(i["reason"] for i in body["invalid"])


def test_the_same_address_twice_is_answered_for_each_spelling(api_client):
    body = ask(api_client(READ), ["a@example.com", "A@EXAMPLE.COM"])
    assert body["allowed"] == 0
    assert sorted(reasons(body)) == ["A@EXAMPLE.COM", "a@example.com"]


def test_a_key_bound_to_a_tenant_cannot_ask_for_another(api_client, make_tenant):
    acme = make_tenant("acme")
    make_tenant("globex")
    answer = api_client(READ, tenant=acme).post(
        URL, {"stream": "marketing", "addresses": ["a@example.com"], "tenant": "globex"}, "json"
    )
    assert answer.status_code == 403


def test_another_tenants_consent_never_allows_this_tenants_mail(
    api_client, default_tenant, make_tenant
):
    acme = make_tenant("acme")
    grant(acme, "shared@example.com")
    assert reasons(ask(api_client(READ), ["shared@example.com"])) == {
        "shared@example.com": "no_consent"
    }
    assert ask(api_client(READ, tenant=acme), ["shared@example.com"])["allowed"] == 1
    # An unbound key naming the tenant gets that tenant's answer.
    assert ask(api_client(READ), ["shared@example.com"], tenant="acme")["allowed"] == 1


def test_another_tenants_opt_out_does_not_stop_this_tenants_mail(
    api_client, default_tenant, make_tenant
):
    acme = make_tenant("acme")
    grant(default_tenant, "pat@example.com")
    one_click(acme, "pat@example.com")
    assert ask(api_client(READ), ["pat@example.com"])["allowed"] == 1
    assert reasons(ask(api_client(READ, tenant=acme), ["pat@example.com"])) == {
        "pat@example.com": "suppressed"
    }


def test_more_than_100000_addresses_are_refused(api_client):
    answer = api_client(READ).post(
        URL, {"stream": "marketing", "addresses": ["a@example.com"] * 100_001}, "json"
    )
    assert answer.status_code == 413
    assert "100000" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"jurisdiction": "XX"}, 400, "use one of"),
        ({"stream": "nosuch"}, 400, "unknown stream 'nosuch'"),
        ({"topic": "nosuch"}, 400, "unknown topic 'nosuch'"),
        ({"tenant": "nosuch"}, 404, "unknown tenant 'nosuch'"),
        ({"addresses": "a@example.com"}, 400, "list of strings"),
        ({"jurisdiction": ["EU"]}, 400, "must be strings"),
    ],
)
def test_bad_requests_are_refused_with_a_message(api_client, fields, status, message):
    body = {"stream": "marketing", "addresses": ["a@example.com"], **fields}
    answer = api_client(READ).post(URL, body, "json")
    assert answer.status_code == status
    assert message in answer.json()["detail"]


def test_an_unknown_jurisdiction_is_answered_with_the_known_ones(api_client):
    answer = api_client(READ).post(
        URL, {"stream": "marketing", "addresses": [], "jurisdiction": "Narnia"}, "json"
    )
    assert answer.status_code == 400
    assert "CA" in answer.json()["detail"] and "US" in answer.json()["detail"]


def test_the_key_needs_consent_read(api_client):
    answer = api_client("suppression:read").post(
        URL, {"stream": "marketing", "addresses": []}, "json"
    )
    assert answer.status_code == 403
    assert "consent:read" in answer.json()["detail"]


def test_send_decisions_take_a_batch_body_up_to_the_batch_limit(api_client):
    from compliance.parsers import BATCH_MAX_BYTES

    client = api_client("consent:read")
    post = {"path": "/api/v1/send-decisions", "content_type": "application/json"}
    over = client.generic("POST", data=b"{}", CONTENT_LENGTH=str(BATCH_MAX_BYTES + 1), **post)
    assert over.status_code == 413
    # 3 MB of addresses: more than Django lets a form post.
    batch = [f"name.surname{i}@example-company.com" for i in range(65_000)]
    body = json.dumps({"stream": "marketing", "addresses": batch, "jurisdiction": "US"})
    answer = client.generic("POST", data=body, **post)
    assert answer.status_code == 200, answer.content[:300]
    assert answer.json()["checked"] == 65_000
