"""The blocking rule: which entries stop which mail (the README's table)."""

import pytest

from compliance.models import Stream
from suppression import rules, selectors

pytestmark = pytest.mark.django_db

ADDRESS = "pat@example.com"


@pytest.fixture
def streams(default_tenant, make_topic):
    marketing = Stream.objects.get(tenant=default_tenant, slug="marketing")
    newsletter = Stream.objects.create(
        tenant=default_tenant, slug="newsletter", name="Newsletter", kind=Stream.Kind.COMMERCIAL
    )
    transactional = Stream.objects.get(tenant=default_tenant, slug="transactional")
    return {
        "marketing": marketing,
        "newsletter": newsletter,
        "transactional": transactional,
        "offers": make_topic(marketing, "offers"),
        "events": make_topic(marketing, "events"),
    }


def verdicts(streams):
    """Which sends the entry blocks: marketing, marketing/offers, marketing/events, newsletter,
    transactional."""
    result = {}
    for name, stream, topic in [
        ("marketing", streams["marketing"], None),
        ("offers", streams["marketing"], streams["offers"]),
        ("events", streams["marketing"], streams["events"]),
        ("newsletter", streams["newsletter"], None),
        ("transactional", streams["transactional"], None),
    ]:
        result[name] = selectors.is_suppressed(
            stream=stream, topic=topic, address=ADDRESS
        ).suppressed
    return {name for name, blocked in result.items() if blocked}


ALL_COMMERCIAL = {"marketing", "offers", "events", "newsletter"}


@pytest.mark.parametrize("reason", sorted(rules.NEVER_MAIL))
def test_never_mail_entries_block_everything_even_transactional(streams, suppress, reason):
    suppress(ADDRESS, reason, scope="global")
    assert verdicts(streams) == ALL_COMMERCIAL | {"transactional"}


@pytest.mark.parametrize(
    "reason", ["unsubscribe", "complaint", "objection", "manual", "soft_bounce"]
)
def test_a_marketing_opt_out_never_stops_a_password_reset(streams, suppress, reason):
    suppress(ADDRESS, reason, scope="global")
    assert verdicts(streams) == ALL_COMMERCIAL


def test_all_commercial_entry_blocks_every_commercial_stream_only(streams, suppress):
    suppress(ADDRESS, "unsubscribe", scope="commercial")
    assert verdicts(streams) == ALL_COMMERCIAL


def test_stream_entry_blocks_that_stream_and_its_topics(streams, suppress):
    suppress(ADDRESS, "unsubscribe", scope="stream:marketing")
    assert verdicts(streams) == {"marketing", "offers", "events"}


def test_topic_entry_blocks_only_that_topic(streams, suppress):
    suppress(ADDRESS, "unsubscribe", scope="topic:marketing/offers")
    assert verdicts(streams) == {"offers"}


def test_shared_entries_block_every_tenant(streams, suppress, make_tenant):
    other = make_tenant("other")
    suppress(ADDRESS, "hard_bounce", scope="global", tenant=None)
    other_marketing = other.streams.get(slug="marketing")
    assert selectors.is_suppressed(stream=other_marketing, address=ADDRESS).suppressed
    assert "transactional" in verdicts(streams)


def test_one_tenants_entries_do_not_block_another_tenant(streams, suppress, make_tenant):
    other = make_tenant("other")
    suppress(ADDRESS, "hard_bounce", scope="global")
    suppress(ADDRESS, "unsubscribe", scope="commercial")
    for stream in other.streams.all():
        assert not selectors.is_suppressed(stream=stream, address=ADDRESS).suppressed


def test_the_widest_blocking_entry_is_reported(streams, suppress):
    suppress(ADDRESS, "unsubscribe", scope="topic:marketing/offers")
    suppress(ADDRESS, "complaint", scope="commercial")
    verdict = selectors.is_suppressed(
        stream=streams["marketing"], topic=streams["offers"], address=ADDRESS
    )
    assert (verdict.reason, verdict.scope) == ("complaint", "commercial")


def test_expired_entries_no_longer_block(streams, suppress):
    import datetime

    from django.utils import timezone

    suppress(
        ADDRESS,
        "soft_bounce",
        scope="global",
        expires_at=timezone.now() - datetime.timedelta(seconds=1),
    )
    assert verdicts(streams) == set()


def test_the_address_matches_in_any_case_or_idna_form(streams, suppress):
    suppress("Pat@Bücher.example", "unsubscribe", scope="commercial")
    for form in ["pat@bücher.example", "PAT@xn--bcher-kva.example", "  pat@BÜCHER.example "]:
        assert selectors.is_suppressed(stream=streams["marketing"], address=form).suppressed
