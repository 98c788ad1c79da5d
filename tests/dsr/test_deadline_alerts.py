"""Data-subject requests due soon or overdue (dsr.sweep_deadlines): staff are mailed once per
change of state, never twice for the same, and not about requests already closed. An extension
is a new due day, so its states are mailed afresh."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail

from compliance import deadlines
from compliance.deadlines import RequestState
from compliance.dsr import services, tasks
from compliance.dsr.models import DataSubjectRequest

UTC = datetime.UTC


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    def set_to(text: str) -> None:
        monkeypatch.setattr(deadlines, "_now", lambda: utc(text))

    return set_to


@pytest.fixture
def officer(django_user_model):
    return django_user_model.objects.create_superuser("officer", "officer@example.com", "pw")


@pytest.fixture
def request_due_8_january(db, default_tenant):
    """An access request received Tue 8 Dec 2026, due Fri 8 Jan 2027."""
    request = services.open_request(address="pat@example.com", kind="access", tenant=default_tenant)
    DataSubjectRequest.objects.filter(pk=request.pk).update(
        received_at=utc("2026-12-08 10:00"), due=datetime.date(2027, 1, 8)
    )
    request.refresh_from_db()
    mail.outbox.clear()
    return request


def sweep() -> int:
    return tasks.sweep_deadlines.delay().get()


def test_staff_are_told_once_it_is_due_soon_and_once_it_is_overdue(
    clock, request_due_8_january, officer
):
    request = request_due_8_january
    clock("2027-01-05 12:00")
    assert sweep() == 0
    clock("2027-01-07 12:00")  # due on the next business day
    assert sweep() == 1
    assert sweep() == 0
    clock("2027-01-09 00:00")
    assert sweep() == 1
    clock("2027-02-01 00:00")
    assert sweep() == 0
    assert [m.subject for m in mail.outbox] == [
        "1 data-subject request due soon",
        "1 data-subject request overdue",
    ]
    body = mail.outbox[1].body
    assert f"Data-subject request #{request.pk}: overdue" in body
    assert "kind:      Access (Art. 15)" in body
    assert "due:       2027-01-08 (UTC)" in body
    assert f"/admin/dsr/datasubjectrequest/{request.pk}/change/" in body
    assert "pat@example.com" not in body
    request.refresh_from_db()
    assert request.alert_state == RequestState.OVERDUE


@pytest.mark.parametrize("close", ["refuse", "fulfil"])
def test_a_closed_request_is_not_mailed(clock, request_due_8_january, officer, close):
    request = request_due_8_january
    if close == "refuse":
        services.refuse(request, reason="not the requester's address")
    else:
        services.fulfil(request)
    clock("2027-01-09 12:00")
    assert sweep() == 0
    assert mail.outbox == []


def test_an_extended_request_is_told_of_again_when_its_new_due_day_nears(
    clock, request_due_8_january, officer
):
    request = request_due_8_january
    clock("2027-01-07 12:00")
    assert sweep() == 1
    services.extend(request, months=1, reason="a large account to search")
    request.refresh_from_db()
    assert request.due == datetime.date(2027, 2, 8)
    assert sweep() == 0  # on time again
    clock("2027-02-05 12:00")  # Fri: the next business day is Mon 8 Feb
    assert sweep() == 1
    assert "extended by 1 month(s)" in mail.outbox[-1].body
    assert len(mail.outbox) == 2


def test_the_request_sweep_runs_under_celery_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-request-deadlines"]
    assert entry["task"] == tasks.sweep_deadlines.name == "dsr.sweep_deadlines"
    assert entry["schedule"] == 300
