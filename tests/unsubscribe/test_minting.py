"""Minting List-Unsubscribe headers for the sending application (API and Python)."""

import re

import pytest

from unsubscribe import links

pytestmark = pytest.mark.django_db

MINT = "unsubscribe:mint"


def test_the_api_answers_the_exact_header_values(api_client, settings):
    settings.UNSUBSCRIBE_BASE_URL = "https://unsub.example.com"
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.example.com"
    answer = api_client(MINT).post(
        "/api/v1/unsubscribe-links",
        {"recipient": "Pat@Example.com", "stream": "marketing", "campaign": "nov-26"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    token = body["url"].rsplit("/", 1)[1]
    assert body["list_unsubscribe"] == (
        f"<https://unsub.example.com/u/{token}>, <mailto:unsubscribe+{token}@unsub.example.com>"
    )
    assert body["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert body["recipient"] == "pat@example.com"
    claims = links.read_claims(token)
    assert (claims.recipient, claims.campaign) == ("pat@example.com", "nov-26")


def test_without_a_mailto_domain_only_the_https_uri_is_given(api_client, settings):
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = ""
    body = (
        api_client(MINT)
        .post(
            "/api/v1/unsubscribe-links",
            {"recipient": "a@example.com", "stream": "marketing"},
            format="json",
        )
        .json()
    )
    assert re.fullmatch(r"<[^>]+/u/[\w-]+>", body["list_unsubscribe"])
    assert body["mailto"] is None


def test_a_list_of_recipients_gets_a_list_of_headers(api_client, default_tenant, make_topic):
    make_topic(default_tenant.streams.get(slug="marketing"), "offers")
    answer = api_client(MINT).post(
        "/api/v1/unsubscribe-links",
        [
            {"recipient": "a@example.com", "stream": "marketing"},
            {"recipient": "b@example.com", "stream": "marketing", "topic": "offers"},
        ],
        format="json",
    )
    assert [item["recipient"] for item in answer.json()] == ["a@example.com", "b@example.com"]
    topic_token = answer.json()[1]["url"].rsplit("/", 1)[1]
    assert links.read_claims(topic_token).topic_id is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"recipient": "nope", "stream": "marketing"}, "invalid recipient"),
        ({"recipient": "a@example.com", "stream": "transactional"}, "transactional"),
        ({"recipient": "a@example.com", "stream": "nosuch"}, "unknown stream"),
        ({"recipient": "a@example.com", "stream": "marketing", "topic": "nosuch"}, "unknown topic"),
        ({"stream": "marketing"}, "invalid input"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(api_client, body, message):
    answer = api_client(MINT).post("/api/v1/unsubscribe-links", body, format="json")
    assert answer.status_code == 400
    assert message in str(answer.json())


def test_minting_needs_its_scope(api_client):
    answer = api_client("suppression:read").post(
        "/api/v1/unsubscribe-links",
        {"recipient": "a@example.com", "stream": "marketing"},
        format="json",
    )
    assert answer.status_code == 403


def test_a_minted_link_works_end_to_end(api_client, client, default_tenant):
    from urllib.parse import urlparse

    from suppression import selectors

    url = (
        api_client(MINT)
        .post(
            "/api/v1/unsubscribe-links",
            {"recipient": "e2e@example.com", "stream": "marketing"},
            format="json",
        )
        .json()["url"]
    )
    assert client.post(urlparse(url).path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    stream = default_tenant.streams.get(slug="marketing")
    assert selectors.is_suppressed(stream=stream, address="e2e@example.com").suppressed
