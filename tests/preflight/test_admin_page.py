"""/admin/preflight/: staff paste or upload a message and read the checks as a table."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.preflight.checks import CHECK_NAMES

from .messages import compose, sign

pytestmark = pytest.mark.django_db

URL = "/admin/preflight/"


@pytest.fixture
def staff(client, django_user_model):
    """A staff member with no model permission at all: the page asks for none."""
    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    client.force_login(user)
    return client


def rows(page) -> dict[str, str]:
    """{check name: status} as the table shows them."""
    html = page.content.decode()
    found = re.findall(
        r'<tr class="preflight-row" id="check-(\w+)">.*?preflight-status preflight-\w+">(\w+)<',
        html,
        re.DOTALL,
    )
    return dict(found)


def test_only_staff_reach_the_page(client, django_user_model):
    assert client.get(URL).status_code == 302
    user = django_user_model.objects.create_user("reader", password="pw")
    client.force_login(user)
    page = client.get(URL)
    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")


def test_the_form_is_shown(staff):
    page = staff.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Pre-send message check</h1>" in html
    assert 'name="pasted"' in html and 'name="upload"' in html and 'name="kind"' in html
    assert 'id="preflight-checks"' not in html


def test_an_uploaded_good_message_passes_every_check(staff, dkim_dns, good):
    page = staff.post(URL, {"upload": SimpleUploadedFile("sale.eml", good), "kind": "commercial"})
    assert page.status_code == 200
    assert rows(page) == dict.fromkeys(CHECK_NAMES, "pass")
    assert list(rows(page)) == list(CHECK_NAMES)
    html = page.content.decode()
    assert "Verdict: <span" in html and ">PASS</span>" in html
    assert "verified: d=example.test s=s1" in html


def test_a_pasted_message_shows_what_fails(staff, dkim_dns, key):
    bad = sign(compose(list_unsubscribe="<http://shop.example.test/u/1>"), key)
    page = staff.post(URL, {"pasted": bad.decode(), "kind": "commercial"})
    assert page.status_code == 200
    assert rows(page)["list_unsubscribe_https"] == "fail"
    assert rows(page)["dkim_valid"] == "pass"  # pasted as it was signed: it still verifies
    html = page.content.decode()
    assert ">FAIL</span>" in html
    assert "only an http URI (http://shop.example.test/u/1)" in html


def test_a_transactional_message_is_judged_as_such(staff, dkim_dns, key):
    receipt = sign(
        compose(list_unsubscribe=None, list_unsubscribe_post=None, text="Shipped.", html=None),
        key,
        signed=["from", "to", "subject", "date"],
    )
    page = staff.post(URL, {"pasted": receipt.decode(), "kind": "transactional"})
    assert set(rows(page).values()) == {"pass"}
    assert "(judged as transactional mail)" in page.content.decode()


def test_message_text_is_shown_escaped(staff, dkim_dns):
    raw = b"From: a@example.test\r\nSubject: <script>alert(1)</script>\r\n\r\nHello\r\n"
    html = staff.post(URL, {"pasted": raw.decode(), "kind": "commercial"}).content.decode()
    assert "Subject: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Paste a message or upload a file (one of the two)."),
        ({"pasted": "   "}, "Paste a message or upload a file (one of the two)."),
        (
            {"pasted": "From: a@b.test\r\n\r\nx", "upload": b"From: a@b.test\r\n\r\nx"},
            "Paste a message or upload a file (one of the two).",
        ),
        ({"pasted": "hello there"}, "This is not a message: no header fields of a message"),
    ],
)
def test_bad_input_is_explained_on_the_form(staff, data, error):
    if "upload" in data:
        data["upload"] = SimpleUploadedFile("m.eml", data["upload"])
    page = staff.post(URL, {"kind": "commercial", **data})
    assert page.status_code == 200
    assert error in page.content.decode()
    assert rows(page) == {}


def test_an_upload_over_the_limit_is_refused(staff, settings, good):
    settings.INBOUND_MAX_BYTES = 100  # the page takes four times this, as the API does
    page = staff.post(URL, {"upload": SimpleUploadedFile("m.eml", good), "kind": "commercial"})
    assert "the file is larger than 400 bytes" in page.content.decode()
    assert rows(page) == {}
