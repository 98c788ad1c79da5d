"""The change feed: every add and lift, in order, with a cursor that never skips a change."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from tests.support import require

READ = "suppression:read"


def read_feed(client, since="", *, expect_some=True):
    """One page of the feed. The feed holds changes back while any older transaction in the
    PostgreSQL cluster is still open (another session's work), so give that a moment."""
    deadline = time.monotonic() + 15
    while True:
        answer = client.get("/api/v1/suppressions/changes", {"since": since, "limit": 1000})
        assert answer.status_code == 200, answer.content
        page = answer.json()
        if page["changes"] or not expect_some or time.monotonic() > deadline:
            return page
        time.sleep(0.2)


def drain_until(client, since, count, seen):
    """Read on until `count` changes were seen in all (other sessions may hold the feed back)."""
    deadline = time.monotonic() + 15
    while len(seen) < count and time.monotonic() < deadline:
        batch, since = drain(client, since)
        seen += batch
        time.sleep(0.1)
    return seen, since


def drain(client, since=""):
    changes = []
    while True:
        page = read_feed(client, since, expect_some=False)
        if not page["changes"]:
            return changes, since
        changes += page["changes"]
        since = page["next"]


# The feed shows only changes of finished transactions, so these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_feed_lists_adds_and_lifts_in_order_and_resumes_from_the_cursor(api_client, suppress):
    from suppression import services

    client = api_client(READ)
    first = suppress("a@example.com", "unsubscribe")
    suppress("b@example.com", "hard_bounce")
    page = read_feed(client)
    assert [(c["address"], c["action"], c["suppressed"]) for c in page["changes"]] == [
        ("a@example.com", "added", True),
        ("b@example.com", "added", True),
    ]
    assert page["changes"][1]["scope"] == "global"
    assert len(page["changes"][0]["address_hash"]) == 64

    services.lift(suppression=first, note="mistake")
    later = read_feed(client, page["next"])
    assert [(c["address"], c["action"], c["suppressed"]) for c in later["changes"]] == [
        ("a@example.com", "lifted", False)
    ]
    assert read_feed(client, later["next"], expect_some=False)["changes"] == []


@pytest.mark.django_db
def test_feed_refuses_a_malformed_cursor(api_client):
    answer = api_client(READ).get("/api/v1/suppressions/changes", {"since": "yesterday"})
    assert answer.status_code == 400
    assert "cursor" in answer.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_tenant_key_reads_only_its_own_and_shared_changes(api_client, suppress, make_tenant):
    other = make_tenant("other")
    suppress("mine@example.com", "manual")
    suppress("theirs@example.com", "manual", tenant=other)
    suppress("shared@example.com", "hard_bounce", tenant=None)
    page = read_feed(api_client(READ, tenant=other))
    # shared entries by hash only (tests/suppression/test_tenant_visibility.py)
    assert {c["address"] for c in page["changes"]} == {"theirs@example.com", None}


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_late_is_not_skipped(api_client, suppress):
    """Event ids are handed out at insert and transactions commit in another order; a reader
    polling in between must still receive every change, once, in feed order."""
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    client = api_client(READ)
    suppress("before@example.com", "manual")
    seen, cursor = drain_until(client, "", 1, [])

    inserted, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                suppress("slow@example.com", "manual")  # gets the lower event id
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    suppress("fast@example.com", "manual")  # higher id, committed first

    during, cursor = drain(client, cursor)
    seen += during
    release.set()
    writer.join(10)
    seen, cursor = drain_until(client, cursor, 3, seen)

    addresses = [c["address"] for c in seen]
    assert sorted(addresses) == sorted(
        ["before@example.com", "slow@example.com", "fast@example.com"]
    )
    assert "fast@example.com" not in [c["address"] for c in during]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_a_polling_reader_agree(api_client, suppress):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    client = api_client(READ)
    writers, per_writer = 4, 25
    done = threading.Event()

    def write(n):
        try:
            for i in range(per_writer):
                suppress(f"w{n}-{i}@example.com", "manual")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    seen, cursor = [], ""
    while not done.is_set():
        batch, cursor = drain(client, cursor)
        seen += batch
        if not any(t.is_alive() for t in threads):
            done.set()
    seen, cursor = drain_until(client, cursor, writers * per_writer, seen)
    addresses = [c["address"] for c in seen]
    assert len(addresses) == writers * per_writer
    assert len(set(addresses)) == len(addresses)
    cursors = [tuple(int(p) for p in c["cursor"].split(".")) for c in seen]
    assert cursors == sorted(cursors)
