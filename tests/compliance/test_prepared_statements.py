"""The one-click INSERT and the policy server's lookup run as statements PostgreSQL keeps prepared
on the connection, and store or find the same rows as before; `DB_PREPARED_STATEMENTS=false`
(for a pooler that cannot keep prepared statements) runs them without preparing."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from suppression import addresses, policy_server, rules
from tests.support import require
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgresql_only(settings):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
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


@pytest.mark.django_db(transaction=True)
def test_a_click_is_its_own_connection_check(client, mint, monkeypatch, requests_as_served):
    """No `SELECT 1` before the INSERT: a request's connection is checked by the INSERT itself."""
    links = [mint("pat@example.com"), mint("sam@example.com"), mint("kim@example.com")]
    requests_as_served()
    click(client, links[0])  # the stream is looked up once, checked as any first query is
    checks = []
    real = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real())
    for link in links[1:]:
        requests_as_served()
        click(client, link)

    assert checks == []
    assert UnsubscribeRequest.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_click_on_a_connection_the_server_closed_is_stored_on_a_new_one(
    client, mint, settings, tmp_path, requests_as_served
):
    settings.UNSUBSCRIBE_SPOOL_DIR = tmp_path
    first, second = mint("pat@example.com"), mint("sam@example.com")
    requests_as_served()
    click(client, first)
    dead = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [dead])

    requests_as_served()
    click(client, second)

    assert connection.connection.info.backend_pid != dead
    assert sorted(UnsubscribeRequest.objects.values_list("address", flat=True)) == [
        "pat@example.com",
        "sam@example.com",
    ]
    assert list(tmp_path.iterdir()) == []  # stored in the database, not captured to the spool
