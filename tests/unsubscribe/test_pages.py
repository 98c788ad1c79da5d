"""The recipient's pages: translated, phone-sized, self-contained."""

import re
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.django_db


def test_pages_speak_german_to_a_german_browser(client, mint):
    path = urlparse(mint().url).path
    page = client.get(path, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content.decode()
    assert '<html lang="de">' in page
    assert "Abmelden bei Default" in page
    assert "Alle Werbe-E-Mails von Default abbestellen" in page
    done = client.post(path, {"List-Unsubscribe": "One-Click"}, HTTP_ACCEPT_LANGUAGE="de")
    assert "Sie sind abgemeldet" in done.content.decode()


def test_english_is_the_default(client, mint):
    page = client.get(urlparse(mint().url).path).content.decode()
    assert '<html lang="en">' in page and "Unsubscribe from Default" in page


def test_pages_fit_a_phone_and_load_nothing_from_elsewhere(client, mint):
    path = urlparse(mint().url).path
    for response in (client.get(path), client.get("/u/invalid-token-here")):
        page = response.content.decode()
        assert 'name="viewport" content="width=device-width' in page
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
        assert "<script" not in page
        assert "<link" not in page


def test_the_invalid_link_page_tells_what_to_do(client):
    page = client.get("/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").content.decode()
    assert "reply to it and ask to be removed" in page
