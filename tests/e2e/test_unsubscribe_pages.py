"""A recipient opens the link in a real browser, sees the choices, clicks, and is unsubscribed."""

from urllib.parse import urlparse

import pytest

from suppression import selectors
from suppression.models import Suppression
from unsubscribe.models import UnsubscribeRequest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def link(live_server, mint, default_tenant, make_topic):
    stream = default_tenant.streams.get(slug="marketing")
    make_topic(stream, "offers", "Special offers")
    make_topic(stream, "news", "Newsletter")
    return live_server.url + urlparse(mint("reader@example.com").url).path


def test_opening_the_page_changes_nothing(page, link):
    page.goto(link)
    assert "Unsubscribe from Default" in page.text_content("h1")
    page.reload()
    assert Suppression.objects.count() == 0
    assert UnsubscribeRequest.objects.count() == 0


def test_the_recipient_sees_the_topics_and_unsubscribes_with_one_click(
    page, link, default_tenant, tmp_path
):
    page.goto(link)
    body = page.text_content("body")
    assert "Special offers" in body and "Newsletter" in body
    shot = tmp_path / "landing-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")

    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    page.wait_for_selector("text=You are unsubscribed")
    stream = default_tenant.streams.get(slug="marketing")
    assert selectors.is_suppressed(stream=stream, address="reader@example.com").suppressed
    assert UnsubscribeRequest.objects.get().channel == "landing_page"


def test_the_recipient_leaves_one_topic_in_the_preference_centre(page, link, default_tenant):
    page.goto(link)
    page.get_by_label("Special offers").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_selector("text=Your choices are saved")
    assert [s.scope_label for s in Suppression.objects.all()] == ["topic:marketing/offers"]
    page.get_by_role("link", name="Back to your choices").click()
    assert not page.get_by_label("Special offers").is_checked()
    assert page.get_by_label("Newsletter").is_checked()
