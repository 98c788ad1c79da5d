"""Recorded opt-outs applied in batches: one statement per layer for a thousand requests, with
exactly the rows applying them one by one leaves, each request applied once however many
workers sweep side by side."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection, connections, transaction

from compliance.consent.models import ConsentRecord, ConsentState
from compliance.models import OptOutRequest
from compliance.webhooks.models import WebhookEvent
from suppression.models import Suppression, SuppressionEvent
from tests.support import require
from tests.unsubscribe.batch_world import build_lists, build_requests, record, snapshot
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.services import optouts

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


def _rows_after(lists, apply) -> dict:
    """Build the requests, apply them with `apply`, read every row; then roll it all back."""
    found = {}
    with pytest.raises(_Rollback), transaction.atomic():
        build_requests(lists)
        apply()
        found.update(snapshot())
        raise _Rollback
    return found


def one_by_one() -> None:
    """The path every opt-out took before batches (and SQLite's still): suppress() per row."""
    pending = UnsubscribeRequest.objects.filter(applied_at__isnull=True)
    for request in pending.order_by("received_at", "pk"):
        optouts._apply_one(request)


def postgresql() -> None:
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")


def test_batches_leave_exactly_the_rows_one_by_one_leaves(default_tenant):
    postgresql()  # SQLite applies one by one: there is nothing to compare
    lists = build_lists(default_tenant)
    expected = _rows_after(lists, one_by_one)
    assert len(expected["requests"]) == 21 and len(expected["webhook_events"]) > 20

    in_one_batch = _rows_after(lists, services.apply_pending_opt_outs)
    in_batches_of_four = _rows_after(lists, lambda: services.apply_pending_opt_outs(batch_size=4))

    def each_inline() -> None:  # the inline path: a batch of one per request
        pending = UnsubscribeRequest.objects.filter(applied_at__isnull=True)
        for request in pending.order_by("received_at", "pk"):
            services.apply_opt_out(request)

    inline = _rows_after(lists, each_inline)
    for name in expected:
        assert in_one_batch[name] == expected[name], name
        assert in_batches_of_four[name] == expected[name], name
        assert inline[name] == expected[name], name


def _request(label: str) -> UnsubscribeRequest:
    return UnsubscribeRequest.objects.get(campaign=label)


def _actions(address: str) -> list[str]:
    return list(
        SuppressionEvent.objects.filter(suppression__address=address)
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_a_mixed_batch_does_what_each_opt_out_asks(default_tenant):
    lists = build_lists(default_tenant)
    build_requests(lists)
    assert services.apply_pending_opt_outs() == 21
    assert not UnsubscribeRequest.objects.filter(applied_at__isnull=True).exists()

    # A new key: added, with its opt-out record, withdrawal and events.
    new = Suppression.objects.get(address="new@example.com")
    assert (new.scope_label, new.reason, new.origin, new.evidence) == (
        "stream:marketing",
        "unsubscribe",
        "recipient",
        _request("new"),
    )
    assert new.evidence_note == "One-click (RFC 8058) from 192.0.2.7"
    assert new.created_at == _request("new").received_at
    opt_out = OptOutRequest.objects.get(address_hash=new.address_hash)
    assert opt_out.provider_due_at == opt_out.received_at + datetime.timedelta(hours=48)
    assert opt_out.propagated_at is None  # the tenant's endpoint still has to take it
    assert set(
        WebhookEvent.objects.filter(address_hash=new.address_hash).values_list(
            "event_type", flat=True
        )
    ) == {"suppression.added", "optout.created", "consent.withdrawn"}

    # Lifted earlier: added again; an entry in force for this reason: left alone.
    assert _actions("lifted@example.com") == ["add", "lift", "readd"]
    assert _actions("listed@example.com") == ["add"]
    # A weightier reason in force stays, and each opt-out of it is in the history; a lighter one
    # gives way to the first, and the second finds nothing left to change.
    assert _actions("complained@example.com") == ["add", "reason", "reason"]
    assert Suppression.objects.get(address="complained@example.com").reason == "complaint"
    assert _actions("manual@example.com") == ["add", "reason"]
    assert Suppression.objects.get(address="manual@example.com").reason == "unsubscribe"
    # The same key twice in one batch: one entry, one opt-out record.
    assert _actions("twice@example.com") == ["add"]
    twice = Suppression.objects.get(address="twice@example.com")
    assert OptOutRequest.objects.filter(address_hash=twice.address_hash).count() == 1
    assert _request("twice-2").scope_label == "stream:marketing"
    # A lifted entry that had lost its address gets it back.
    assert Suppression.objects.filter(address="forgotten@example.com", lifted_at=None).exists()

    # The stream and the whole commercial mail of one address: two entries, and a withdrawal
    # per purpose, the state of each the latest.
    both = Suppression.objects.filter(address="both@example.com")
    assert sorted(both.values_list("scope", flat=True)) == ["commercial", "stream"]
    withdrawals = ConsentRecord.objects.filter(address="both@example.com", action="withdrawn")
    assert sorted(withdrawals.values_list("stream__slug", flat=True)) == [
        "marketing",
        "news",
        "news",
        "old",
    ]
    news_state = ConsentState.objects.get(address_hash=both[0].address_hash, stream=lists.news)
    assert news_state.action == "withdrawn"
    assert news_state.basis == "soft_opt_in"  # the basis withdrawn is the one held
    assert news_state.record.cause.endswith("(one_click, unsubscribe)")
    assert news_state.since == _request("both-all").received_at

    # Thursday evening in New York (Friday in UTC) is due ten business days after Thursday
    # (Veterans Day not counted), at New York's midnight.
    late = OptOutRequest.objects.get(scope_label="stream:marketing", tenant=lists.ny)
    assert late.can_spam_due_at == datetime.datetime(2026, 11, 21, 5, 0, tzinfo=datetime.UTC)
    assert late.propagated_at is not None  # nothing downstream for this tenant

    # Deleted since the click: applied, with nothing to stop.
    for label in ("gone-stream", "gone-topic"):
        assert _request(label).scope_label == "(the list no longer exists)"
    assert not Suppression.objects.filter(address__startswith="gone").exists()


def test_applying_again_applies_nothing_more(default_tenant):
    lists = build_lists(default_tenant)
    build_requests(lists)
    services.apply_pending_opt_outs()
    before = snapshot()
    assert services.apply_pending_opt_outs() == 0
    for request in UnsubscribeRequest.objects.all():  # a redelivered inline apply, too
        services.apply_opt_out(request)
    assert snapshot() == before


def test_a_batch_with_a_deleted_stream_applies_the_rest(default_tenant):
    lists = build_lists(default_tenant)
    record("kept", "kept@example.com", lists.marketing, minutes=0)
    record("gone", "gone@example.com", lists.old, minutes=1)
    record("gone-topic", "gone@example.com", lists.marketing, topic=lists.retired, minutes=2)
    UnsubscribeRequest.objects.filter(campaign="gone").update(stream_id=999_999_999)
    UnsubscribeRequest.objects.filter(campaign="gone-topic").update(topic_id=999_999_999)
    assert services.apply_pending_opt_outs() == 3
    assert list(Suppression.objects.values_list("address", flat=True)) == ["kept@example.com"]
    assert OptOutRequest.objects.count() == 1
    labels = dict(UnsubscribeRequest.objects.values_list("campaign", "scope_label"))
    assert labels == {
        "kept": "stream:marketing",
        "gone": "(the list no longer exists)",
        "gone-topic": "(the list no longer exists)",
    }


def test_an_erased_pending_request_suppresses_its_hash(default_tenant):
    postgresql()
    lists = build_lists(default_tenant)
    request = record("erased", "erased@example.com", lists.marketing, minutes=0)
    UnsubscribeRequest.objects.filter(pk=request.pk).update(address=None)
    assert services.apply_pending_opt_outs() == 1
    entry = Suppression.objects.get()
    assert (entry.address, bytes(entry.address_hash)) == (None, bytes(request.address_hash))
    assert ConsentRecord.objects.get(action="withdrawn").address is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_side_by_side_never_apply_a_request_twice(default_tenant):
    postgresql()
    lists = build_lists(default_tenant)
    for n in range(120):
        # Some addresses twice, so both workers may reach for one entry.
        record(f"r{n}", f"r{n % 90}@example.com", lists.marketing, minutes=n * 70)
    start = threading.Barrier(2)
    applied: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            applied.append(services.apply_pending_opt_outs(batch_size=10))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(applied) == 120 and all(applied)  # every request once, and both took a share
    assert not UnsubscribeRequest.objects.filter(applied_at__isnull=True).exists()
    assert Suppression.objects.count() == 90
    assert SuppressionEvent.objects.count() == 90
    assert OptOutRequest.objects.count() == 90
    assert ConsentRecord.objects.count() == 90


@pytest.mark.django_db(transaction=True)
def test_a_claimed_batch_is_skipped_by_another_worker_not_waited_for(default_tenant):
    postgresql()
    lists = build_lists(default_tenant)
    for n in range(5):
        record(f"r{n}", f"r{n}@example.com", lists.marketing, minutes=n)
    claimed = threading.Event()
    release = threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                optouts._claimed(UnsubscribeRequest.objects.all(), skip_locked=True, oldest=2)
                claimed.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert claimed.wait(30)
        # The two oldest are held by the other transaction: this sweep takes the other three.
        assert services.apply_pending_opt_outs() == 3
        pending = UnsubscribeRequest.objects.filter(applied_at__isnull=True)
        assert sorted(pending.values_list("campaign", flat=True)) == ["r0", "r1"]
    finally:
        release.set()
        thread.join(30)
    assert services.apply_pending_opt_outs() == 2
