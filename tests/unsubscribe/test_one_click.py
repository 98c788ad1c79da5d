"""RFC 8058 one-click POST and the landing page's GET safety."""

from urllib.parse import urlparse

import pytest
from django.test import Client

from compliance.models import OptOutRequest
from suppression import selectors
from suppression.models import Suppression
from unsubscribe.models import UnsubscribeRequest

pytestmark = pytest.mark.django_db


def path_of(link) -> str:
    return urlparse(link.url).path


def marketing(default_tenant):
    return default_tenant.streams.get(slug="marketing")


def assert_suppressed(default_tenant, address="pat@example.com", topic=None) -> None:
    assert selectors.is_suppressed(
        stream=marketing(default_tenant), address=address, topic=topic
    ).suppressed


def test_urlencoded_one_click_unsubscribes(client, mint, default_tenant):
    link = mint()
    response = client.post(
        path_of(link),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        HTTP_USER_AGENT="Mozilla/5.0 (Gmail one-click)",
    )
    assert response.status_code == 200
    assert_suppressed(default_tenant)
    request = UnsubscribeRequest.objects.get()
    assert (request.channel, request.ip, request.user_agent) == (
        "one_click",
        "127.0.0.1",
        "Mozilla/5.0 (Gmail one-click)",
    )
    entry = Suppression.objects.get()
    assert (entry.scope_label, entry.reason, entry.origin, entry.evidence) == (
        "stream:marketing",
        "unsubscribe",
        "recipient",
        request,
    )
    opt_out = OptOutRequest.objects.get()
    assert (opt_out.channel, opt_out.scope_label) == ("one_click", "stream:marketing")


def test_multipart_one_click_unsubscribes(client, mint, default_tenant):
    response = client.post(path_of(mint()), {"List-Unsubscribe": "One-Click"})  # multipart
    assert response.status_code == 200
    assert_suppressed(default_tenant)


ONE_CLICK = {
    "data": "List-Unsubscribe=One-Click",
    "content_type": "application/x-www-form-urlencoded",
}


def test_a_repeated_one_click_answers_200_and_is_stored_once(client, mint):
    path = path_of(mint())
    first = client.post(path, **ONE_CLICK)
    again = client.post(path, **ONE_CLICK)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert Suppression.objects.count() == 1
    assert OptOutRequest.objects.count() == 1
    assert UnsubscribeRequest.objects.count() == 1  # the first request is the evidence


def test_the_landing_page_button_after_a_one_click_is_a_repeat_but_a_wider_scope_is_not(
    client, mint
):
    path = path_of(mint(campaign="spring"))
    client.post(path, **ONE_CLICK)
    client.post(path_of(mint(campaign="summer")), {"List-Unsubscribe": "One-Click", "from": "page"})
    assert UnsubscribeRequest.objects.count() == 1  # same recipient, list and scope
    client.post(path, {"List-Unsubscribe": "One-Click", "from": "page", "breadth": "commercial"})
    assert sorted(UnsubscribeRequest.objects.values_list("breadth", flat=True)) == [
        "commercial",
        "link",
    ]


def test_a_repeat_in_a_later_window_is_stored_again(client, mint, settings, monkeypatch):
    import datetime

    from unsubscribe.services import optouts

    settings.UNSUBSCRIBE_REPEAT_WINDOW_SECONDS = 600
    path = path_of(mint())
    start = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
    for minutes in (0, 9, 10):  # 10:00 and 10:09 share a window, 10:10 starts the next
        monkeypatch.setattr(
            optouts, "_now", lambda m=minutes: start + datetime.timedelta(minutes=m)
        )
        assert client.post(path, **ONE_CLICK).status_code == 200
    assert [r.received_at.minute for r in UnsubscribeRequest.objects.order_by("pk")] == [0, 10]


def test_without_a_window_every_request_is_stored(client, mint, settings):
    settings.UNSUBSCRIBE_REPEAT_WINDOW_SECONDS = 0
    path = path_of(mint())
    client.post(path, **ONE_CLICK)
    client.post(path, **ONE_CLICK)
    assert UnsubscribeRequest.objects.count() == 2
    assert Suppression.objects.count() == 1


def test_a_recipient_who_resubscribed_is_unsubscribed_again_by_the_next_click(
    client, mint, default_tenant
):
    path = path_of(mint())
    client.post(path, **ONE_CLICK)
    client.post(f"{path}/preferences", {"receive": ["stream"]})  # ticks the stream again
    assert not selectors.is_suppressed(
        stream=marketing(default_tenant), address="pat@example.com"
    ).suppressed
    assert client.post(path, **ONE_CLICK).status_code == 200  # within the same window
    assert_suppressed(default_tenant)
    assert UnsubscribeRequest.objects.filter(channel="one_click").count() == 2


def test_an_opt_out_lifted_by_staff_can_be_made_again_at_once(client, mint, default_tenant):
    from suppression import services as suppression_services

    path = path_of(mint())
    client.post(path, **ONE_CLICK)
    suppression_services.lift(
        suppression=Suppression.objects.get(), note="the recipient asked us by phone"
    )
    client.post(path, **ONE_CLICK)
    assert_suppressed(default_tenant)
    assert UnsubscribeRequest.objects.count() == 2


def test_one_click_never_redirects_sets_no_cookie_and_needs_no_csrf(mint):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        path_of(mint()),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Location" not in response
    assert not response.cookies
    assert "Set-Cookie" not in str(response.serialize_headers())


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
        ('{"List-Unsubscribe": "One-Click"}', "application/json"),
    ],
)
def test_a_wrong_body_is_400_and_changes_nothing(client, mint, body, content_type):
    response = client.post(path_of(mint()), body, content_type=content_type)
    assert response.status_code == 400
    assert "List-Unsubscribe=One-Click" in response.content.decode()
    assert Suppression.objects.count() == 0


def test_a_topic_link_opts_out_of_that_topic_only(client, mint, default_tenant, make_topic):
    offers = make_topic(marketing(default_tenant), "offers")
    news = make_topic(marketing(default_tenant), "news")
    client.post(path_of(mint(topic=offers)), {"List-Unsubscribe": "One-Click"})
    assert_suppressed(default_tenant, topic=offers)
    assert not selectors.is_suppressed(
        stream=marketing(default_tenant), topic=news, address="pat@example.com"
    ).suppressed


def test_the_page_button_can_stop_all_commercial_mail(client, mint, default_tenant, make_tenant):
    client.post(
        path_of(mint()), {"List-Unsubscribe": "One-Click", "from": "page", "breadth": "commercial"}
    )
    entry = Suppression.objects.get()
    assert entry.scope_label == "commercial"
    assert UnsubscribeRequest.objects.get().channel == "landing_page"
    transactional = default_tenant.streams.get(slug="transactional")
    assert not selectors.is_suppressed(stream=transactional, address="pat@example.com").suppressed


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_get_head_and_options_change_nothing(client, mint, method):
    response = getattr(client, method)(path_of(mint()))
    assert response.status_code == 200
    assert Suppression.objects.count() == 0
    assert UnsubscribeRequest.objects.count() == 0
    assert not response.cookies


def test_the_landing_page_says_what_will_stop_and_offers_a_button(
    client, mint, default_tenant, make_topic
):
    offers = make_topic(marketing(default_tenant), "offers", "Special offers")
    page = client.get(path_of(mint(topic=offers))).content.decode()
    assert "Special offers" in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert "<script" not in page
    assert "http://" not in page.replace('href=""', "") and "https://" not in page


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-5],
        lambda t: t[:10],
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t[1:],
        lambda t: "not-a-token-at-all",
    ],
)
def test_a_tampered_or_truncated_token_gets_a_4xx_page_that_reveals_nothing(client, mint, mangle):
    token = urlparse(mint().url).path.rsplit("/", 1)[1]
    bad = f"/u/{mangle(token)}"
    for response in (client.get(bad), client.post(bad, {"List-Unsubscribe": "One-Click"})):
        assert response.status_code == 400
        page = response.content.decode()
        assert "does not work" in page
        assert "pat@example.com" not in page and "example.com" not in page
    assert Suppression.objects.count() == 0


def test_a_valid_token_for_a_deleted_stream_is_the_same_4xx(client, mint, default_tenant):
    from compliance.models import Stream

    stream = Stream.objects.create(
        tenant=default_tenant, slug="gone", name="Gone", kind=Stream.Kind.COMMERCIAL
    )
    link = mint(stream="gone")
    stream.delete()
    assert client.get(path_of(link)).status_code == 400
    assert client.post(path_of(link), {"List-Unsubscribe": "One-Click"}).status_code == 400
    assert Suppression.objects.count() == 0


def test_other_methods_are_refused(client, mint):
    response = client.put(path_of(mint()))
    assert response.status_code == 405
    assert "POST" in response["Allow"]
