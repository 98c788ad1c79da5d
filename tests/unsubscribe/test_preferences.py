"""The preference centre: each choice maps to the right scope; resubscribing records consent and
never lifts what the recipient did not set themselves."""

from urllib.parse import urlparse

import pytest

from compliance.consent.models import ConsentRecord
from suppression.models import Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(default_tenant, make_topic, mint):
    stream = default_tenant.streams.get(slug="marketing")
    offers = make_topic(stream, "offers", "Special offers")
    news = make_topic(stream, "news", "Newsletter")
    link = mint()
    path = urlparse(link.url).path
    return {"offers": offers, "news": news, "path": path, "prefs": f"{path}/preferences"}


def active_scopes() -> set[str]:
    from suppression.models import active_q

    return {s.scope_label for s in Suppression.objects.filter(active_q())}


def test_the_centre_lists_the_topics_with_their_state(client, setup, suppress):
    suppress("pat@example.com", "unsubscribe", scope="topic:marketing/news")
    page = client.get(setup["path"]).content.decode()
    assert "Special offers" in page and "Newsletter" in page
    assert 'value="topic:offers" checked' in page
    assert 'value="topic:news" checked' not in page


def test_unticking_topics_opts_out_of_exactly_those_topics(client, setup):
    response = client.post(setup["prefs"], {"receive": ["stream", "topic:news"]})
    assert response.status_code == 200
    assert active_scopes() == {"topic:marketing/offers"}
    request = Suppression.objects.get().evidence
    assert request.channel == "preference_centre"


def test_unticking_the_stream_opts_out_of_the_stream(client, setup):
    client.post(setup["prefs"], {"receive": ["topic:news", "topic:offers"]})
    assert active_scopes() == {"stream:marketing"}


def test_stop_all_opts_out_of_all_commercial_mail(client, setup):
    client.post(
        setup["prefs"], {"receive": ["stream", "topic:news", "topic:offers"], "stop_all": "on"}
    )
    assert active_scopes() == {"commercial"}


def test_ticking_a_topic_again_resubscribes_and_records_consent(client, setup):
    client.post(setup["prefs"], {"receive": ["stream", "topic:news"]})
    client.post(setup["prefs"], {"receive": ["stream", "topic:news", "topic:offers"]})
    assert active_scopes() == set()
    withdrawal, consent = ConsentRecord.objects.order_by("id")
    assert (withdrawal.action, withdrawal.purpose, withdrawal.method) == (
        "withdrawn",
        "marketing/offers",
        "preference_centre",
    )
    assert (consent.action, consent.purpose, consent.method, consent.basis) == (
        "granted",
        "marketing/offers",
        "preference_centre",
        "consent",
    )
    assert consent.address == "pat@example.com"
    assert "Default" in consent.text.body
    entry = Suppression.objects.get()
    assert [e.action for e in entry.events.order_by("id")] == ["add", "lift"]


def test_a_complaint_is_never_lifted_from_the_centre(client, setup, suppress):
    suppress("pat@example.com", "complaint", scope="stream:marketing")
    page = client.get(setup["path"]).content.decode()
    assert "already stopped for another reason" in page
    client.post(setup["prefs"], {"receive": ["stream", "topic:news", "topic:offers"]})
    assert active_scopes() == {"stream:marketing"}
    assert not ConsentRecord.objects.filter(action="granted").exists()


def test_a_global_bounce_is_shown_and_left_alone(client, setup, suppress):
    suppress("pat@example.com", "hard_bounce", scope="global")
    page = client.get(setup["path"]).content.decode()
    assert "already stopped for another reason" in page
    client.post(setup["prefs"], {"receive": ["stream", "topic:news", "topic:offers"]})
    assert active_scopes() == {"global"}


def test_saving_unchanged_choices_changes_nothing(client, setup):
    client.post(setup["prefs"], {"receive": ["stream", "topic:news", "topic:offers"]})
    assert Suppression.objects.count() == 0
    assert ConsentRecord.objects.count() == 0


def test_the_preferences_form_needs_a_valid_token(client, setup):
    response = client.post(setup["prefs"].replace("/u/", "/u/x"), {"receive": []})
    assert response.status_code == 400
    assert client.get(setup["prefs"]).status_code == 405
