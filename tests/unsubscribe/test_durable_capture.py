"""An acknowledged opt-out is never lost, even while the database is down."""

import json
import threading
import time
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.test import Client

from suppression import selectors
from suppression.models import Suppression
from tests.support import run_manage, run_python, same_database_env, service_env
from unsubscribe.models import UnsubscribeRequest

DEAD_DATABASE = "postgres://postgres@127.0.0.1:1/compliance"

ONE_CLICK_WITH_THE_DATABASE_DOWN = """
import django, json, sys
django.setup()
from django.test import Client
for _ in range(TIMES):
    response = Client(HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.7").post(
        sys.argv[1], "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded", HTTP_USER_AGENT="Yahoo one-click")
    print(json.dumps({"status": response.status_code}))
"""


def one_click_while_database_is_down(path: str, spool_dir, *, times: int = 1) -> int:
    code = ONE_CLICK_WITH_THE_DATABASE_DOWN.replace("sys.argv[1]", repr(path))
    code = code.replace("TIMES", str(times))
    result = run_python(
        code,
        env=service_env(
            DATABASE_URL=DEAD_DATABASE, DB_CONNECT_TIMEOUT="1", UNSUBSCRIBE_SPOOL_DIR=str(spool_dir)
        ),
    )
    assert result.returncode == 0, result.stderr
    statuses = {json.loads(line)["status"] for line in result.stdout.strip().splitlines()}
    assert len(statuses) == 1, statuses
    return statuses.pop()


@pytest.fixture
def spool_dir(tmp_path, settings):
    from unsubscribe import services

    settings.UNSUBSCRIBE_SPOOL_DIR = tmp_path / "spool"
    services.background_drain.reset()
    yield settings.UNSUBSCRIBE_SPOOL_DIR
    services.background_drain.join()


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
def test_a_replayed_one_click_while_the_database_is_down_is_spooled_once(
    mint, spool_dir, default_tenant
):
    path = urlparse(mint().url).path
    assert one_click_while_database_is_down(path, spool_dir, times=3) == 200
    assert len(list(spool_dir.glob("*.json"))) == 1

    from unsubscribe import services

    services.drain_spool()
    assert UnsubscribeRequest.objects.count() == 1


@pytest.mark.django_db
def test_a_spooled_opt_out_replayed_after_it_reached_the_database_is_stored_once(
    client, mint, spool_dir
):
    from unsubscribe import links, services

    link = mint()
    assert (
        client.post(urlparse(link.url).path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    )
    claims = links.read_claims(urlparse(link.url).path.rsplit("/", 1)[1])
    services.capture_opt_out(claims=claims, evidence=services.Evidence(channel="one_click"))
    assert services.drain_spool() == 1
    assert UnsubscribeRequest.objects.count() == 1


@pytest.mark.django_db
def test_applying_a_spooled_opt_out_twice_records_it_once(mint, spool_dir):
    from unsubscribe import links, services

    claims = links.read_claims(urlparse(mint().url).path.rsplit("/", 1)[1])
    services.capture_opt_out(claims=claims, evidence=services.Evidence(channel="one_click"))
    entry_file = next(spool_dir.glob("*.json"))
    copy = entry_file.read_bytes()
    services.drain_spool()
    entry_file.write_bytes(copy)  # as if the removal had been lost in a crash
    services.drain_spool()
    assert UnsubscribeRequest.objects.count() == 1
    assert Suppression.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # the drain runs in its own thread and connection
def test_the_next_successful_one_click_drains_the_spool_in_the_background(client, mint, spool_dir):
    from unsubscribe import links, services

    first = links.read_claims(urlparse(mint("first@example.com").url).path.rsplit("/", 1)[1])
    services.capture_opt_out(claims=first, evidence=services.Evidence(channel="one_click"))
    client.post(urlparse(mint("second@example.com").url).path, {"List-Unsubscribe": "One-Click"})
    services.background_drain.join()
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "first@example.com",
        "second@example.com",
    }
    assert list(spool_dir.glob("*.json")) == []


@pytest.mark.django_db(transaction=True)
def test_the_drain_command_applies_the_spool(mint, spool_dir):
    from unsubscribe import links, services

    claims = links.read_claims(urlparse(mint().url).path.rsplit("/", 1)[1])
    services.capture_opt_out(claims=claims, evidence=services.Evidence(channel="one_click"))
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


def spool_opt_outs(mint, count: int) -> None:
    from unsubscribe import links, services

    for n in range(count):
        claims = links.read_claims(
            urlparse(mint(f"spooled{n}@example.com").url).path.rsplit("/", 1)[1]
        )
        services.capture_opt_out(claims=claims, evidence=services.Evidence(channel="one_click"))


@pytest.mark.django_db(transaction=True)
def test_after_an_outage_concurrent_requests_answer_200_and_the_spool_is_stored_exactly_once(
    mint, spool_dir
):
    from unsubscribe import services

    spool_opt_outs(mint, 500)
    paths = [urlparse(mint(f"live{n}@example.com").url).path for n in range(8)]
    statuses: list[int] = []
    drained: list[int] = []
    errors: list[BaseException] = []

    def one_click(path: str) -> None:
        try:
            response = Client().post(path, {"List-Unsubscribe": "One-Click"})
            statuses.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def drain_command() -> None:  # the timer's `drain_unsubscribe_spool` in other processes
        try:
            drained.append(services.drain_spool())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    # Drainers first, then the requests one after another, so that some list the spool while
    # others are removing files from it.
    threads = [threading.Thread(target=drain_command) for _ in range(3)]
    threads += [threading.Thread(target=one_click, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    services.background_drain.join()
    services.drain_spool(wait=True)  # whatever a drainer left for its next run

    assert errors == []
    assert statuses == [200] * 8
    assert list(spool_dir.glob("*.json")) == []
    addresses = list(UnsubscribeRequest.objects.values_list("address", flat=True))
    assert len(addresses) == len(set(addresses)) == 508


@pytest.mark.django_db(transaction=True)
def test_a_request_never_waits_for_a_drain_in_progress(client, mint, spool_dir):
    from unsubscribe import services, spool

    spool_opt_outs(mint, 3)
    with spool.drain_lock(spool_dir, wait=True):  # another process is draining
        response = client.post(urlparse(mint().url).path, {"List-Unsubscribe": "One-Click"})
        services.background_drain.join()
        assert response.status_code == 200
        assert len(list(spool_dir.glob("*.json"))) == 3  # left to the drainer holding the lock
    assert services.drain_spool() == 3


def test_files_removed_by_another_drainer_while_listing_are_skipped(tmp_path, monkeypatch):
    import os

    from unsubscribe import spool

    directory = tmp_path / "spool"
    for n in range(3):
        spool.write(directory, {"n": n})
    victim = sorted(directory.glob("*.json"))[1]
    real_scandir = os.scandir

    class ListedThenRemoved(list):
        # Another drainer removes a file between our listing and our stat of it.
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def scandir(path="."):
        with real_scandir(path) as entries:
            listed = ListedThenRemoved(entries)
        victim.unlink(missing_ok=True)
        return listed

    monkeypatch.setattr(os, "scandir", scandir)
    left = [entry["n"] for _, entry in spool.pending(directory)]
    assert len(left) == 2
