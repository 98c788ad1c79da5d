"""Tenants cannot read each other's recipients: a key bound to a tenant sees its own entries with
their addresses, entries shared by every tenant as hashes only (blocked in checks), and nothing
of other tenants."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support import wait_until_the_feed_shows_every_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def lists(suppress, make_tenant, default_tenant):
    """A shared hard bounce with evidence, one entry of acme's own and one of the default
    tenant's."""
    acme = make_tenant("acme")
    shared = suppress(
        "shared@example.com",
        "hard_bounce",
        tenant=None,
        evidence_note="bounce from mx.victim.example for another tenant's campaign",
    )
    own = suppress("own@example.com", "unsubscribe", tenant=acme)
    other = suppress("other@example.com", "complaint", tenant=default_tenant)
    return {"acme": acme, "shared": shared, "own": own, "other": other}


@pytest.fixture
def acme_client(api_client, lists):
    return api_client("suppression:read", tenant=lists["acme"])


def test_a_bound_key_lists_shared_entries_as_hashes_only(acme_client, lists):
    rows = acme_client.get("/api/v1/suppressions/").json()["results"]
    by_hash = {row["address_hash"]: row for row in rows}
    shared = by_hash[bytes(lists["shared"].address_hash).hex()]
    assert shared["address"] is None
    assert shared["evidence_note"] == ""
    own = by_hash[bytes(lists["own"].address_hash).hex()]
    assert own["address"] == "own@example.com"
    assert bytes(lists["other"].address_hash).hex() not in by_hash


def test_a_bound_key_reads_a_shared_entry_without_its_address(acme_client, lists):
    row = acme_client.get(f"/api/v1/suppressions/{lists['shared'].pk}/").json()
    assert row["address"] is None and row["evidence_note"] == ""
    assert acme_client.get(f"/api/v1/suppressions/{lists['other'].pk}/").status_code == 404


def test_an_unbound_key_still_sees_every_address(api_client, lists):
    rows = api_client("suppression:read").get("/api/v1/suppressions/").json()["results"]
    assert {r["address"] for r in rows} == {
        "shared@example.com",
        "own@example.com",
        "other@example.com",
    }


def test_a_bound_key_checks_shared_entries_as_blocked(acme_client, lists):
    answer = acme_client.get(
        "/api/v1/suppressions/check",
        {"address": "shared@example.com", "stream": "transactional"},
    ).json()
    assert answer["suppressed"] is True
    assert set(answer) == {"address", "suppressed", "reason", "scope"}


def test_a_bound_keys_address_export_holds_only_its_own_entries(acme_client, lists):
    response = acme_client.get("/api/v1/suppressions/export")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["email"] for row in rows] == ["own@example.com"]


def test_a_bound_keys_hash_export_carries_shared_entries_as_hashes(acme_client, lists):
    response = acme_client.get("/api/v1/suppressions/export", {"format": "hashes"})
    text = b"".join(response.streaming_content).decode()
    assert bytes(lists["shared"].address_hash).hex() in text
    assert bytes(lists["other"].address_hash).hex() not in text
    assert "@" not in text


# The feed shows only changes of finished transactions, so this test commits for real.
@pytest.mark.django_db(transaction=True)
def test_the_change_feed_shows_a_bound_key_shared_changes_by_hash_only(acme_client, lists):
    wait_until_the_feed_shows_every_change()
    changes = acme_client.get("/api/v1/suppressions/changes").json()["changes"]
    by_hash = {c["address_hash"]: c for c in changes}
    assert by_hash[bytes(lists["shared"].address_hash).hex()]["address"] is None
    assert by_hash[bytes(lists["own"].address_hash).hex()]["address"] == "own@example.com"
    assert bytes(lists["other"].address_hash).hex() not in by_hash


def test_a_bound_key_asking_by_hash_sees_what_it_would_by_address(acme_client, lists):
    # Own entries, and shared ones; never another tenant's, whoever holds its hash.
    hashes = {name: bytes(lists[name].address_hash).hex() for name in ("shared", "own", "other")}
    answer = acme_client.post(
        "/api/v1/suppressions/check",
        {"stream": "marketing", "hashes": list(hashes.values())},
        format="json",
    ).json()
    assert {s["hash"]: s["reason"] for s in answer["suppressed"]} == {
        hashes["shared"]: "hard_bounce",
        hashes["own"]: "unsubscribe",
    }
