"""The dashboard at /admin/: every figure against known data, every figure's link listing exactly
the rows it counts, only the tenants and panels the user may see, and charts drawn on the server.

The clock is Wed 25 Nov 2026 12:00 UTC (Thanksgiving, Thu 26, is no business day).
"""

from __future__ import annotations

import datetime
import html
import json
import re
import sys
import types
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import Permission

from compliance import deadlines, propagation, staff_scope
from compliance.dashboard import tasks
from compliance.dsr import services as dsr_services
from compliance.dsr.models import DataSubjectRequest
from compliance.models import OptOutRequest, Stream
from fbl import ingest
from fbl.models import InboundMessage, RelayEvent
from fbl.provenance import Provenance
from fbl.services import count_for_rates
from tests.fbl.messages import dsn
from tests.fbl.test_kumomta import bounce

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = "2026-11-25 12:00"
DASHBOARD = "/admin/"


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(deadlines, "_now", lambda: utc(NOW))


@pytest.fixture
def tenants(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    globex.time_zone = "America/New_York"
    globex.save()
    return acme, globex


@pytest.fixture
def data(clock, tenants, suppress, api_client, monkeypatch):
    """Opt-outs open and applied, complaint counts, reports, relay events and data-subject
    requests of two tenants, rolled up."""
    acme, globex = tenants
    # Opt-outs wait for downstream systems: the tests stop each clock themselves.
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)

    def opt_out(name: str, tenant, received: str, stopped: str | None = None) -> None:
        entry = suppress(
            f"{name}@example.com", "unsubscribe", tenant=tenant, created_at=utc(received)
        )
        if stopped:
            OptOutRequest.objects.filter(address_hash=entry.address_hash, tenant=tenant).update(
                propagated_at=utc(stopped)
            )

    # Open. Acme (UTC): 48 hours ended Wed 09:00; CAN-SPAM ended Tue 24; 48 hours end today at
    # 14:00; 48 hours end Fri 27 09:00.
    opt_out("late", acme, "2026-11-23 09:00")
    opt_out("overdue", acme, "2026-11-09 09:00")
    opt_out("today", acme, "2026-11-23 14:00")
    opt_out("week", acme, "2026-11-25 09:00")
    # Globex (New York): 48 hours ended Wed 09:00 UTC; 48 hours end Wed 20:00 UTC, which is
    # still today in New York (until Thu 05:00 UTC).
    opt_out("g-late", globex, "2026-11-23 09:00")
    opt_out("g-today", globex, "2026-11-23 20:00")
    # Applied within the last 30 days: 60 s; 3 days (past the target); 54 days (past both);
    # and one before the window. Globex: 30 s.
    opt_out("quick", acme, "2026-11-20 10:00", "2026-11-20 10:01")
    opt_out("slow", acme, "2026-11-16 10:00", "2026-11-19 10:00")
    opt_out("forgotten", acme, "2026-10-01 10:00", "2026-11-24 10:00")
    opt_out("long-ago", acme, "2026-10-19 10:00", "2026-10-20 10:00")
    opt_out("g-quick", globex, "2026-11-24 08:00", "2026-11-24 08:00:30")

    # Complaint rates: acme 3 in 2,000 (0.15%: warning), globex 4 in 1,000 (0.4%: alert).
    for tenant, when, delivered, complaints in [
        (acme, "2026-11-24", 1000, 2),
        (acme, "2026-11-25", 1000, 1),
        (globex, "2026-11-24", 1000, 4),
    ]:
        count_for_rates(
            day=day(when),
            tenant=tenant,
            stream=Stream.objects.get(tenant=tenant, slug="marketing"),
            campaign="",
            recipient="someone@gmail.com",
            deliveries=delivered,
            complaints=complaints,
        )

    # A bounce report by mail and a relay's bounce, both acme's, arrived on Tue 24.
    block = "Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.1\n"
    as_acme = Provenance(tenant=acme, operator_level=False, label="acme")
    message, _ = ingest.receive(dsn(block), source="http", provenance=as_acme)
    InboundMessage.objects.filter(pk=message.pk).update(received_at=utc("2026-11-24 10:00"))
    answer = api_client("reports:write", tenant=acme).post(
        "/api/v1/events/kumomta",
        data=json.dumps(bounce(meta={"tenant": "acme"})),
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    RelayEvent.objects.update(received_at=utc("2026-11-24 11:00"))

    # Requests: acme overdue, due soon (today; the next business day is Fri 27), open later;
    # globex overdue.
    for tenant, due in [
        (acme, "2026-11-20"),
        (acme, "2026-11-25"),
        (acme, "2026-12-20"),
        (globex, "2026-11-01"),
    ]:
        request = dsr_services.open_request(
            address=f"{due}@example.com", kind="access", tenant=tenant
        )
        DataSubjectRequest.objects.filter(pk=request.pk).update(due=day(due))

    tasks.roll_up.delay().get()
    return acme, globex


def section(page, name: str) -> str:
    text = page.content.decode()
    found = re.search(rf'<section class="panel[^"]*" id="{name}">(.*?)</section>', text, re.S)
    assert found, f"no {name} panel"
    return found.group(1)


def row(panel: str, label: str) -> str:
    for cells in re.findall(r"<tr[^>]*>(.*?)</tr>", panel, re.S):
        if re.search(rf"<td>(?:<svg.*?</svg> )?{re.escape(label)}</td>", cells):
            return cells
    raise AssertionError(f"no row {label!r}")


FIGURE = re.compile(r'<a href="([^"]+)" title="([^"]*)">([^<]+)</a>')


def figures_of(cells: str) -> list[tuple[str, str, str]]:
    """(text, list URL, title) of every figure in some HTML."""
    return [
        (text, html.unescape(href), html.unescape(title))
        for href, title, text in FIGURE.findall(cells)
    ]


def numbers(cells: str) -> list[str]:
    return [text for text, _, _ in figures_of(cells)]


def listed(client, url: str) -> int:
    """How many rows the admin list at `url` shows."""
    page = client.get(url)
    assert page.status_code == 200, f"{url} answered {page.status_code}"
    return page.context["cl"].result_count


def assert_every_figure_lists_its_rows(client, page) -> int:
    """Each count links to a list of exactly that many rows; each share to a list of as many
    rows as its title counts. Returns how many links were followed."""
    followed = 0
    for text, href, title in figures_of(page.content.decode()):
        if not href.startswith("/admin/") or href.startswith("/admin/fbl/dailycount/"):
            continue
        if re.fullmatch(r"[\d,]+", text):
            expected = int(text.replace(",", ""))
        elif text.endswith("%"):
            expected = int(title.split()[0].replace(",", ""))
        else:
            continue  # a median: it links to the opt-outs it is the median of
        assert listed(client, href) == expected, f"{text} ({title}) links to {href}"
        followed += 1
    return followed


# --- the page itself ---------------------------------------------------------------------------


def test_the_dashboard_is_the_admin_home_and_the_model_list_moves_to_models(
    client, django_user_model, clock
):
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-password")
    answer = client.get(DASHBOARD)
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")

    after_login = client.post(
        answer["Location"], {"username": "staff", "password": "a-long-password"}, follow=True
    )
    assert after_login.redirect_chain[-1][0] == DASHBOARD
    assert "<h1>Dashboard</h1>" in after_login.content.decode()
    models = client.get("/admin/models/")
    assert models.status_code == 200
    assert "Site administration" in models.content.decode()
    assert 'href="/admin/compliance/optoutrequest/"' in models.content.decode()


def test_the_page_links_the_model_list_the_preflight_form_and_the_proof(staff_client, clock):
    page = staff_client.get(DASHBOARD).content.decode()
    assert 'href="/admin/models/"' in page
    assert 'href="/admin/preflight/"' in page
    assert 'href="/admin/proof/"' in page
    # The sidebar of every admin page lists the models too.
    assert 'href="/admin/fbl/dailycount/"' in page


def test_open_opt_outs_by_deadline_bucket(staff_client, data):
    panel = section(staff_client.get(DASHBOARD), "open-opt-outs")
    # late, of which overdue, due today, due this week, open
    assert numbers(row(panel, "Acme")) == ["2", "1", "1", "1", "4"]
    assert numbers(row(panel, "Globex")) == ["1", "0", "1", "0", "2"]
    assert numbers(row(panel, "All")) == ["3", "1", "2", "1", "6"]


def test_opt_outs_applied_in_the_last_30_days(staff_client, data):
    panel = section(staff_client.get(DASHBOARD), "applied")
    # 60 s and 3 days and 54 days: one within 48 hours, two within CAN-SPAM's deadline.
    assert numbers(row(panel, "Acme")) == ["3", "33.3%", "66.7%", "3.0 days"]
    assert numbers(row(panel, "Globex"))[:4] == ["1", "100.0%", "100.0%", "30 s"]
    # The median of 30 s, 60 s, 3 days and 54 days lies between the middle two.
    assert numbers(row(panel, "All")) == ["4", "50.0%", "75.0%", "36.0 h"]


def test_every_figure_links_to_a_list_of_exactly_the_rows_it_counts(staff_client, data):
    page = staff_client.get(DASHBOARD)
    assert assert_every_figure_lists_its_rows(staff_client, page) >= 40


def test_a_late_opt_out_is_listed_behind_the_late_figure(staff_client, data):
    panel = section(staff_client.get(DASHBOARD), "open-opt-outs")
    late_href = figures_of(row(panel, "Acme"))[0][1]
    shown = staff_client.get(late_href).context["cl"].result_list
    assert sorted(r.scope_label for r in shown) == ["commercial", "commercial"]
    assert {r.tenant.slug for r in shown} == {"acme"}
    assert all(r.provider_due_at <= utc(NOW) for r in shown)


def test_complaint_rates_are_drawn_against_the_two_lines(staff_client, data):
    page = staff_client.get(DASHBOARD)
    panel = section(page, "complaint-rates")
    assert "WARNING" in row(panel, "acme") and "0.150%" in row(panel, "acme")
    assert "ALERT" in row(panel, "globex") and "0.400%" in row(panel, "globex")
    assert numbers(row(panel, "acme"))[:2] == ["2,000", "3"]
    # The rates link to the complaint-rate page of their tenant.
    assert (
        figures_of(row(panel, "globex"))[0][1] == "/admin/fbl/dailycount/?by=tenant&tenant=globex"
    )
    svg = re.search(r'<svg class="chart line-chart".*?</svg>', panel, re.S).group(0)
    assert "0.1% (warning)" in svg and "0.3% (alert)" in svg
    assert len(re.findall(r'<line class="rule"', svg)) == 2
    assert len(re.findall(r"<polyline ", svg)) == 2
    assert "globex, 2026-11-24: 0.40%" in svg
    # The alert line is drawn above (smaller y than) the warning line.
    ys = [float(y) for y in re.findall(r'<line class="rule"[^>]*y1="([\d.]+)"', svg)]
    assert ys[1] < ys[0]


def test_complaint_rates_per_stream_and_per_provider(staff_client, data):
    panel = section(staff_client.get(DASHBOARD, {"by": "stream"}), "complaint-rates")
    assert "WARNING" in row(panel, "acme / marketing")
    panel = section(staff_client.get(DASHBOARD, {"by": "provider"}), "complaint-rates")
    assert "ALERT" in row(panel, "globex / gmail")
    assert figures_of(row(panel, "globex / gmail"))[0][1] == (
        "/admin/fbl/dailycount/?by=provider&tenant=globex"
    )
    # An unknown grouping falls back to tenants.
    panel = section(staff_client.get(DASHBOARD, {"by": "nonsense"}), "complaint-rates")
    assert "ALERT" in row(panel, "globex")


def test_report_and_bounce_volumes_per_day(staff_client, data):
    panel = section(staff_client.get(DASHBOARD), "volumes")
    # opt-outs received, complaint reports, bounce reports, relay feedback, relay bounces
    assert numbers(row(panel, "2026-11-24")) == ["1", "0", "1", "0", "1"]
    assert numbers(row(panel, "2026-11-23")) == ["4", "0", "0", "0", "0"]
    assert numbers(row(panel, "All 14 days")) == ["8", "0", "1", "0", "1"]
    assert "2026-11-11" not in panel  # 14 days: 12 to 25 November
    svg = re.search(r'<svg class="chart bar-chart".*?</svg>', panel, re.S).group(0)
    assert "Bounces, 2026-11-24: 2" in svg
    assert "Opt-outs, 2026-11-23: 4" in svg


def test_data_subject_requests_due(staff_client, data):
    panel = section(staff_client.get(DASHBOARD), "requests")
    assert numbers(panel) == ["2", "1", "4"]
    assert "due by 2026-11-27" in panel


def test_the_figures_come_from_the_roll_up_not_from_the_tables(
    staff_client, clock, tenants, suppress
):
    acme, _ = tenants
    suppress("pat@example.com", "unsubscribe", tenant=acme, created_at=utc(NOW))
    page = staff_client.get(DASHBOARD)
    assert 'id="stale"' in page.content.decode()
    assert numbers(row(section(page, "volumes"), "All 14 days"))[0] == "0"
    tasks.roll_up.delay().get()
    page = staff_client.get(DASHBOARD)
    assert 'id="stale"' not in page.content.decode()
    assert numbers(row(section(page, "volumes"), "All 14 days"))[0] == "1"


def test_without_celery_beat_the_page_rolls_up_itself(
    staff_client, clock, tenants, suppress, settings
):
    settings.DASHBOARD_ROLL_UP_ON_VIEW = True
    suppress("pat@example.com", "unsubscribe", tenant=tenants[0], created_at=utc(NOW))
    page = staff_client.get(DASHBOARD)
    assert numbers(row(section(page, "volumes"), "All 14 days"))[0] == "1"


# --- who sees what -----------------------------------------------------------------------------


@pytest.fixture
def limited_to(monkeypatch):
    """Limit every user to the given tenants (compliance.staff_scope)."""

    def limit(*tenants) -> None:
        ids = frozenset(t.pk for t in tenants)
        monkeypatch.setattr(staff_scope, "tenant_ids_for", lambda user: ids)

    return limit


def test_staff_limited_to_a_tenant_see_only_its_figures(staff_client, data, limited_to):
    acme, globex = data
    limited_to(acme)
    page = staff_client.get(DASHBOARD)
    text = page.content.decode()
    assert "Globex" not in text and "globex" not in text
    assert "Tenants shown: Acme." in text
    assert numbers(row(section(page, "open-opt-outs"), "All")) == ["2", "1", "1", "1", "4"]
    assert numbers(row(section(page, "applied"), "All"))[:3] == ["3", "33.3%", "66.7%"]
    assert numbers(section(page, "requests")) == ["1", "1", "3"]
    # The totals' lists carry the tenant, so they list the same rows.
    total_href = figures_of(row(section(page, "open-opt-outs"), "All"))[-1][1]
    assert parse_qs(urlparse(total_href).query)["tenant__id__in"] == [str(acme.pk)]
    assert assert_every_figure_lists_its_rows(staff_client, page) >= 30


def test_staff_limited_to_no_tenant_see_nothing_counted(staff_client, data, limited_to):
    limited_to()
    page = staff_client.get(DASHBOARD)
    assert numbers(row(section(page, "open-opt-outs"), "All")) == ["0"] * 5
    assert "Tenants shown: none." in page.content.decode()
    assert assert_every_figure_lists_its_rows(staff_client, page) > 0


def test_a_panel_shows_only_with_the_permission_to_view_its_rows(client, django_user_model, data):
    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_optoutrequest"))
    client.force_login(user)
    page = client.get(DASHBOARD)
    text = page.content.decode()
    assert 'id="open-opt-outs"' in text and 'id="applied"' in text
    for hidden in ("complaint-rates", "requests", "domains"):
        assert f'id="{hidden}"' not in text
    # Only the opt-out column of the volumes: the reports' lists are not theirs to see.
    volumes = section(page, "volumes")
    assert "Bounce reports" not in volumes and "Opt-outs received" in volumes

    bare = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(bare)
    assert 'id="nothing-shown"' in client.get(DASHBOARD).content.decode()


# --- domain health -----------------------------------------------------------------------------


def test_without_the_domain_checks_the_panel_says_so(staff_client, clock, monkeypatch):
    from django.apps import apps

    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "compliance.domains" and installed(name)
    )
    panel = section(staff_client.get(DASHBOARD), "domains")
    assert "not installed" in panel


def test_domain_health_reads_the_latest_checks_of_the_tenants_in_scope(
    staff_client, clock, tenants, limited_to, monkeypatch
):
    acme, _ = tenants
    asked = []

    def check(pk: int, name: str, verdict: str, *checks: dict):
        # The shape of compliance.domains' DomainCheck: its domain, verdict, time and checks.
        domain = types.SimpleNamespace(pk=pk, domain=name)
        return types.SimpleNamespace(
            domain=domain, verdict=verdict, checks=list(checks), checked_at=utc(NOW)
        )

    def latest_checks(tenant_ids):
        asked.append(tenant_ids)
        return [
            check(1, "mail.acme.example", "pass"),
            check(
                2,
                "news.acme.example",
                "fail",
                {"name": "spf", "status": "pass", "message": "one record"},
                {"name": "dmarc", "status": "fail", "message": "no DMARC record"},
            ),
            check(
                3,
                "shop.acme.example",
                "warn",
                {"name": "dkim:s1", "status": "warn", "message": "a 1024-bit key"},
            ),
        ]

    package = types.ModuleType("compliance.domains")
    module = types.ModuleType("compliance.domains.selectors")
    module.latest_checks = latest_checks
    package.selectors = module
    monkeypatch.setitem(sys.modules, "compliance.domains", package)
    monkeypatch.setitem(sys.modules, "compliance.domains.selectors", module)
    from django.apps import apps

    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name == "compliance.domains" or installed(name)
    )
    limited_to(acme)
    panel = section(staff_client.get(DASHBOARD), "domains")
    assert asked == [frozenset({acme.pk})]
    # fail, warn, pass
    assert re.findall(r'class="number headline">(?:<[^>]+>)?(\d+)', panel) == ["1", "1", "1"]
    assert "news.acme.example" in panel and "dmarc: no DMARC record" in panel
    assert "dkim:s1: a 1024-bit key" in panel
    assert "spf: one record" not in panel
    assert "mail.acme.example" not in panel  # passing domains are counted, not listed
    assert panel.index("news.acme.example") < panel.index("shop.acme.example")


# --- the page's policy -------------------------------------------------------------------------


def test_the_page_has_the_admins_policy_and_no_inline_style_or_script(staff_client, data):
    page = staff_client.get(DASHBOARD)
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    text = page.content.decode()
    assert " style=" not in text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", text)
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert all(tag == f'<style nonce="{nonce}">' for tag in re.findall(r"<style[^>]*>", text))
    # Every colour and coordinate is an attribute of the SVG elements themselves.
    assert "<svg " in text and "http" not in re.sub(
        r'xmlns="[^"]*"', "", "".join(re.findall(r"<svg.*?</svg>", text, re.S))
    )


def test_a_german_browser_gets_svg_coordinates_with_decimal_points(staff_client, data):
    page = staff_client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    points = re.findall(r'<polyline points="([^"]+)"', page)
    assert points and all(re.fullmatch(r"[\d.]+,[\d.]+( [\d.]+,[\d.]+)*", p) for p in points)
    assert all("," not in y for y in re.findall(r'<line class="rule"[^>]*y1="([^"]+)"', page))


def test_no_open_opt_out_is_in_two_buckets(data):
    now = utc(NOW)
    from compliance import deadline_selectors as ds

    buckets = [ds.late(now), ds.due_today(now), ds.due_this_week(now)]
    for i, first in enumerate(buckets):
        for second in buckets[i + 1 :]:
            assert not OptOutRequest.objects.filter(first).filter(second).exists()
    in_a_bucket = OptOutRequest.objects.filter(buckets[0] | buckets[1] | buckets[2])
    assert in_a_bucket.count() == OptOutRequest.objects.filter(propagated_at__isnull=True).count()
