"""Deadline arithmetic (compliance/deadlines.py): CAN-SPAM's 10 US business days around
holidays and weekends, the 48-hour target, both counted in the tenant's time zone, and where an
open opt-out or data-subject request stands as the clock moves."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from compliance import checks, deadlines
from compliance.deadlines import OptOutPolicy, OptOutState, RequestState
from compliance.models import Tenant

UTC = datetime.UTC
NEW_YORK = OptOutPolicy(time_zone="America/New_York")


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def new_york(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=NEW_YORK.zone)


# --- business days ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "after_one", "why"),
    [
        ("2026-11-25", "2026-11-27", "Thanksgiving, Thu 26 Nov 2026"),
        ("2026-12-24", "2026-12-28", "Christmas, Fri 25 Dec 2026, then the weekend"),
        ("2027-12-23", "2027-12-27", "Christmas on Sat 25 Dec 2027 is observed on Fri 24"),
        ("2027-12-30", "2028-01-03", "New Year on Sat 1 Jan 2028 is observed on Fri 31 Dec 2027"),
        ("2026-07-02", "2026-07-06", "Independence Day on Sat 4 Jul 2026 is observed on Fri 3"),
        ("2026-11-27", "2026-11-30", "a Friday: the weekend does not count"),
        ("2026-11-28", "2026-11-30", "a Saturday: the next business day is Monday"),
        ("2026-11-30", "2026-12-01", "an ordinary Monday"),
    ],
)
def test_the_next_business_day_skips_weekends_and_observed_federal_holidays(start, after_one, why):
    assert deadlines.business_days_after(day(start), 1) == day(after_one), why


@pytest.mark.parametrize(
    ("holiday", "business"),
    [
        ("2026-11-26", False),  # Thanksgiving
        ("2026-12-25", False),  # Christmas on a Friday
        ("2027-12-24", False),  # observed for Christmas on a Saturday
        ("2027-12-25", False),  # the Saturday itself
        ("2027-12-31", False),  # observed for New Year 2028 (a Saturday)
        ("2026-07-03", False),  # observed for Independence Day on a Saturday
        ("2026-12-24", True),  # Christmas Eve is a working day
        ("2026-12-31", True),  # so is New Year's Eve, when New Year is on a weekday
    ],
)
def test_business_days_follow_the_observed_day_rule(holiday, business):
    assert deadlines.is_business_day(day(holiday)) is business


def test_ten_business_days_count_past_thanksgiving_and_two_weekends():
    # Tue 24, Wed 25, (Thu 26 Thanksgiving), Fri 27, Mon 30 Nov, Tue 1 ... Tue 8 Dec.
    assert deadlines.business_days_after(day("2026-11-23"), 10) == day("2026-12-08")


def test_ten_business_days_count_past_christmas_and_new_year():
    # Received Mon 21 Dec 2026: Christmas (Fri 25) and New Year (Fri 1 Jan 2027) do not count.
    assert deadlines.business_days_after(day("2026-12-21"), 10) == day("2027-01-06")


def test_an_opt_out_received_on_a_holiday_counts_from_the_next_business_day():
    on_thanksgiving = deadlines.opt_out_due(utc("2026-11-26 12:00"))
    the_day_before = deadlines.opt_out_due(utc("2026-11-25 12:00"))
    # Day one of both is Fri 27: the holiday is not a business day. Day ten is Thu 10 Dec.
    assert on_thanksgiving.can_spam_due_at == the_day_before.can_spam_due_at
    assert on_thanksgiving.can_spam_due_at == utc("2026-12-11 00:00")


# --- time zones --------------------------------------------------------------------------------


def test_an_opt_out_late_on_friday_in_new_york_is_fridays_though_utc_says_saturday():
    received = new_york("2026-12-04 23:30")  # Sat 5 Dec 04:30 UTC
    assert received.astimezone(UTC).date() == day("2026-12-05")
    assert deadlines.local_date(received, NEW_YORK) == day("2026-12-04")
    due = deadlines.opt_out_due(received, NEW_YORK)
    # Ten business days after Fri 4 Dec: Fri 18 Dec, which ends at midnight in New York.
    assert due.can_spam_due_at == new_york("2026-12-19 00:00")
    assert due.can_spam_due_at == utc("2026-12-19 05:00")


def test_the_zone_decides_the_day_and_so_the_deadline():
    received = new_york("2026-12-03 23:30")  # Thursday there, Friday in UTC
    in_new_york = deadlines.opt_out_due(received, NEW_YORK)
    in_utc = deadlines.opt_out_due(received, OptOutPolicy())
    assert in_new_york.can_spam_due_at == new_york("2026-12-18 00:00")  # end of Thu 17 Dec
    assert in_utc.can_spam_due_at == utc("2026-12-19 00:00")  # end of Fri 18 Dec in UTC
    # The 48-hour target is 48 hours whatever the zone.
    assert (
        in_new_york.provider_due_at
        == in_utc.provider_due_at
        == received + (datetime.timedelta(hours=48))
    )


def test_a_deadline_across_the_end_of_daylight_saving_time_ends_at_local_midnight():
    received = new_york("2026-10-26 10:00")  # EDT, UTC-4; clocks go back on Sun 1 Nov
    due = deadlines.opt_out_due(received, NEW_YORK)
    # Tue 27 ... Fri 30 Oct, Mon 2 ... Fri 6 Nov, Mon 9 Nov (Veterans Day is Wed 11).
    assert due.can_spam_due_at == new_york("2026-11-10 00:00")
    assert due.can_spam_due_at == utc("2026-11-10 05:00")  # EST, UTC-5


def test_a_deadline_across_the_start_of_daylight_saving_time_ends_at_local_midnight():
    received = new_york("2027-03-12 10:00")  # EST; clocks go forward on Sun 14 Mar 2027
    due = deadlines.opt_out_due(received, NEW_YORK)
    assert due.can_spam_due_at == new_york("2027-03-27 00:00")  # end of Fri 26 Mar
    assert due.can_spam_due_at == utc("2027-03-27 04:00")  # EDT, UTC-4


def test_the_48_hour_target_is_48_real_hours_across_a_clock_change():
    # Received Saturday 12:00 EDT, as the database hands it over (in UTC).
    received = new_york("2026-10-31 12:00").astimezone(UTC)
    due = deadlines.opt_out_due(received, NEW_YORK)
    assert due.provider_due_at == utc("2026-11-02 16:00")
    assert due.provider_due_at.astimezone(NEW_YORK.zone).hour == 11  # EST by then


def test_a_tenant_may_hold_itself_to_fewer_business_days_and_hours():
    strict = OptOutPolicy(time_zone="Europe/Berlin", business_days=5, target_hours=24)
    received = utc("2026-11-25 10:00")  # Wed, 11:00 in Berlin
    due = deadlines.opt_out_due(received, strict)
    assert due.provider_due_at == utc("2026-11-26 10:00")
    # Fri 27, Mon 30, Tue 1, Wed 2, Thu 3 Dec (US holidays still count: CAN-SPAM is US law).
    assert due.can_spam_due_at == datetime.datetime(2026, 12, 4, tzinfo=strict.zone)


# --- states over time -------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """Set the deadlines' clock: clock("2026-11-24 10:00") (UTC)."""

    def set_to(text: str) -> None:
        monkeypatch.setattr(deadlines, "_now", lambda: utc(text))

    return set_to


RECEIVED = utc("2026-11-23 15:00")  # Monday; 48 hours: Wed 25 15:00; CAN-SPAM: end of Tue 8 Dec


@pytest.mark.parametrize(
    ("now", "state"),
    [
        ("2026-11-23 16:00", OptOutState.ON_TIME),
        ("2026-11-24 10:00", OptOutState.TARGET_SOON),  # the target ends before Wed is over
        ("2026-11-25 14:59", OptOutState.TARGET_SOON),
        ("2026-11-25 15:00", OptOutState.TARGET_MISSED),
        ("2026-12-04 12:00", OptOutState.TARGET_MISSED),  # Fri: next business day is Mon 7
        ("2026-12-07 09:00", OptOutState.DUE_SOON),  # ends with Tue 8, the next business day
        ("2026-12-08 23:59", OptOutState.DUE_SOON),
        ("2026-12-09 00:00", OptOutState.OVERDUE),
    ],
)
def test_an_open_opt_out_grows_graver_as_the_clock_moves(clock, now, state):
    clock(now)
    due = deadlines.opt_out_due(RECEIVED)
    assert deadlines.opt_out_state(due) == state


def test_states_only_rise_over_an_opt_outs_life(clock):
    due = deadlines.opt_out_due(RECEIVED)
    seen = []
    moment = RECEIVED
    while moment < utc("2026-12-10 00:00"):
        seen.append(deadlines.opt_out_state(due, now=moment))
        moment += datetime.timedelta(hours=1)
    assert seen == sorted(seen)
    assert set(seen) == set(OptOutState)


def test_the_warning_window_is_counted_in_business_days_over_a_holiday_weekend(clock):
    # Due at the end of Mon 28 Dec 2026; on Thu 24 Dec the next business day is that Monday
    # (Christmas Friday and the weekend do not count), so it is already due soon.
    due = deadlines.opt_out_due(utc("2026-12-11 09:00"))
    assert due.can_spam_due_at == utc("2026-12-29 00:00")
    assert deadlines.opt_out_state(due, now=utc("2026-12-23 12:00")) == OptOutState.TARGET_MISSED
    assert deadlines.opt_out_state(due, now=utc("2026-12-24 12:00")) == OptOutState.DUE_SOON
    assert (
        deadlines.opt_out_state(due, now=utc("2026-12-23 12:00"), warn_business_days=2)
        == OptOutState.DUE_SOON
    )


@pytest.mark.parametrize(
    ("now", "state"),
    [
        ("2027-01-05 12:00", RequestState.ON_TIME),
        ("2027-01-07 12:00", RequestState.DUE_SOON),  # due Fri 8: the next business day
        ("2027-01-08 23:59", RequestState.DUE_SOON),
        ("2027-01-09 00:00", RequestState.OVERDUE),
    ],
)
def test_a_data_subject_request_is_due_soon_then_overdue(clock, now, state):
    clock(now)
    due = deadlines.dsr_due(utc("2026-12-08 10:00"))
    assert due == day("2027-01-08")
    assert deadlines.request_state(due) == state


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "America/New York", "../etc/passwd"])
def test_a_time_zone_that_does_not_exist_is_not_one(name):
    assert not deadlines.is_time_zone(name)


@pytest.mark.django_db
def test_a_tenant_with_a_time_zone_that_does_not_exist_is_refused_when_saved():
    tenant = Tenant(slug="mars", name="Mars", time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError, match="not a time zone"):
        tenant.save()
    assert not Tenant.objects.filter(slug="mars").exists()
    tenant.time_zone = "America/New_York"
    tenant.save()
    assert Tenant.objects.get(slug="mars").opt_out_policy == NEW_YORK


def test_a_warning_window_below_zero_stops_the_service():
    with override_settings(DEADLINE_WARNING_BUSINESS_DAYS=-1):
        messages = [e.msg for e in checks.check_numbers(None)]
    assert "DEADLINE_WARNING_BUSINESS_DAYS must be 0 or more, got -1" in messages


def test_a_sweep_interval_of_zero_stops_the_service(settings):
    schedule = {name: dict(entry) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    schedule["sweep-opt-out-deadlines"]["schedule"] = 0.0
    with override_settings(CELERY_BEAT_SCHEDULE=schedule):
        messages = [e.msg for e in checks.check_numbers(None)]
    assert "DEADLINE_SWEEP_EVERY_SECONDS must be more than 0, got 0.0" in messages
