"""The one-click INSERT and the policy server's lookup run as statements PostgreSQL keeps prepared
on the connection, and store or find the same rows as before; `DB_PREPARED_STATEMENTS=false`
(for a pooler that cannot keep prepared statements) runs them without preparing."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection

from suppression import addresses, policy_server, rules
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgresql_only(settings):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's; SQLite runs the plain cursor")
    settings.UNSUBSCRIBE_APPLY_INLINE = False


def click(client, link, **headers) -> None:
    answer = client.post(urlparse(link.url).path, {"List-Unsubscribe": "One-Click"}, **headers)
    assert answer.status_code == 200


def prepared(start: str) -> int:
    """How many statements starting with `start` this connection keeps prepared."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE starts_with(ltrim(statement, E' \\n'), %s)",
            [start],
        )
        return cursor.fetchone()[0]


def prepared_inserts() -> int:
    return prepared('INSERT INTO "unsubscribe_unsubscriberequest"')


def test_clicks_share_one_prepared_insert_and_keep_their_evidence(client, mint):
    click(client, mint("pat@example.com"), REMOTE_ADDR="2001:db8::7", HTTP_USER_AGENT="Mail/1.0")
    click(client, mint("sam@example.com"), REMOTE_ADDR="192.0.2.9", HTTP_USER_AGENT="Mail/2.0")

    assert prepared_inserts() == 1
    rows = {r.address: r for r in UnsubscribeRequest.objects.all()}
    assert (rows["pat@example.com"].ip, rows["pat@example.com"].user_agent) == (
        "2001:db8::7",
        "Mail/1.0",
    )
    assert (rows["sam@example.com"].ip, rows["sam@example.com"].user_agent) == (
        "192.0.2.9",
        "Mail/2.0",
    )
    assert all(r.applied_at is None and r.repeat_key for r in rows.values())


def test_a_replayed_capture_keeps_its_id_and_stores_once(default_tenant):
    stream = default_tenant.streams.get(slug="marketing")
    claims = Claims(tenant_id=default_tenant.pk, stream_id=stream.pk, recipient="pat@example.com")
    capture = str(uuid.uuid4())  # as the spool file gives it: text
    evidence = services.Evidence(channel="one_click", ip="", capture_id=capture)

    first = services.record_opt_out(claims=claims, evidence=evidence, apply_now=False)
    again = services.record_opt_out(claims=claims, evidence=evidence, apply_now=False)

    assert first is not None and again is None
    stored = UnsubscribeRequest.objects.get()
    assert (stored.capture_id, stored.ip) == (uuid.UUID(capture), None)


def test_without_prepared_statements_the_insert_is_not_prepared(client, mint, settings):
    settings.DB_PREPARED_STATEMENTS = False
    click(client, mint("pat@example.com"))
    click(client, mint("sam@example.com"))

    assert prepared_inserts() == 0
    assert UnsubscribeRequest.objects.count() == 2


def policy_lookups(default_tenant, address: str) -> list:
    policy_server._cursors.by_alias = {}  # a fresh cursor, as on a new connection
    marketing = default_tenant.streams.get(slug="marketing")
    keys = rules.blocking_keys(tenant_id=default_tenant.pk, stream_id=marketing.pk, commercial=True)
    digest = addresses.address_hash(address, settings.ADDRESS_HASH_KEY.encode())
    return [policy_server.blocking_entries([(digest, keys)]) for _ in range(6)]


def test_the_policy_lookup_is_prepared_and_finds_the_same_entries(client, mint, default_tenant):
    click(client, mint("pat@example.com"))  # pending: the lookup sees it as an unsubscribe
    marketing = default_tenant.streams.get(slug="marketing")
    expected = [[(f"{default_tenant.pk}:stream:{marketing.pk}", "unsubscribe")]]

    assert policy_lookups(default_tenant, "pat@example.com") == [expected] * 6
    assert prepared(sql_start()) == 1


def test_without_prepared_statements_the_policy_lookup_is_not_prepared(default_tenant, settings):
    settings.DB_PREPARED_STATEMENTS = False
    assert policy_lookups(default_tenant, "pat@example.com") == [[[]]] * 6
    assert prepared(sql_start()) == 0


def sql_start() -> str:
    from suppression import sql

    return sql.POLICY_LOOKUP_SQL.strip()[:40]
