"""The one-click INSERT runs as a statement PostgreSQL keeps prepared on the connection, and stores
the same row as before; `DB_PREPARED_STATEMENTS=false` (for a pooler that cannot keep prepared
statements) stores it without preparing."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest
from django.db import connection

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


def prepared_inserts() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements "
            "WHERE statement LIKE 'INSERT INTO \"unsubscribe_unsubscriberequest\"%%'"
        )
        return cursor.fetchone()[0]


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
