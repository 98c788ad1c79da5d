"""A compliance analyst limited to one tenant logs in and lands on the dashboard: only that
tenant's figures, never the other tenant's name, charts drawn with nothing blocked by the page's
policy, and a screenshot that is not blank."""

from __future__ import annotations

import datetime
import struct
import zlib
from collections import Counter

import pytest
from django.utils import timezone

from compliance import propagation, services, staff_scope
from compliance.dashboard import tasks
from compliance.models import OptOutRequest, Stream
from fbl.services import count_for_rates
from tests.e2e.test_content_security_policy import RECORD_VIOLATIONS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-analyst-password"


@pytest.fixture
def two_tenants(make_tenant, suppress, monkeypatch):
    """Acme and Globex, each with open and applied opt-outs and complaint counts, rolled up."""
    acme, globex = make_tenant("acme"), make_tenant("globex")
    now = timezone.now()
    monkeypatch.setattr(propagation, "_waits", lambda tenant_id: True)
    for tenant, late, applied in [(acme, 2, 3), (globex, 5, 7)]:
        for n in range(late):  # 50 hours old, still open: past the 48-hour target
            suppress(
                f"late{n}@{tenant.slug}.example",
                tenant=tenant,
                created_at=now - datetime.timedelta(hours=50),
            )
        for n in range(applied):
            entry = suppress(
                f"done{n}@{tenant.slug}.example",
                tenant=tenant,
                created_at=now - datetime.timedelta(hours=3),
            )
            OptOutRequest.objects.filter(address_hash=entry.address_hash, tenant=tenant).update(
                propagated_at=now - datetime.timedelta(hours=2)
            )
        for days_ago in range(10):
            count_for_rates(
                day=timezone.localdate() - datetime.timedelta(days=days_ago),
                tenant=tenant,
                stream=Stream.objects.get(tenant=tenant, slug="marketing"),
                campaign="",
                recipient="reader@gmail.com",
                deliveries=1000,
                complaints=days_ago % 4,
            )
    tasks.roll_up.delay().get()
    return acme, globex


@pytest.fixture
def analyst(two_tenants):
    """A compliance analyst limited to Acme, made as an operator makes one
    (`create_staff_user --role analyst --tenant acme`)."""
    acme, _ = two_tenants
    user, _ = services.create_staff_user(username="analyst", role="analyst", tenants=[acme])
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def desktop(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    yield page
    context.close()


def test_an_analyst_of_one_tenant_sees_only_that_tenant(desktop, live_server, analyst, tmp_path):
    page = desktop
    page.goto(live_server.url + "/admin/")
    page.get_by_label("Username").fill("analyst")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/admin/")

    assert page.text_content("#content h1") == "Dashboard"
    assert "Tenants shown: Acme." in page.text_content("#tenant-scope")
    body = page.text_content("body")
    assert "Globex" not in body and "globex" not in body
    # Acme's two late opt-outs and three applied ones, not Globex's five and seven.
    late = page.locator("#open-total td").nth(1).text_content()
    assert late == "2"
    assert page.locator("#applied-total td").nth(1).text_content() == "3"
    rates = page.locator("#rate-groups tbody tr")
    assert rates.count() == 1 and "acme" in rates.first.text_content()

    # The complaint-rate chart is drawn, with both lines, and nothing was blocked.
    chart = page.locator("svg.line-chart")
    assert chart.is_visible()
    assert chart.locator("polyline").count() == 1
    assert chart.locator("line.rule").count() == 2
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.cspViolations") == []

    # Each figure opens the list behind it.
    page.locator("#open-total a").nth(0).click()
    page.wait_for_url("**/admin/compliance/optoutrequest/**")
    assert "deadline=late" in page.url and f"tenant__id__in={analyst_tenant(analyst)}" in page.url
    assert page.locator("#result_list tbody tr").count() == 2

    page.go_back()
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    width, height, pixels = read_png(shot.read_bytes())
    assert width >= 1280 and height >= 900
    colours = Counter(pixels)
    background, most = colours.most_common(1)[0]
    assert len(colours) > 20, "the screenshot has almost no colours: is it blank?"
    assert most / len(pixels) < 0.97, "nearly every pixel is the background colour"


def analyst_tenant(user) -> int:
    (tenant_id,) = staff_scope.tenant_ids_for(user)
    return tenant_id


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, every pixel's colour) of an 8-bit RGB or RGBA PNG, decoded with zlib
    (PNG, RFC 2083: chunks, one filter byte per scanline, five filter types)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                nearest = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + nearest) & 0xFF
        rows.append(bytes(line))
        previous = line
    pixels = [row[x : x + 3] for row in rows for x in range(0, stride, channels)]
    return width, height, pixels
