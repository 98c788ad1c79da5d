"""The README's blocking table, run through every read path: each must give the same answer.

The paths: the check API's single lookup (`selectors.is_suppressed`) and batch lookup
(`selectors.suppressed_among`), the send decisions (`compliance.consent.selectors.decide_many`,
its denials for an entry), the Postfix policy server's lookup (`policy_server.check_recipients`,
called in this thread so it sees this module's transaction), the ORM path
(`sql._blocking_rows_orm`, SQLite's path, run here on PostgreSQL) and the relay mirror's export
(`mirror.blocking_hashes`). The expectation below is the README's table written out again, not
`rules.blocks`.

One entry per (scope, reason, state), each for its own address, is built once for the module.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from compliance.consent import selectors as consent_selectors
from compliance.models import Stream, Tenant, Topic
from suppression import addresses, mirror, policy_server, rules, selectors, services, sql
from suppression.scopes import parse_scope

pytestmark = pytest.mark.django_db

# README: "global, reason hard bounce, invalid, erasure or legal ("never mail")".
NEVER_MAIL = {"hard_bounce", "invalid", "erasure", "legal"}

TENANTS = ("own", "other")

# The sends checked, all of tenant "own": (name, stream slug, topic slug).
SENDS = {
    "transactional": ("transactional", None),
    "marketing": ("marketing", None),
    "marketing/offers": ("marketing", "offers"),
}

# The README's table, one row per kind of entry: (tenant of the entry, scope as written) and
# what it blocks for each send: "all" for every reason, "never mail" for NEVER_MAIL reasons only,
# None for nothing. Tenant None is an entry shared by every tenant.
TABLE = {
    "global shared": ((None, "global"), ("never mail", "all", "all")),
    "global own tenant": (("own", "global"), ("never mail", "all", "all")),
    "global other tenant": (("other", "global"), (None, None, None)),
    "commercial shared": ((None, "commercial"), (None, "all", "all")),
    "commercial own tenant": (("own", "commercial"), (None, "all", "all")),
    "commercial other tenant": (("other", "commercial"), (None, None, None)),
    "stream own": (("own", "stream:marketing"), (None, "all", "all")),
    "stream other": (("own", "stream:newsletter"), (None, None, None)),
    "topic own": (("own", "topic:marketing/offers"), (None, None, "all")),
    "topic other": (("own", "topic:marketing/events"), (None, None, None)),
}

# Only an entry in force blocks: not lifted, and without an expiry or with one still ahead.
STATES = {"active": True, "expires later": True, "lifted": False, "expired": False}


@dataclass(frozen=True)
class Entry:
    row: str  # the TABLE row
    reason: str
    state: str

    @property
    def address(self) -> str:
        return f"{self.row}-{self.reason}-{self.state}".replace(" ", "-") + "@example.org"

    def blocks(self, send: str) -> bool:
        _, cells = TABLE[self.row]
        cell = cells[list(SENDS).index(send)]
        in_force = STATES[self.state]
        return in_force and (cell == "all" or (cell == "never mail" and self.reason in NEVER_MAIL))


ENTRIES = [
    Entry(row, reason, state)
    for row, reason, state in itertools.product(TABLE, rules.PRECEDENCE, STATES)
]


@dataclass(frozen=True)
class World:
    tenants: dict[str, Tenant]
    streams: dict[str, Stream]
    topics: dict[str, Topic]
    by_hash: dict[bytes, str]  # address hash -> address


def digest(address: str) -> bytes:
    return addresses.address_hash(addresses.normalise(address), settings.ADDRESS_HASH_KEY.encode())


def build_world() -> World:
    tenants = {slug: Tenant.objects.create(slug=slug, name=slug.title()) for slug in TENANTS}
    streams = {}
    for tenant in tenants.values():
        for slug, kind in [
            ("transactional", Stream.Kind.TRANSACTIONAL),
            ("marketing", Stream.Kind.COMMERCIAL),
            ("newsletter", Stream.Kind.COMMERCIAL),
        ]:
            stream = Stream.objects.create(tenant=tenant, slug=slug, name=slug, kind=kind)
            streams[f"{tenant.slug}/{slug}"] = stream
    topics = {
        slug: Topic.objects.create(stream=streams["own/marketing"], slug=slug, name=slug)
        for slug in ("offers", "events")
    }
    staff = get_user_model().objects.create_superuser("rules", "rules@example.com", "pw")
    now = timezone.now()
    expiry = {"expires later": now + datetime.timedelta(days=1)}
    expiry["expired"] = now - datetime.timedelta(days=1)
    for entry in ENTRIES:
        tenant_slug, scope = TABLE[entry.row][0]
        target = parse_scope(tenants.get(tenant_slug), scope, reason=entry.reason)
        row = services.suppress(
            target=target,
            address=entry.address,
            reason=entry.reason,
            origin="api",
            expires_at=expiry.get(entry.state),
        ).suppression
        if entry.state == "lifted":
            services.lift(suppression=row, note="the recipient asked again", user=staff)
    return World(tenants, streams, topics, {digest(e.address): e.address for e in ENTRIES})


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Every entry of the table, in a transaction rolled back after the module."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


# --- the read paths: each answers which of the addresses a send must not reach ---------------


def by_single_check(world, stream, topic, asked):
    verdicts = [selectors.is_suppressed(stream=stream, topic=topic, address=a) for a in asked]
    return {v.address for v in verdicts if v.suppressed}


def by_batch_check(world, stream, topic, asked):
    verdict = selectors.suppressed_among(stream=stream, topic=topic, addresses_=asked)
    return {v["address"] for v in verdict.suppressed}


def by_policy_server(world, stream, topic, asked):
    assert topic is None  # Postfix mail has a stream, never a topic
    ref = policy_server.StreamRef(
        tenant_id=stream.tenant_id,
        tenant_slug=stream.tenant.slug,
        stream_id=stream.pk,
        slug=stream.slug,
        commercial=stream.is_commercial,
    )
    actions = policy_server.check_recipients(
        [(ref, a) for a in asked], settings.ADDRESS_HASH_KEY.encode()
    )
    return {a for a, action in zip(asked, actions, strict=True) if action.verb == "REJECT"}


def by_orm(world, stream, topic, asked):
    keys = rules.blocking_keys(
        tenant_id=stream.tenant_id,
        stream_id=stream.pk,
        commercial=stream.is_commercial,
        topic_id=topic.pk if topic else None,
    )
    rows = sql._blocking_rows_orm([digest(a) for a in asked], keys, timezone.now())
    return {world.by_hash[row.address_hash] for row in rows}


def by_mirror_export(world, stream, topic, asked):
    assert topic is None  # a relay's mirror is of one stream
    hashes = mirror.blocking_hashes(tenant=stream.tenant, stream=stream)
    # Anything not of this table shows up as its hash, and so as a difference.
    return {world.by_hash.get(bytes(h), bytes(h).hex()) for h in hashes}


def by_send_decisions(world, stream, topic, asked):
    # US law, so that only the list denies (consent is for the consent tests); the denials
    # that an entry caused, not the withdrawals that a lifted opt-out leaves in the ledger.
    decided = consent_selectors.decide_many(
        stream=stream, topic=topic, addresses_=asked, jurisdiction="US"
    )
    return {a for a, denial in decided.denied if denial.blocking is not None}


PATHS = {
    "single": by_single_check,
    "batch": by_batch_check,
    "send decisions": by_send_decisions,
    "policy server": by_policy_server,
    "orm": by_orm,
    "mirror": by_mirror_export,
}
WITHOUT_TOPICS = {"policy server", "mirror"}


@pytest.mark.parametrize(
    ("path", "send"),
    [
        (path, send)
        for path, send in itertools.product(PATHS, SENDS)
        if not (path in WITHOUT_TOPICS and SENDS[send][1])
    ],
)
def test_every_read_path_blocks_exactly_what_the_table_says(world, path, send):
    stream_slug, topic_slug = SENDS[send]
    stream = world.streams[f"own/{stream_slug}"]
    topic = world.topics[topic_slug] if topic_slug else None
    asked = [entry.address for entry in ENTRIES]

    blocked = PATHS[path](world, stream, topic, asked)

    expected = {entry.address for entry in ENTRIES if entry.blocks(send)}
    assert {
        "blocked but should not be": sorted(blocked - expected),
        "not blocked but should be": sorted(expected - blocked),
    } == {"blocked but should not be": [], "not blocked but should be": []}
