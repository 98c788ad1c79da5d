"""Browser tests: Debian's chromium driven by Playwright against the live test server."""

import os
import re
import shutil
from urllib.parse import urlparse

import pytest
from django.core import mail

from tests.support import require

# Playwright's sync API runs an event loop in the test's thread; Django's ORM calls from that
# thread are still synchronous, one at a time.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, chromium tries to reach Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    require(os.path.exists(CHROMIUM), "the program 'chromium' (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def confirm_link(live_server, make_api_key, default_tenant, browser):
    """A double opt-in sign-up made over HTTP on the live server: the link its mail carries,
    pointed at that server."""
    _, key = make_api_key("consent:write")
    api = browser.new_context()
    answer = api.request.post(
        live_server.url + "/api/v1/consents",
        data={
            "address": "reader@example.com",
            "purpose": "marketing",
            "action": "grant",
            "basis": "consent",
            "method": "double_opt_in",
            "evidence": {
                "ip": "192.0.2.10",
                "page_url": "https://acme.example/signup",
                "wording": "Send me the newsletter.",
                "user_agent": "Mozilla/5.0",
            },
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status == 202, answer.text()
    api.close()
    (message,) = mail.outbox
    assert message.to == ["reader@example.com"]
    found = re.search(r"https?://\S+/confirm/\S+", message.body).group(0)
    return live_server.url + urlparse(found).path
