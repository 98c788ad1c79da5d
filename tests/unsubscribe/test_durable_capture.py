"""An acknowledged opt-out is never lost, even while the database is down."""

import json
from urllib.parse import urlparse

import pytest

from suppression import selectors
from suppression.models import Suppression
from tests.support import run_manage, run_python, same_database_env, service_env
from unsubscribe.models import UnsubscribeRequest

DEAD_DATABASE = "postgres://postgres@127.0.0.1:1/compliance"

ONE_CLICK_WITH_THE_DATABASE_DOWN = """
import django, json, sys
django.setup()
from django.test import Client
response = Client(HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.7").post(
    sys.argv[1], "List-Unsubscribe=One-Click",
    content_type="application/x-www-form-urlencoded", HTTP_USER_AGENT="Yahoo one-click")
print(json.dumps({"status": response.status_code}))
"""


def one_click_while_database_is_down(path: str, spool_dir) -> int:
    code = ONE_CLICK_WITH_THE_DATABASE_DOWN.replace("sys.argv[1]", repr(path))
    result = run_python(
        code,
        env=service_env(
            DATABASE_URL=DEAD_DATABASE, DB_CONNECT_TIMEOUT="1", UNSUBSCRIBE_SPOOL_DIR=str(spool_dir)
        ),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["status"]


@pytest.fixture
def spool_dir(tmp_path, settings):
    settings.UNSUBSCRIBE_SPOOL_DIR = tmp_path / "spool"
    return settings.UNSUBSCRIBE_SPOOL_DIR


@pytest.mark.django_db
def test_one_click_is_acknowledged_and_spooled_while_the_database_is_down(
    mint, spool_dir, default_tenant
):
    path = urlparse(mint().url).path
    assert one_click_while_database_is_down(path, spool_dir) == 200
    spooled = list(spool_dir.glob("*.json"))
    assert len(spooled) == 1
    entry = json.loads(spooled[0].read_text())
    assert (entry["channel"], entry["ip"], entry["user_agent"]) == (
        "one_click",
        "192.0.2.7",
        "Yahoo one-click",
    )
    assert Suppression.objects.count() == 0

    from unsubscribe import services

    assert services.drain_spool() == 1
    assert list(spool_dir.glob("*.json")) == []
    stream = default_tenant.streams.get(slug="marketing")
    assert selectors.is_suppressed(stream=stream, address="pat@example.com").suppressed
    request = UnsubscribeRequest.objects.get()
    assert request.ip == "192.0.2.7"
    assert request.received_at.isoformat() == entry["received_at"]  # the deadline counts from here


@pytest.mark.django_db
def test_applying_a_spooled_opt_out_twice_records_it_once(mint, spool_dir):
    from unsubscribe import services

    claims = services.read_claims(urlparse(mint().url).path.rsplit("/", 1)[1])
    services.capture(claims=claims, evidence=services.Evidence(channel="one_click"))
    entry_file = next(spool_dir.glob("*.json"))
    copy = entry_file.read_bytes()
    services.drain_spool()
    entry_file.write_bytes(copy)  # as if the removal had been lost in a crash
    services.drain_spool()
    assert UnsubscribeRequest.objects.count() == 1
    assert Suppression.objects.count() == 1


@pytest.mark.django_db
def test_the_next_successful_one_click_drains_the_spool(client, mint, spool_dir):
    from unsubscribe import services

    first = services.read_claims(urlparse(mint("first@example.com").url).path.rsplit("/", 1)[1])
    services.capture(claims=first, evidence=services.Evidence(channel="one_click"))
    client.post(urlparse(mint("second@example.com").url).path, {"List-Unsubscribe": "One-Click"})
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "first@example.com",
        "second@example.com",
    }
    assert list(spool_dir.glob("*.json")) == []


@pytest.mark.django_db(transaction=True)
def test_the_drain_command_applies_the_spool(mint, spool_dir):
    from unsubscribe import services

    claims = services.read_claims(urlparse(mint().url).path.rsplit("/", 1)[1])
    services.capture(claims=claims, evidence=services.Evidence(channel="one_click"))
    result = run_manage(
        "drain_unsubscribe_spool", env=same_database_env(UNSUBSCRIBE_SPOOL_DIR=str(spool_dir))
    )
    assert result.returncode == 0, result.stderr
    assert "applied 1" in result.stdout.decode()
    assert Suppression.objects.filter(address="pat@example.com").exists()


def test_the_drain_command_says_so_when_the_database_is_still_down(tmp_path, mint_free_claims):
    spool_dir = tmp_path / "spool"
    from unsubscribe import spool

    spool.write(spool_dir, mint_free_claims)
    result = run_manage(
        "drain_unsubscribe_spool",
        env=service_env(
            DATABASE_URL=DEAD_DATABASE, DB_CONNECT_TIMEOUT="1", UNSUBSCRIBE_SPOOL_DIR=str(spool_dir)
        ),
    )
    assert result.returncode == 75
    assert "1 left" in result.stdout.decode()
    assert len(list(spool_dir.glob("*.json"))) == 1


@pytest.fixture
def mint_free_claims():
    return {
        "claims": {
            "tenant_id": 1,
            "recipient": "x@example.com",
            "stream_id": 1,
            "topic_id": None,
            "campaign": None,
            "issued_at": 0,
        },
        "channel": "one_click",
        "ip": None,
        "user_agent": "",
        "token_key_id": 1,
        "received_at": "2026-11-26T00:00:00+00:00",
        "scope": "link",
    }
