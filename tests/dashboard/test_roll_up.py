"""The dashboard's roll-up (dashboard.roll_up): each row written counts once, however often the
task runs, whenever its transaction commits and whenever its figures become final; a run reads
only what is new."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from compliance import propagation
from compliance.dashboard import services, sketch, tasks
from compliance.dashboard.models import DailyRollup, PendingRow, RollupSource
from compliance.models import OptOutRequest
from fbl import ingest
from fbl import services as fbl_services
from fbl.provenance import Provenance
from tests.fbl.messages import dsn
from tests.fbl.test_kumomta import FEEDBACK, bounce, record
from tests.support import require

UTC = datetime.UTC


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def roll_up() -> dict:
    return tasks.roll_up.delay().get()


def figures(tenant=None, *, day: datetime.date | None = None) -> dict:
    """Every figure of the tenant (None: shared), on `day` or added up over every day."""
    rows = DailyRollup.objects.filter(tenant=tenant)
    if day is not None:
        rows = rows.filter(day=day)
    found = dict.fromkeys(
        [
            "opt_outs_received",
            "opt_outs_applied",
            "applied_within_target",
            "applied_within_can_spam",
            "apply_seconds",
            "feedback_reports",
            "bounce_reports",
            "relay_feedback",
            "relay_bounces",
        ],
        0,
    )
    for row in rows:
        for name in found:
            found[name] += getattr(row, name)
    return found


@pytest.fixture
def downstream(monkeypatch):
    """Opt-outs wait for downstream systems, as once a webhook endpoint is set up."""
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)


@pytest.fixture
def opt_out(suppress, default_tenant):
    def make(address: str, *, received: str | None = None, **kwargs) -> OptOutRequest:
        created = {"created_at": utc(received)} if received else {}
        entry = suppress(address, "unsubscribe", **created, **kwargs)
        return OptOutRequest.objects.filter(address_hash=entry.address_hash).latest("pk")

    return make


def stop_clock(row: OptOutRequest, at: str) -> None:
    """Every downstream system acknowledged the opt-out at `at` (as the webhooks do)."""
    OptOutRequest.objects.filter(pk=row.pk).update(propagated_at=utc(at))


@pytest.mark.django_db
def test_each_opt_out_counts_once_however_often_the_roll_up_runs(opt_out, default_tenant):
    for n in range(3):
        opt_out(f"reader{n}@example.com")
    first = roll_up()
    assert first["counted"]["opt_outs"] == 3 and first["caught_up"]
    assert figures(default_tenant)["opt_outs_received"] == 3
    assert figures(default_tenant)["opt_outs_applied"] == 3

    # Nothing new: nothing read, nothing added.
    again = roll_up()
    assert again["counted"] == dict.fromkeys(again["counted"], 0)
    assert figures(default_tenant)["opt_outs_received"] == 3

    # Only the new opt-out is read the next time.
    opt_out("reader3@example.com")
    assert roll_up()["counted"]["opt_outs"] == 1
    assert figures(default_tenant)["opt_outs_received"] == 4


@pytest.mark.django_db
def test_an_opt_out_counts_on_its_day_with_its_time_to_apply_against_both_deadlines(
    opt_out, default_tenant, downstream
):
    # Mon 23 Nov 2026 15:00 UTC: 48-hour target Wed 25 15:00, CAN-SPAM end of Tue 8 Dec.
    quick = opt_out("quick@example.com", received="2026-11-23 15:00")
    slow = opt_out("slow@example.com", received="2026-11-23 16:00")
    late = opt_out("late@example.com", received="2026-11-23 17:00")
    stop_clock(quick, "2026-11-23 15:00:40")  # 40 seconds
    stop_clock(slow, "2026-11-26 16:00")  # 3 days: past the target, within CAN-SPAM
    stop_clock(late, "2026-12-10 17:00")  # past both
    roll_up()

    received = figures(default_tenant, day=datetime.date(2026, 11, 23))
    assert received["opt_outs_received"] == 3
    assert received["opt_outs_applied"] == 1  # the clock of the quick one stopped that day
    assert figures(default_tenant, day=datetime.date(2026, 11, 26))["opt_outs_applied"] == 1
    total = figures(default_tenant)
    assert total["opt_outs_applied"] == 3
    assert total["applied_within_target"] == 1
    assert total["applied_within_can_spam"] == 2
    assert total["apply_seconds"] == 40 + 3 * 86400 + 17 * 86400
    times = sketch.Sketch()
    for row in DailyRollup.objects.all():
        times = times.merge(sketch.Sketch.from_json(row.apply_times))
    assert times.median() == 3 * 86400


@pytest.mark.django_db
def test_an_opt_out_still_going_downstream_counts_when_its_clock_stops(
    opt_out, default_tenant, downstream
):
    row = opt_out("pat@example.com", received="2026-11-23 15:00")
    roll_up()
    assert figures(default_tenant)["opt_outs_received"] == 1
    assert figures(default_tenant)["opt_outs_applied"] == 0
    assert PendingRow.objects.filter(source="opt_out_clocks", row_id=row.pk).exists()

    assert roll_up()["counted"]["opt_out_clocks"] == 0  # still open: still waiting
    stop_clock(row, "2026-11-24 09:00")
    assert roll_up()["counted"]["opt_out_clocks"] == 1
    stopped = figures(default_tenant, day=datetime.date(2026, 11, 24))
    assert stopped["opt_outs_applied"] == stopped["applied_within_target"] == 1
    assert stopped["apply_seconds"] == 18 * 3600
    assert not PendingRow.objects.exists()
    roll_up()
    assert figures(default_tenant)["opt_outs_applied"] == 1


@pytest.mark.django_db
def test_an_opt_out_deleted_while_pending_is_forgotten(opt_out, downstream):
    row = opt_out("pat@example.com")
    roll_up()
    OptOutRequest.objects.filter(pk=row.pk).delete()
    roll_up()
    assert not PendingRow.objects.exists()


@pytest.mark.django_db
def test_imports_count_as_received_but_not_in_the_time_to_apply(opt_out, default_tenant):
    opt_out("imported@example.com", received="2020-01-06 10:00", origin="import")
    opt_out("clicked@example.com")
    roll_up()
    assert figures(default_tenant, day=datetime.date(2020, 1, 6))["opt_outs_received"] == 1
    total = figures(default_tenant)
    assert total["opt_outs_received"] == 2
    assert total["opt_outs_applied"] == 1
    assert total["apply_seconds"] < 60


@pytest.mark.django_db
def test_a_row_committed_below_the_watermark_is_counted_when_it_arrives(opt_out, default_tenant):
    first, missing, third = (opt_out(f"r{n}@example.com") for n in range(3))
    # `missing` stands for a row whose transaction had not committed when the roll-up read.
    saved = {f.attname: getattr(missing, f.attname) for f in OptOutRequest._meta.concrete_fields}
    OptOutRequest.objects.filter(pk=missing.pk).delete()
    roll_up()
    assert figures(default_tenant)["opt_outs_received"] == 2
    source = RollupSource.objects.get(name="opt_outs")
    assert source.last_id == third.pk
    assert [missing.pk, missing.pk] in [gap[:2] for gap in source.gaps]

    OptOutRequest.objects.create(**saved)  # it commits, below the watermark
    assert roll_up()["counted"]["opt_outs"] == 1
    assert figures(default_tenant)["opt_outs_received"] == 3
    gaps = RollupSource.objects.get(name="opt_outs").gaps
    assert not any(first <= missing.pk <= last for first, last, _ in gaps)
    roll_up()
    assert figures(default_tenant)["opt_outs_received"] == 3


@pytest.mark.django_db
def test_a_gap_nobody_fills_is_given_up_after_an_hour(opt_out, monkeypatch):
    rows = [opt_out(f"r{n}@example.com") for n in range(3)]
    OptOutRequest.objects.filter(pk=rows[1].pk).delete()  # a transaction that rolled back
    now = [1_800_000_000.0]
    monkeypatch.setattr(services, "_now", lambda: now[0])
    roll_up()
    gaps = RollupSource.objects.get(name="opt_outs").gaps
    assert any(first <= rows[1].pk <= last for first, last, _ in gaps)
    now[0] += services.GAP_SECONDS + 1
    roll_up()
    assert RollupSource.objects.get(name="opt_outs").gaps == []


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_whose_transaction_commits_late_is_counted(opt_out, default_tenant):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    inserted, release = threading.Event(), threading.Event()

    def slow_import():
        try:
            with transaction.atomic():
                opt_out("slow@example.com")
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=slow_import)
    other.start()
    try:
        assert inserted.wait(10)
        opt_out("quick@example.com")  # a higher id, committed first
        roll_up()
        assert figures(default_tenant)["opt_outs_received"] == 1
    finally:
        release.set()
        other.join()
    roll_up()
    assert figures(default_tenant)["opt_outs_received"] == 2
    roll_up()
    assert figures(default_tenant)["opt_outs_received"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_run_that_finds_another_running_stops_without_counting(opt_out, default_tenant):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    opt_out("pat@example.com")
    roll_up()
    opt_out("sam@example.com")
    locked, release = threading.Event(), threading.Event()

    def other_run():
        try:
            with transaction.atomic():
                list(RollupSource.objects.select_for_update().filter(name="opt_outs"))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=other_run)
    other.start()
    try:
        assert locked.wait(10)
        answer = roll_up()
        assert answer["busy"] and answer["counted"]["opt_outs"] == 0
    finally:
        release.set()
        other.join()
    assert figures(default_tenant)["opt_outs_received"] == 1
    roll_up()
    assert figures(default_tenant)["opt_outs_received"] == 2


@pytest.mark.django_db
def test_a_backlog_is_read_in_batches_across_runs(opt_out, default_tenant):
    for n in range(5):
        opt_out(f"r{n}@example.com")
    one_batch = services.roll_up(batch=2, max_seconds=0)
    assert not one_batch.caught_up
    assert figures(default_tenant)["opt_outs_received"] == 2
    rest = services.roll_up(batch=2)
    assert rest.caught_up and rest.counted["opt_outs"] == 3
    assert figures(default_tenant)["opt_outs_received"] == 5


@pytest.mark.django_db
def test_a_batch_under_one_row_is_refused():
    with pytest.raises(ValueError, match="at least 1 row"):
        services.roll_up(batch=0)


@pytest.mark.django_db
def test_reports_by_mail_count_by_kind_once_processed(make_tenant):
    acme = make_tenant("acme")
    as_acme = Provenance(tenant=acme, operator_level=False, label="acme")
    block = "Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.1\n"
    ingest.receive(dsn(block), source="http", provenance=as_acme)
    # Stored but not yet processed (the worker has not got to it).
    waiting, _ = fbl_services.store_inbound_message(
        dsn(block.replace("gone@", "away@")), source="http", provenance=as_acme
    )
    roll_up()
    assert figures(acme)["bounce_reports"] == 1
    assert PendingRow.objects.filter(source="inbound_messages", row_id=waiting.pk).exists()

    ingest.route(waiting)
    roll_up()
    assert figures(acme)["bounce_reports"] == 2
    assert figures(acme)["feedback_reports"] == 0
    roll_up()
    assert figures(acme)["bounce_reports"] == 2


@pytest.mark.django_db
def test_relay_bounces_and_feedback_count_and_deliveries_do_not(api_client, default_tenant):
    relay = api_client("reports:write")
    feedback = json.loads(json.dumps(FEEDBACK))
    feedback["feedback_report"]["supplemental_trace"] = {"recipient": "annoyed@example.com"}
    delivered = record(recipient="read@example.com", meta={"tenant": "default"})
    answer = relay.post(
        "/api/v1/events/kumomta",
        data=json.dumps([bounce(recipient="gone@example.com"), feedback, delivered]),
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    roll_up()
    total = figures(None)
    assert (total["relay_bounces"], total["relay_feedback"]) == (1, 1)
    today = timezone.now().astimezone(UTC).date()
    assert figures(None, day=today)["relay_bounces"] == 1


def test_the_roll_up_runs_every_minute_under_celery_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["roll-up-dashboard"]
    assert entry["task"] == tasks.roll_up.name == "dashboard.roll_up"
    assert entry["schedule"] == 60
