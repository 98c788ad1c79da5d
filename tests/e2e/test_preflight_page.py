"""In a real browser, staff paste a message into /admin/preflight/ and read the checks: the page
renders under the admin's Content-Security-Policy with nothing blocked."""

from __future__ import annotations

import pytest

from tests.dns_server import dns_server_running
from tests.e2e.test_content_security_policy import RECORD_VIOLATIONS, log_in, violations
from tests.preflight.messages import KEY_NAME, compose, key_record, new_key, sign

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed(settings):
    """A good message signed with a key that a private DNS server publishes to the service."""
    key = new_key()
    with dns_server_running({KEY_NAME: key_record(key)}) as server:
        settings.DKIM_NAMESERVERS = [server.nameserver]
        settings.DKIM_DNS_TIMEOUT = 1.0
        yield sign(compose(), key)


def test_staff_paste_a_message_and_read_the_checks(page, live_server, django_user_model, signed):
    django_user_model.objects.create_user("support", password="a-long-password", is_staff=True)
    page.add_init_script(RECORD_VIOLATIONS)
    page.csp_console = []
    page.on(
        "console",
        lambda m: page.csp_console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    log_in(page, live_server.url, ("support", "a-long-password"))
    page.goto(live_server.url + "/admin/preflight/")
    assert "Pre-send message check" in page.text_content("#content h1")

    page.get_by_label("Message").fill(signed.decode())
    page.get_by_role("button", name="Check").click()
    page.wait_for_selector("#preflight-checks")

    statuses = page.locator("#preflight-checks .preflight-status").all_text_contents()
    assert statuses == ["pass"] * 8
    assert "PASS" in page.text_content("#preflight-verdict")
    # The page's own style sheet applied (its nonce allowed it): a passing status is green.
    colour = page.locator("#check-dkim_valid .preflight-status").evaluate(
        "s => getComputedStyle(s).backgroundColor"
    )
    assert colour == "rgb(68, 126, 54)"
    assert violations(page) == []
