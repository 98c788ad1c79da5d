"""A sign-up through the API mails a link; the recipient opens it in a real browser, where the
page alone grants nothing, and presses the button, which grants once however often it is pressed."""

import pytest

from compliance.consent.models import ConsentRecord

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_page_grants_nothing_until_the_button_is_pressed(page, confirm_link):
    page.goto(confirm_link)
    assert page.text_content("h1") == "Confirm your subscription"
    button = page.get_by_role("button", name="Yes, subscribe me")
    assert button.is_visible()
    page.reload()
    assert not ConsentRecord.objects.exists()

    button.click()
    page.wait_for_selector("text=is confirmed")
    assert page.text_content("h1") == "Thank you"
    record = ConsentRecord.objects.get()
    assert (record.action, record.method) == ("granted", "double_opt_in")
    assert record.confirmed_at is not None
    assert record.confirmed_ip == "127.0.0.1"
    assert record.ip == "192.0.2.10"  # the sign-up's evidence stays with the grant


def test_pressing_again_is_friendly_and_grants_nothing_more(page, confirm_link):
    # A second tab opened before the first one's click still shows the button.
    other = page.context.new_page()
    page.goto(confirm_link)
    other.goto(confirm_link)
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.wait_for_selector("text=is confirmed")

    other.get_by_role("button", name="Yes, subscribe me").click()
    other.wait_for_selector("text=was confirmed before")
    assert other.text_content("h1") == "Already confirmed"

    page.goto(confirm_link)  # opening the link again
    assert page.text_content("h1") == "Already confirmed"
    assert page.get_by_role("button").count() == 0

    again = page.request.post(confirm_link)
    assert again.status == 200
    assert "was confirmed before" in again.text()
    assert ConsentRecord.objects.count() == 1


def test_a_german_browser_gets_the_page_in_german(browser, confirm_link):
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(confirm_link)
    assert page.text_content("h1") == "Bitte bestätigen Sie Ihre Anmeldung"
    page.get_by_role("button", name="Ja, Anmeldung bestätigen").click()
    page.wait_for_selector("text=ist bestätigt")
    assert ConsentRecord.objects.count() == 1
    context.close()
