"""The deadline sweep (compliance.sweep_deadlines): staff get one mail each time open opt-outs
reach a graver state (target ends soon, past the 48-hour target, CAN-SPAM deadline soon,
overdue), never the same state twice, and nothing about opt-outs already propagated."""

from __future__ import annotations

import datetime
import logging
import threading

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.db import connection, transaction

from compliance import alerts, deadlines, propagation, tasks
from compliance.deadlines import OptOutState
from compliance.models import OptOutRequest
from tests.support import require

UTC = datetime.UTC
# Received Mon 23 Nov 2026 15:00 UTC: 48-hour target Wed 25 15:00, CAN-SPAM end of Tue 8 Dec.
RECEIVED = "2026-11-23 15:00"


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    def set_to(text: str) -> None:
        monkeypatch.setattr(deadlines, "_now", lambda: utc(text))

    set_to(RECEIVED)
    return set_to


@pytest.fixture
def downstream(monkeypatch):
    """Opt-outs wait for downstream systems, as once a webhook endpoint is set up."""
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)


@pytest.fixture
def opt_out(suppress, downstream):
    def make(address: str = "pat@example.com", *, received: str = RECEIVED, **kwargs):
        entry = suppress(address, "unsubscribe", created_at=utc(received), **kwargs)
        return OptOutRequest.objects.filter(address_hash=entry.address_hash).latest("pk")

    return make


@pytest.fixture
def officer(django_user_model):
    """A staff user given the permission to receive deadline alerts through a group."""
    user = django_user_model.objects.create_user(
        "officer", "officer@example.com", "pw", is_staff=True
    )
    group = Group.objects.create(name="compliance officers")
    group.permissions.add(Permission.objects.get(codename="receive_deadline_alerts"))
    user.groups.add(group)
    return user


def sweep() -> int:
    return tasks.sweep_deadlines.delay().get()


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


def test_staff_are_mailed_once_per_state_and_never_twice_for_the_same(clock, opt_out, officer):
    row = opt_out()
    assert sweep() == 0  # on time
    steps = [
        ("2026-11-24 10:00", "1 opt-out near the 48-hour target"),
        ("2026-11-25 16:00", "1 opt-out past the 48-hour target"),
        ("2026-12-07 09:00", "1 opt-out near the CAN-SPAM deadline"),
        ("2026-12-09 00:00", "1 opt-out overdue"),
    ]
    for now, subject in steps:
        clock(now)
        assert sweep() == 1
        assert sweep() == 0  # the same state again: no mail
        assert subjects()[-1] == subject
    assert len(mail.outbox) == 4
    assert mail.outbox[0].to == ["officer@example.com"]
    row.refresh_from_db()
    assert row.alert_state == OptOutState.OVERDUE
    clock("2027-01-15 00:00")  # overdue for weeks: still told only once
    assert sweep() == 0
    assert len(mail.outbox) == 4


def test_a_sweep_after_a_long_pause_mails_only_the_gravest_state(clock, opt_out, officer):
    opt_out()
    clock("2026-12-10 00:00")
    assert sweep() == 1
    assert subjects() == ["1 opt-out overdue"]


def test_an_opt_out_propagated_in_time_is_never_mailed(clock, opt_out, officer):
    row = opt_out()
    OptOutRequest.objects.filter(pk=row.pk).update(propagated_at=utc("2026-11-23 15:05"))
    for now in ("2026-11-24 10:00", "2026-11-26 10:00", "2026-12-09 10:00"):
        clock(now)
        assert sweep() == 0
    assert mail.outbox == []


def test_an_opt_out_applied_without_downstream_systems_is_done_at_once(clock, suppress, officer):
    suppress("pat@example.com", "unsubscribe", created_at=utc(RECEIVED))
    assert OptOutRequest.objects.get().propagated_at is not None
    clock("2026-12-09 10:00")
    assert sweep() == 0
    assert mail.outbox == []


def test_one_mail_lists_every_opt_out_that_rose_without_any_address(
    clock, opt_out, officer, make_tenant
):
    acme = make_tenant("acme")
    late = opt_out("late@example.com", received="2026-11-20 09:00", scope="stream:marketing")
    missed = [opt_out(f"missed{n}@example.com", received="2026-11-23 09:00") for n in range(3)]
    soon = opt_out("new@example.com", tenant=acme, received="2026-11-25 09:00")
    clock("2026-11-25 12:00")
    assert sweep() == 5
    (message,) = mail.outbox
    assert message.subject == "4 opt-outs past the 48-hour target, 1 near the 48-hour target"
    # Each by id, state, tenant, scope, channel, times and admin page; the gravest first.
    body = message.body
    assert body.index(f"Opt-out #{late.pk}: past the 48-hour target") < body.index(
        f"Opt-out #{soon.pk}: 48-hour target ends soon"
    )
    for row in [late, *missed, soon]:
        assert f"/admin/compliance/optoutrequest/{row.pk}/change/" in body
    assert "tenant:          Default (default)" in body
    assert "tenant:          Acme (acme)" in body
    assert "scope:           stream:marketing" in body
    assert "channel:         API" in body
    assert "received:        2026-11-20 09:00 UTC" in body
    assert "48-hour target:  2026-11-22 09:00 UTC" in body
    assert "CAN-SPAM due:    2026-12-08 00:00 UTC (10 business days)" in body
    assert "@example.com" not in body


def test_the_mail_counts_each_state_gravest_first(clock, opt_out, officer):
    opt_out("old@example.com", received="2026-11-09 09:00")  # CAN-SPAM: end of Tue 24 Nov
    opt_out("a@example.com", received="2026-11-23 09:00")
    opt_out("b@example.com", received="2026-11-23 10:00")
    opt_out("c@example.com", received="2026-11-23 11:00")
    clock("2026-11-25 12:00")
    assert sweep() == 4
    assert subjects() == ["1 opt-out overdue, 3 past the 48-hour target"]


def test_times_are_shown_in_the_tenants_zone(clock, opt_out, officer, make_tenant):
    tenant = make_tenant("nyc")
    tenant.time_zone = "America/New_York"
    tenant.save()
    opt_out(tenant=tenant, received="2026-12-05 04:30")  # Fri 4 Dec 23:30 in New York
    clock("2026-12-18 12:00")  # due at the end of Fri 18 Dec there
    assert sweep() == 1
    body = mail.outbox[0].body
    assert "received:        2026-12-04 23:30 EST" in body
    assert "CAN-SPAM due:    2026-12-19 00:00 EST" in body
    assert "CAN-SPAM deadline ends soon" in body
    assert mail.outbox[0].subject == "1 opt-out near the CAN-SPAM deadline"


def test_recipients_are_the_setting_and_users_with_the_permission(
    clock, opt_out, officer, django_user_model, settings
):
    settings.STAFF_ALERT_EMAILS = ["Compliance@Example.org", "officer@example.com"]
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    django_user_model.objects.create_user("analyst", "analyst@example.com", "pw", is_staff=True)
    gone = django_user_model.objects.create_superuser("gone", "gone@example.com", "pw")
    gone.is_active = False
    gone.save()
    direct = django_user_model.objects.create_user("direct", "direct@example.com", "pw")
    direct.user_permissions.add(Permission.objects.get(codename="receive_deadline_alerts"))
    django_user_model.objects.create_superuser("nomail", "", "pw")
    opt_out()
    clock("2026-11-26 10:00")
    sweep()
    assert mail.outbox[0].to == [
        "Compliance@Example.org",
        "officer@example.com",
        "direct@example.com",
        "root@example.com",
    ]


def test_with_nobody_to_tell_nothing_is_recorded_until_someone_can_be(
    clock, opt_out, django_user_model, caplog
):
    row = opt_out()
    clock("2026-11-26 10:00")
    with caplog.at_level(logging.WARNING, logger="compliance.alerts"):
        assert sweep() == 0
    assert "nobody receives deadline alerts" in caplog.text
    assert mail.outbox == []
    row.refresh_from_db()
    assert row.alert_state == OptOutState.ON_TIME
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    assert sweep() == 1
    assert subjects() == ["1 opt-out past the 48-hour target"]


def test_a_mail_that_cannot_be_sent_records_nothing_and_is_tried_again(
    clock, opt_out, officer, monkeypatch
):
    row = opt_out()
    clock("2026-11-26 10:00")

    def down(*args, **kwargs):
        raise ConnectionRefusedError("the SMTP server is down")

    with monkeypatch.context() as patched:
        patched.setattr(alerts, "send_mail", down)
        with pytest.raises(ConnectionRefusedError):
            sweep()
    row.refresh_from_db()
    assert row.alert_state == OptOutState.ON_TIME
    assert sweep() == 1
    assert subjects() == ["1 opt-out past the 48-hour target"]


def test_the_sweep_runs_under_celery_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-opt-out-deadlines"]
    assert entry["task"] == tasks.sweep_deadlines.name == "compliance.sweep_deadlines"
    assert entry["schedule"] == 300


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_another_sweep_is_mailing_about_is_skipped_not_mailed_twice(
    clock, opt_out, officer
):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    row = opt_out()
    clock("2026-11-26 10:00")
    locked, release = threading.Event(), threading.Event()

    def other_sweep():
        with transaction.atomic():
            list(OptOutRequest.objects.select_for_update().filter(pk=row.pk))
            locked.set()
            release.wait(10)
        connection.close()

    other = threading.Thread(target=other_sweep)
    other.start()
    try:
        assert locked.wait(10)
        assert sweep() == 0  # skipped, not waited for
    finally:
        release.set()
        other.join()
    assert mail.outbox == []
    assert sweep() == 1
