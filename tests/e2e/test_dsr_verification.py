"""A data-subject request opened through the API mails a link; the requester opens it in a real
browser, where the page alone verifies nothing, and presses the button, which verifies once
however often it is pressed. An access request then mails its export link, which downloads."""

import json
import re
from urllib.parse import urlparse

import pytest
from django.core import mail
from playwright.sync_api import Error as PlaywrightError

from compliance.dsr.models import DataSubjectRequest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ADDRESS = "requester@example.com"


def _on(live_server, message, pattern: str) -> str:
    """The link a mail carries, pointed at the live server."""
    return live_server.url + urlparse(re.search(pattern, message.body).group(0)).path


@pytest.fixture
def verify_link(live_server, make_api_key, default_tenant, browser):
    """An access request opened over HTTP on the live server: its verification link."""
    _, key = make_api_key("dsr:write")
    api = browser.new_context()
    answer = api.request.post(
        live_server.url + "/api/v1/data-subject-requests",
        data={"address": ADDRESS, "kind": "access"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status == 201, answer.text()
    api.close()
    (message,) = mail.outbox
    assert message.to == [ADDRESS]
    return _on(live_server, message, r"https?://\S+/dsr/[\w-]+(?=\s)")


def export_mails():
    return [m for m in mail.outbox if "/export" in m.body]


def download(page, url: str) -> bytes:
    """Open a link that answers with an attachment, as a click in a mail program would."""
    with page.expect_download() as started:
        try:
            page.goto(url)
        except PlaywrightError as exc:  # chromium reports a navigation that became a download
            assert "Download is starting" in str(exc), exc
    path = started.value.path()
    with open(path, "rb") as file:
        return file.read()


def test_the_page_verifies_nothing_until_the_button_is_pressed(page, verify_link, live_server):
    page.goto(verify_link)
    assert page.text_content("h1") == "Confirm your request"
    assert "Access (Art. 15)" in page.text_content("main")
    button = page.get_by_role("button", name="Yes, this is my request")
    assert button.is_visible()
    page.reload()
    request = DataSubjectRequest.objects.get()
    assert (request.status, request.verified_at) == ("awaiting_verification", None)
    assert not export_mails()

    button.click()
    page.wait_for_selector("text=is confirmed")
    assert page.text_content("h1") == "Thank you"
    request.refresh_from_db()
    assert request.verified_at is not None
    assert request.status == "fulfilled"  # an access request is carried out at once

    (message,) = export_mails()
    assert message.to == [ADDRESS]
    link = _on(live_server, message, r"https?://\S+/dsr/[\w-]+/export")
    export = json.loads(download(page, link))
    assert export["address"] == ADDRESS
    assert [r["id"] for r in export["requests"]] == [request.pk]
    assert download(page, link + "?format=csv").startswith(b"PK")  # a ZIP archive


def test_pressing_again_is_friendly_and_does_nothing_twice(page, verify_link):
    # A second tab opened before the first one's click still shows the button.
    other = page.context.new_page()
    page.goto(verify_link)
    other.goto(verify_link)
    page.get_by_role("button", name="Yes, this is my request").click()
    page.wait_for_selector("text=is confirmed")

    other.get_by_role("button", name="Yes, this is my request").click()
    other.wait_for_selector("text=was confirmed before")
    assert other.text_content("h1") == "Already confirmed"

    page.goto(verify_link)  # opening the link again
    assert page.text_content("h1") == "Already confirmed"
    assert page.get_by_role("button").count() == 0

    request = DataSubjectRequest.objects.get()
    assert request.steps.filter(step="verified").count() == 1
    assert request.steps.filter(step="fulfilled").count() == 1
    assert len(export_mails()) == 1


def test_a_german_browser_gets_the_page_in_german(browser, verify_link):
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(verify_link)
    assert page.text_content("h1") == "Bitte bestätigen Sie Ihre Anfrage"
    page.get_by_role("button", name="Ja, das ist meine Anfrage").click()
    page.wait_for_selector("text=ist bestätigt")
    (message,) = export_mails()
    assert message.subject == "Ihre Daten stehen zum Download bereit"
    context.close()
