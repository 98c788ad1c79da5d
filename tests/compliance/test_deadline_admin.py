"""Staff see open opt-outs with their deadlines in the admin and filter the late ones; a
tenant's deadlines (time zone, business days, hours) are edited there, and a time zone that
does not exist is refused with a form error."""

from __future__ import annotations

import datetime

import pytest

from compliance import deadlines, propagation
from compliance.models import OptOutRequest, Tenant

UTC = datetime.UTC
LIST = "/admin/compliance/optoutrequest/"


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def opt_outs(suppress, make_tenant, monkeypatch):
    """Opt-outs in each state on Wed 25 Nov 2026 at 12:00 UTC (the clock is set there)."""
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)
    monkeypatch.setattr(deadlines, "_now", lambda: utc("2026-11-25 12:00"))
    new_york = make_tenant("nyc")
    new_york.time_zone = "America/New_York"
    new_york.save()

    def record(name: str, received: str, **kwargs) -> OptOutRequest:
        entry = suppress(f"{name}@example.com", "unsubscribe", created_at=utc(received), **kwargs)
        return OptOutRequest.objects.filter(address_hash=entry.address_hash).latest("pk")

    rows = {
        # 48 hours end Fri 27 09:00, before the next business day (Fri) is over.
        "target_soon": record("soon", "2026-11-25 09:00"),
        # 48 hours ended Wed 09:00; CAN-SPAM ends with Tue 8 Dec.
        "target_missed": record("missed", "2026-11-23 09:00"),
        # CAN-SPAM ends with Wed 25 Nov (Veterans Day, Wed 11, does not count).
        "due_soon": record("due", "2026-11-10 09:00"),
        # Ends with Fri 27 Nov in New York, 05:00 UTC on Saturday: due soon there.
        "due_soon_in_new_york": record("nyc", "2026-11-12 20:00", tenant=new_york),
        # CAN-SPAM ended with Tue 24 Nov.
        "overdue": record("late", "2026-11-09 09:00"),
        "propagated": record("done", "2026-11-23 09:00", scope="stream:marketing"),
    }
    OptOutRequest.objects.filter(pk=rows["propagated"].pk).update(
        propagated_at=utc("2026-11-23 09:05")
    )
    return {name: row.pk for name, row in rows.items()}


def listed(client, **query) -> list[int]:
    page = client.get(LIST, query)
    assert page.status_code == 200
    return [row.pk for row in page.context["cl"].result_list]


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (
            "open",
            ["overdue", "due_soon", "due_soon_in_new_york", "target_missed", "target_soon"],
        ),
        ("due_soon", ["due_soon", "due_soon_in_new_york", "target_soon"]),
        ("past_target", ["overdue", "due_soon", "due_soon_in_new_york", "target_missed"]),
        ("overdue", ["overdue"]),
        # The dashboard's buckets: late (either deadline passed), due today, due this week
        # (within 5 business days, not today), and the opt-outs propagated in time.
        ("late", ["overdue", "due_soon", "due_soon_in_new_york", "target_missed"]),
        ("due_today", []),
        ("due_week", ["target_soon"]),
        ("propagated", ["propagated"]),
        ("within_target", ["propagated"]),
        ("within_can_spam", ["propagated"]),
    ],
)
def test_the_deadline_filter_lists_the_right_opt_outs(staff_client, opt_outs, deadline, expected):
    # Open ones come the most urgent first (the CAN-SPAM deadline soonest).
    assert listed(staff_client, deadline=deadline) == [opt_outs[name] for name in expected]


def test_without_a_filter_the_newest_opt_outs_come_first(staff_client, opt_outs):
    assert listed(staff_client)[:2] == [opt_outs["target_soon"], opt_outs["propagated"]]


def test_the_list_shows_each_opt_outs_deadlines_and_state(staff_client, opt_outs):
    page = staff_client.get(LIST).content.decode()
    for heading in ["48-hour due", "CAN-SPAM due", "Propagated at", "Deadline"]:
        assert heading.lower() in page.lower()
    for label in [
        "48-hour target ends soon",
        "past the 48-hour target",
        "CAN-SPAM deadline ends soon",
        "past the CAN-SPAM deadline",
        "propagated",
    ]:
        assert label in page


def test_the_list_cannot_add_change_or_delete_opt_outs(staff_client, opt_outs):
    assert staff_client.get(f"{LIST}add/").status_code == 403
    page = staff_client.get(f"{LIST}{opt_outs['overdue']}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def tenant_form(**fields) -> dict:
    data = {
        "slug": "berlin",
        "name": "Berlin",
        "jurisdiction": Tenant._meta.get_field("jurisdiction").default,
        "time_zone": "Europe/Berlin",
        "can_spam_business_days": "5",
        "provider_target_hours": "24",
        "streams-TOTAL_FORMS": "0",
        "streams-INITIAL_FORMS": "0",
        "streams-MIN_NUM_FORMS": "0",
        "streams-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    return data


def test_staff_set_a_tenants_deadlines_in_the_admin(staff_client):
    answer = staff_client.post("/admin/compliance/tenant/add/", tenant_form())
    assert answer.status_code == 302, answer.content.decode()[:2000]
    tenant = Tenant.objects.get(slug="berlin")
    assert tenant.opt_out_policy == deadlines.OptOutPolicy(
        time_zone="Europe/Berlin", business_days=5, target_hours=24
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("time_zone", "Mars/Olympus_Mons", "is not a time zone"),
        ("can_spam_business_days", "11", "less than or equal to 10"),
        ("provider_target_hours", "72", "less than or equal to 48"),
    ],
)
def test_a_tenant_with_bad_deadlines_shows_a_form_error(staff_client, field, value, error):
    answer = staff_client.post("/admin/compliance/tenant/add/", tenant_form(**{field: value}))
    assert answer.status_code == 200
    assert error in answer.context["adminform"].form.errors[field][0]
    assert not Tenant.objects.filter(slug="berlin").exists()
