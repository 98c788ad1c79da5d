"""Complaint rates per day, tenant, stream, campaign and mailbox provider; the warning (over 0.1%)
and alert (over 0.3%) lines; staff told once; delivery totals from relays; the staff dashboard."""

from __future__ import annotations

import re
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.utils import timezone

from compliance.key_permissions import KeyPermission
from compliance.models import Stream
from fbl import rates, selectors, services
from fbl.models import DailyCount, RateAlert
from tests.support import require

DAY = date(2026, 3, 2)
URL = "/api/v1/delivery-counts"
DASHBOARD = "/admin/fbl/dailycount/"


def stream_of(tenant, slug="marketing"):
    return Stream.objects.get(tenant=tenant, slug=slug)


def send(
    tenant,
    *,
    deliveries=0,
    complaints=0,
    other=0,
    stream="marketing",
    campaign="",
    recipient="pat@gmail.com",
    day=DAY,
):
    services.count_for_rates(
        day=day,
        tenant=tenant,
        stream=stream_of(tenant, stream) if stream and tenant else None,
        campaign=campaign,
        recipient=recipient,
        deliveries=deliveries,
        complaints=complaints,
        other_feedback=other,
    )


# --- the lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("complaints", "deliveries", "expected"),
    [
        (0, 1000, "ok"),
        (1, 1000, "ok"),  # exactly 0.1% is not over the line
        (1, 999, "warning"),  # just over 0.1%
        (1001, 1_000_000, "warning"),
        (3, 1000, "warning"),  # exactly 0.3% is not over the alert line
        (3001, 1_000_000, "alert"),  # just over 0.3%
        (4, 1000, "alert"),
        (50, 100, "alert"),
        (5, 99, "too_few"),  # below the minimum volume a rate is not judged
        (0, 0, "too_few"),
        (1, 0, "too_few"),
    ],
)
def test_level_boundaries(complaints, deliveries, expected):
    assert rates.level(complaints, deliveries, minimum_deliveries=100) == expected


def test_the_minimum_volume_itself_is_judged():
    assert rates.level(2, 1000, minimum_deliveries=1000) == "warning"
    assert rates.level(2, 1000, minimum_deliveries=1001) == "too_few"


def test_lines_come_from_the_settings(settings):
    settings.COMPLAINT_RATE_WARNING = 0.002
    settings.COMPLAINT_RATE_ALERT = 0.005
    settings.COMPLAINT_RATE_MIN_DELIVERIES = 10
    judge = selectors.thresholds()
    assert (judge.warning, judge.alert) == (Decimal("0.002"), Decimal("0.005"))
    assert judge.level(2, 1000) == "ok"
    assert judge.level(3, 1000) == "warning"
    assert judge.level(6, 1000) == "alert"
    assert judge.level(1, 9) == "too_few"


def test_the_defaults_are_gmail_and_yahoo_lines():
    assert django_settings.COMPLAINT_RATE_WARNING == 0.001
    assert django_settings.COMPLAINT_RATE_ALERT == 0.003
    assert django_settings.COMPLAINT_RATE_MIN_DELIVERIES == 100
    assert rates.WARNING == Decimal("0.001") and rates.ALERT == Decimal("0.003")


def test_percentages_for_people():
    assert rates.percent(Decimal("0.001")) == "0.100%"
    assert rates.percent(rates.rate(1, 800)) == "0.125%"
    assert rates.percent(rates.rate(1, 3)) == "33.333%"
    assert rates.percent(0.003, places=1) == "0.3%"
    assert rates.percent(rates.rate(1, 0)) == "–"


# --- counting and reading ------------------------------------------------------------------------


@pytest.mark.django_db
def test_counts_add_up_per_day_tenant_stream_campaign_and_provider(make_tenant):
    acme = make_tenant("acme")
    send(acme, deliveries=700, campaign="spring")
    send(acme, deliveries=300, campaign="spring", recipient="jo@googlemail.com")
    send(acme, complaints=2, campaign="spring", recipient="GMAIL.com")
    send(acme, other=1, campaign="spring")
    row = DailyCount.objects.get()
    assert (row.day, row.tenant, row.stream.slug, row.campaign, row.provider) == (
        DAY,
        acme,
        "marketing",
        "spring",
        "gmail",
    )
    assert (row.deliveries, row.complaints, row.other_feedback) == (1000, 2, 1)


@pytest.mark.django_db
def test_unattributed_mail_is_counted_in_one_row():
    for _ in range(3):
        services.count_for_rates(
            day=DAY, tenant=None, stream=None, campaign="", recipient="a@yahoo.com", complaints=1
        )
    row = DailyCount.objects.get()
    assert (row.tenant, row.stream, row.provider, row.complaints) == (None, None, "yahoo", 3)
    [total] = selectors.rates(DAY, DAY, ("tenant",))
    assert total.tenant is None and total.label == "(not attributed)"
    assert total.complaints == 3 and total.level == "too_few"


@pytest.mark.django_db
def test_a_stream_alone_names_its_tenant_and_a_stream_of_another_tenant_is_refused(make_tenant):
    acme, other = make_tenant("acme"), make_tenant("other")
    services.count_for_rates(
        day=DAY,
        tenant=None,
        stream=stream_of(acme),
        campaign="",
        recipient="a@b.example",
        deliveries=5,
    )
    assert DailyCount.objects.get().tenant == acme
    with pytest.raises(ValueError):
        services.count_for_rates(
            day=DAY,
            tenant=other,
            stream=stream_of(acme),
            campaign="",
            recipient="a@b.example",
            deliveries=5,
        )
    with pytest.raises(ValueError):
        send(acme, deliveries=-1)


@pytest.fixture
def mail_of_two_tenants(make_tenant):
    acme, other = make_tenant("acme"), make_tenant("other")
    send(acme, deliveries=1000, complaints=1, campaign="spring", recipient="a@gmail.com")
    send(acme, deliveries=1000, complaints=5, campaign="summer", recipient="a@yahoo.de")
    send(acme, deliveries=500, stream="transactional", recipient="a@outlook.com")
    send(other, deliveries=2000, complaints=1, campaign="spring", recipient="a@gmail.com")
    return acme, other


def as_table(rows):
    return {row.label: (row.deliveries, row.complaints, row.level) for row in rows}


@pytest.mark.django_db
def test_rates_per_tenant(mail_of_two_tenants):
    assert as_table(selectors.rates(DAY, DAY, ("tenant",))) == {
        "acme": (2500, 6, "warning"),
        "other": (2000, 1, "ok"),
    }


@pytest.mark.django_db
def test_rates_per_stream(mail_of_two_tenants):
    assert as_table(selectors.rates(DAY, DAY, ("tenant", "stream"))) == {
        "acme / marketing": (2000, 6, "warning"),  # exactly 0.3%: not over the alert line
        "acme / transactional": (500, 0, "ok"),
        "other / marketing": (2000, 1, "ok"),
    }


@pytest.mark.django_db
def test_rates_per_campaign(mail_of_two_tenants):
    assert as_table(selectors.rates(DAY, DAY, ("tenant", "campaign"))) == {
        "acme / spring": (1000, 1, "ok"),
        "acme / summer": (1000, 5, "alert"),
        "acme / (no campaign)": (500, 0, "ok"),
        "other / spring": (2000, 1, "ok"),
    }
    # Campaigns of the same name across tenants, together:
    assert as_table(selectors.rates(DAY, DAY, ("campaign",)))["spring"] == (3000, 2, "ok")


@pytest.mark.django_db
def test_rates_per_provider(mail_of_two_tenants):
    assert as_table(selectors.rates(DAY, DAY, ("provider",))) == {
        "gmail": (3000, 2, "ok"),
        "yahoo": (1000, 5, "alert"),
        "microsoft": (500, 0, "ok"),
    }
    per_tenant = selectors.rates(DAY, DAY, ("tenant", "provider"))
    assert as_table(per_tenant)["acme / yahoo"] == (1000, 5, "alert")


@pytest.mark.django_db
def test_rates_over_several_days_sum_them_or_show_each_day(make_tenant):
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=4, day=DAY)
    send(acme, deliveries=3000, complaints=0, day=DAY + timedelta(days=1))
    send(acme, deliveries=9999, complaints=99, day=DAY + timedelta(days=5))  # outside the range
    [total] = selectors.rates(DAY, DAY + timedelta(days=1), ("tenant",))
    assert (total.deliveries, total.complaints, total.rate, total.level) == (
        4000,
        4,
        Decimal("0.001"),
        "ok",
    )
    days = selectors.rates(DAY, DAY + timedelta(days=1), ("tenant",), per_day=True)
    assert [(r.day, r.level, r.percent) for r in days] == [
        (DAY + timedelta(days=1), "ok", "0.000%"),
        (DAY, "alert", "0.400%"),
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_counts_are_never_lost(default_tenant):
    # SQLite lets one writer in at a time: only PostgreSQL has a race to test.
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    stream = stream_of(default_tenant)
    writers, each = 8, 40
    start = threading.Barrier(writers)
    errors = []

    def write(n):
        try:
            start.wait(10)  # every writer's first INSERT meets the others' on a missing row
            for i in range(each):
                services.count_for_rates(
                    day=DAY,
                    tenant=default_tenant,
                    stream=stream,
                    campaign="c",
                    recipient=f"w{n}-{i}@gmail.com",
                    deliveries=1,
                    complaints=i % 2,
                )
                services.count_for_rates(
                    day=DAY,
                    tenant=None,
                    stream=None,
                    campaign="",
                    recipient="x@aol.com",
                    deliveries=1,
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ours = DailyCount.objects.get(tenant=default_tenant)
    assert (ours.deliveries, ours.complaints) == (writers * each, writers * each // 2)
    unattributed = DailyCount.objects.get(tenant=None)
    assert unattributed.deliveries == writers * each


# --- alerts ------------------------------------------------------------------------------------


@pytest.fixture
def check(django_capture_on_commit_callbacks):
    """`services.judge_complaint_rates` as the periodic task runs it: committed, so its mail
    goes out."""

    def checked(day):
        with django_capture_on_commit_callbacks(execute=True):
            return services.judge_complaint_rates(day)

    return checked


@pytest.fixture
def recipients(settings):
    settings.COMPLAINT_RATE_RECIPIENTS = ["deliverability@example.com"]
    return settings


@pytest.mark.django_db
def test_check_raises_each_grouping_over_the_line_and_mails_staff_once(
    make_tenant, recipients, mailoutbox, check
):
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=2, campaign="spring", recipient="a@gmail.com")
    raised = check(DAY)
    assert sorted((a.grouping, a.level) for a in raised) == [
        ("campaign", "warning"),
        ("provider", "warning"),
        ("stream", "warning"),
        ("tenant", "warning"),
    ]
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["deliverability@example.com"]
    assert "2026-03-02" in message.subject and "4 over 0.100%" in message.subject
    assert "WARNING  0.200% for tenant acme: 2 complaints in 1000 deliveries" in message.body
    assert "provider acme / gmail" in message.body
    assert RateAlert.objects.filter(notified_at__isnull=True).count() == 0

    # Checked again (every 15 minutes): nothing new, nobody mailed again.
    assert check(DAY) == []
    assert len(mailoutbox) == 1

    # Worse: over the alert line is told once more, and only once.
    send(acme, complaints=3, campaign="spring", recipient="a@gmail.com")
    raised = check(DAY)
    assert {a.level for a in raised} == {"alert"} and len(raised) == 4
    assert len(mailoutbox) == 2
    assert "4 over 0.300%" in mailoutbox[1].subject
    assert "ALERT    0.500% for tenant acme" in mailoutbox[1].body
    assert check(DAY) == []
    assert len(mailoutbox) == 2

    # Better again later that day (more deliveries): a warning after the alert is not news.
    send(acme, deliveries=2000, campaign="spring", recipient="a@gmail.com")
    assert check(DAY) == []
    assert len(mailoutbox) == 2
    assert RateAlert.objects.count() == 8


@pytest.mark.django_db
def test_each_day_is_told_on_its_own(make_tenant, recipients, mailoutbox, check):
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=2, day=DAY)
    send(acme, deliveries=1000, complaints=2, day=DAY + timedelta(days=1))
    check(DAY)
    check(DAY + timedelta(days=1))
    assert len(mailoutbox) == 2


@pytest.mark.django_db
def test_rates_below_the_line_or_the_minimum_volume_raise_nothing(
    make_tenant, recipients, mailoutbox, check
):
    acme, tiny = make_tenant("acme"), make_tenant("tiny")
    send(acme, deliveries=1000, complaints=1)  # exactly 0.1%
    send(tiny, deliveries=99, complaints=10)  # 10%, but fewer than 100 deliveries
    assert check(DAY) == []
    assert mailoutbox == []


@pytest.mark.django_db
def test_without_recipients_active_staff_are_told(
    make_tenant, settings, mailoutbox, django_user_model, check
):
    settings.COMPLAINT_RATE_RECIPIENTS = []
    settings.STAFF_ALERT_EMAILS = []
    django_user_model.objects.create_user("ann", "ann@example.com", is_staff=True)
    django_user_model.objects.create_user("bob", "bob@example.com", is_staff=True, is_active=False)
    django_user_model.objects.create_user("cy", "cy@example.com")
    django_user_model.objects.create_user("dee", "", is_staff=True)
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=9)
    check(DAY)
    assert [m.to for m in mailoutbox] == [["ann@example.com"]]


@pytest.mark.django_db
def test_a_failed_send_is_retried_by_the_next_check(
    make_tenant, recipients, mailoutbox, monkeypatch, check
):
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=9)

    def down(*args, **kwargs):
        raise OSError("SMTP server unreachable")

    monkeypatch.setattr(services.complaint_rates, "send_mail", down)
    with pytest.raises(OSError):
        check(DAY)
    assert RateAlert.objects.filter(notified_at__isnull=True).count() == 3
    monkeypatch.undo()
    assert check(DAY) == []  # already raised...
    assert len(mailoutbox) == 1  # ...and now told
    assert "3 over 0.300%" in mailoutbox[0].subject


@pytest.mark.django_db
def test_alert_mail_waits_for_the_commit_and_a_rollback_sends_none(
    make_tenant, recipients, mailoutbox, django_capture_on_commit_callbacks
):
    # STYLE.md: side effects (mail) go out with transaction.on_commit, never inside the write.
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=9)

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            assert len(services.judge_complaint_rates(DAY)) == 3
            assert mailoutbox == []  # not from inside the transaction
            raise RolledBack
    assert mailoutbox == [] and RateAlert.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            services.judge_complaint_rates(DAY)
            assert mailoutbox == []
    assert len(callbacks) == 1
    assert len(mailoutbox) == 1 and "3 over 0.300%" in mailoutbox[0].subject
    assert RateAlert.objects.filter(notified_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_the_periodic_task_checks_today_and_yesterday(
    make_tenant, recipients, mailoutbox, django_capture_on_commit_callbacks
):
    from fbl.tasks import check_complaint_rates

    acme = make_tenant("acme")
    today = timezone.localdate()
    send(acme, deliveries=1000, complaints=2, day=today - timedelta(days=1))
    send(acme, deliveries=1000, complaints=9, day=today)
    send(acme, deliveries=1000, complaints=9, day=today - timedelta(days=2))
    # tenant, stream and provider (no campaign) for each of the two days
    with django_capture_on_commit_callbacks(execute=True):
        assert check_complaint_rates.delay().get() == 6
    assert len(mailoutbox) == 2
    entry = django_settings.CELERY_BEAT_SCHEDULE["check-complaint-rates"]
    assert entry["task"] == "fbl.check_complaint_rates"
    assert entry["schedule"] == 15 * 60


# --- delivery totals from relays -----------------------------------------------------------------


def body(**changes):
    data = {
        "day": DAY.isoformat(),
        "stream": "marketing",
        "campaign": "spring",
        "batch_id": "relay-1:2026-03-02:0001",
        "counts": [
            {"domain": "gmail.com", "delivered": 1200},
            {"domain": "yahoo.co.uk", "delivered": 300},
            {"domain": "Example.org", "delivered": 0},
        ],
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_relay_totals_are_added(api_client, default_tenant):
    client = api_client(KeyPermission.REPORTS_WRITE)
    answer = client.post(URL, body(), format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json() == {
        "batch_id": "relay-1:2026-03-02:0001",
        "deliveries": 1500,
        "duplicate": False,
    }
    answer = client.post(
        URL,
        body(
            batch_id="relay-1:2026-03-02:0002", counts=[{"domain": "gmail.com", "delivered": 800}]
        ),
        format="json",
    )
    assert answer.status_code == 201
    per_provider = selectors.rates(DAY, DAY, ("tenant", "stream", "campaign", "provider"))
    assert as_table(per_provider) == {
        "default / marketing / spring / gmail": (2000, 0, "ok"),
        "default / marketing / spring / yahoo": (300, 0, "ok"),
    }


@pytest.mark.django_db
def test_the_same_batch_posted_again_changes_nothing(api_client, default_tenant):
    client = api_client(KeyPermission.REPORTS_WRITE)
    assert client.post(URL, body(), format="json").status_code == 201
    again = client.post(URL, body(), format="json")
    assert again.status_code == 200
    assert again.json() == {
        "batch_id": "relay-1:2026-03-02:0001",
        "deliveries": 1500,
        "duplicate": True,
    }
    assert sum(DailyCount.objects.values_list("deliveries", flat=True)) == 1500


@pytest.mark.django_db
def test_a_batch_id_posted_again_with_other_numbers_is_refused(api_client, default_tenant):
    client = api_client(KeyPermission.REPORTS_WRITE)
    assert client.post(URL, body(), format="json").status_code == 201
    changed = client.post(
        URL, body(counts=[{"domain": "gmail.com", "delivered": 1}]), format="json"
    )
    assert changed.status_code == 409
    assert "already posted" in changed.json()["detail"]
    assert sum(DailyCount.objects.values_list("deliveries", flat=True)) == 1500


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"day": "2026-13-01"}, "day", "Date has wrong format"),
        ({"day": "02/03/2026"}, "day", "Date has wrong format"),
        ({"day": ""}, "day", "Date has wrong format"),
        (
            {"counts": [{"domain": "gmail.com", "delivered": -1}]},
            "counts",
            "greater than or equal to 0",
        ),
        ({"counts": [{"domain": "gmail.com", "delivered": 1.5}]}, "counts", "valid integer"),
        ({"counts": [{"domain": "gmail.com", "delivered": "12"}]}, "counts", "valid integer"),
        ({"counts": [{"domain": "gmail.com", "delivered": True}]}, "counts", "valid integer"),
        ({"counts": [{"domain": "gmail.com"}]}, "counts", "required"),
        ({"counts": [{"domain": "pat@gmail.com", "delivered": 1}]}, "counts", "recipient domain"),
        ({"counts": []}, "counts", "may not be empty"),
        ({"batch_id": ""}, "batch_id", "may not be blank"),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong(
    api_client, default_tenant, changes, field, message
):
    answer = api_client(KeyPermission.REPORTS_WRITE).post(URL, body(**changes), format="json")
    assert answer.status_code == 400
    assert message in str(answer.json()["errors"][field])
    assert DailyCount.objects.count() == 0


@pytest.mark.django_db
def test_a_day_in_the_future_is_a_400(api_client, default_tenant):
    later = (timezone.localdate() + timedelta(days=2)).isoformat()
    answer = api_client(KeyPermission.REPORTS_WRITE).post(URL, body(day=later), format="json")
    assert answer.status_code == 400
    assert "in the future" in answer.json()["detail"]


@pytest.mark.django_db
def test_an_unknown_stream_is_a_400_naming_the_known_ones(api_client, default_tenant):
    answer = api_client(KeyPermission.REPORTS_WRITE).post(URL, body(stream="nope"), format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "unknown_stream"
    assert "marketing" in answer.json()["detail"]
    assert DailyCount.objects.count() == 0


@pytest.mark.django_db
def test_a_key_without_the_scope_is_refused(api_client, default_tenant):
    answer = api_client(KeyPermission.SUPPRESSION_READ).post(URL, body(), format="json")
    assert answer.status_code == 403
    assert DailyCount.objects.count() == 0
    from rest_framework.test import APIClient

    assert APIClient().post(URL, body(), format="json").status_code == 401


@pytest.mark.django_db
def test_a_key_bound_to_a_tenant_counts_for_it_only(api_client, make_tenant):
    acme = make_tenant("acme")
    client = api_client(KeyPermission.REPORTS_WRITE, tenant=acme)
    assert client.post(URL, body(), format="json").status_code == 201
    assert set(DailyCount.objects.values_list("tenant__slug", flat=True)) == {"acme"}
    assert client.post(URL, body(tenant="default"), format="json").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_posted_at_once_is_counted_once(api_client, default_tenant):
    # SQLite lets one writer in at a time: only PostgreSQL has a race to test.
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    client_keys = [api_client(KeyPermission.REPORTS_WRITE) for _ in range(4)]
    start = threading.Barrier(len(client_keys))
    statuses = []

    def post(client):
        try:
            start.wait(10)
            statuses.append(client.post(URL, body(), format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(c,)) for c in client_keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 200, 200, 201]
    assert sum(DailyCount.objects.values_list("deliveries", flat=True)) == 1500


# --- the staff dashboard -------------------------------------------------------------------------


def row_of(page: str, table: str, label: str) -> str:
    section = re.search(rf'<table class="rate-table" id="{table}">(.*?)</table>', page, re.S)
    assert section, page
    rows = re.findall(r"<tr class=\"rate-row[^\"]*\">(.*?)</tr>", section.group(1), re.S)
    found = [r for r in rows if f"<td>{label}</td>" in r]
    assert found, f"no row for {label} in {table}"
    return found[0]


@pytest.mark.django_db
def test_staff_see_a_warning_marker_for_a_tenant_over_the_line(staff_client, make_tenant):
    acme, calm = make_tenant("acme"), make_tenant("calm")
    today = timezone.localdate()
    send(acme, deliveries=1000, complaints=2, day=today)  # 0.2%
    send(calm, deliveries=1000, complaints=1, day=today)  # 0.1%: not over
    index = staff_client.get("/admin/").content.decode()
    assert 'href="/admin/fbl/dailycount/"' in index and "Complaint rates" in index

    page = staff_client.get(DASHBOARD)
    assert page.status_code == 200
    html = page.content.decode()
    acme_row = row_of(html, "rate-totals", "acme")
    assert "WARNING" in acme_row and "0.200%" in acme_row and "1000" in acme_row
    calm_row = row_of(html, "rate-totals", "calm")
    assert "WARNING" not in calm_row and "ALERT" not in calm_row and "0.100%" in calm_row
    assert "WARNING" in row_of(html, "rate-days", "acme")


@pytest.mark.django_db
def test_the_dashboard_groups_and_filters(staff_client, make_tenant):
    acme, other = make_tenant("acme"), make_tenant("other")
    today = timezone.localdate()
    send(acme, deliveries=1000, complaints=5, campaign="spring", recipient="a@yahoo.fr", day=today)
    send(acme, deliveries=1000, complaints=0, recipient="a@gmail.com", day=today)
    send(other, deliveries=1000, complaints=0, recipient="a@gmail.com", day=today - timedelta(1))
    send(other, deliveries=1000, complaints=9, day=today - timedelta(days=40))  # too long ago

    html = staff_client.get(DASHBOARD, {"by": "provider"}).content.decode()
    assert "ALERT" in row_of(html, "rate-totals", "acme / yahoo")
    assert "ALERT" not in row_of(html, "rate-totals", "acme / gmail")
    assert "9" not in row_of(html, "rate-totals", "other / gmail")

    html = staff_client.get(DASHBOARD, {"by": "campaign", "over": "alert"}).content.decode()
    assert "acme / spring" in html and "(no campaign)" not in html

    html = staff_client.get(DASHBOARD, {"by": "stream", "tenant": "other"}).content.decode()
    assert "other / marketing" in html and "acme / marketing" not in html


@pytest.mark.django_db
def test_only_staff_see_the_dashboard(client, django_user_model, make_tenant):
    assert client.get(DASHBOARD).status_code == 302
    user = django_user_model.objects.create_user("pat", "pat@example.com", "pw")
    client.force_login(user)
    answer = client.get(DASHBOARD)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_alerts_are_listed_for_staff(staff_client, make_tenant, recipients, check):
    acme = make_tenant("acme")
    send(acme, deliveries=1000, complaints=9, recipient="a@gmail.com")
    check(DAY)
    html = staff_client.get("/admin/fbl/ratealert/").content.decode()
    assert "acme / gmail" in html and "0.900%" in html and "ALERT" in html
