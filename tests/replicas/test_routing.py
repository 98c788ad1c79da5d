"""Which database a read goes to, without a real replica: the choice among replicas (lag, down,
turns, remembered health), the router, the fall-back to the primary when a replica fails a read,
the settings and /healthz. tests/replicas/test_streaming_replica.py does it for real."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext

from compliance import replicas
from compliance.models import Stream
from suppression import selectors, services
from suppression.scopes import Target
from tests.support import (
    run_manage,
    run_python,
    service_env,
    wait_until_the_feed_shows_every_change,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeMeasure:
    """What each replica answers to the lag query: seconds, or a problem."""

    def __init__(self, **lags) -> None:
        self.lags = lags
        self.asked: list[str] = []

    def __call__(self, alias: str) -> tuple[float | None, str]:
        self.asked.append(alias)
        lag = self.lags[alias]
        if isinstance(lag, str):
            return None, lag
        return lag, ""


def make(measure: FakeMeasure, *, max_lag=5.0, recheck=1.0) -> tuple[replicas.Replicas, FakeClock]:
    clock = FakeClock()
    chosen = replicas.Replicas(
        list(measure.lags),
        max_lag=max_lag,
        recheck_seconds=recheck,
        measure=measure,
        clock=clock,
    )
    return chosen, clock


def test_healthy_replicas_take_turns():
    chosen, _ = make(FakeMeasure(replica_0=0.0, replica_1=1.5))
    assert [chosen.choose() for _ in range(4)] == [
        "replica_0",
        "replica_1",
        "replica_0",
        "replica_1",
    ]


def test_a_replica_behind_the_bound_or_down_is_skipped_for_the_primary():
    chosen, _ = make(FakeMeasure(replica_0=5.01, replica_1="unreachable: OperationalError"))
    assert chosen.choose() == DEFAULT_DB_ALIAS
    states = {s.alias: s for s in chosen.measure_all()}
    assert states["replica_0"].ok is False
    assert "over REPLICA_MAX_LAG_SECONDS=5" in states["replica_0"].problem
    assert states["replica_1"].as_json() == {
        "alias": "replica_1",
        "ok": False,
        "lag_seconds": None,
        "error": "unreachable: OperationalError",
    }


def test_a_lag_of_exactly_the_bound_still_serves():
    chosen, _ = make(FakeMeasure(replica_0=5.0, replica_1=6.0))
    assert {chosen.choose() for _ in range(3)} == {"replica_0"}


def test_health_is_measured_once_per_interval_then_again(caplog):
    measure = FakeMeasure(replica_0=0.1)
    chosen, clock = make(measure, recheck=2.0)
    for _ in range(10):
        chosen.choose()
    assert measure.asked == ["replica_0"]

    measure.lags["replica_0"] = 30.0  # it falls behind
    clock.now += 1.9
    assert chosen.choose() == "replica_0"  # not known yet: remembered health stands
    clock.now += 0.2
    with caplog.at_level(logging.INFO, logger="compliance.replicas"):
        assert [chosen.choose() for _ in range(5)] == [DEFAULT_DB_ALIAS] * 5
        measure.lags["replica_0"] = 0.0
        clock.now += 2.0
        assert chosen.choose() == "replica_0"
    assert len(measure.asked) == 3
    messages = [r.getMessage() for r in caplog.records]
    # Logged once when skipped and once when back, not on every read.
    assert messages == [
        "read replica replica_0 skipped, relay reads go to the primary: "
        "lag 30.000s over REPLICA_MAX_LAG_SECONDS=5",
        "read replica replica_0 serves again (lag 0.000s)",
    ]


def test_a_replica_that_failed_a_read_is_skipped_until_measured_again():
    measure = FakeMeasure(replica_0=0.0)
    chosen, clock = make(measure)
    assert chosen.choose() == "replica_0"
    chosen.failed("replica_0", ConnectionError("server closed the connection"))
    assert chosen.choose() == DEFAULT_DB_ALIAS
    clock.now += 1.0
    assert chosen.choose() == "replica_0"


def test_the_router_sends_only_relay_reads_elsewhere():
    router = replicas.ReplicaRouter()
    assert router.db_for_read(Stream) == DEFAULT_DB_ALIAS
    token = replicas._reading_from.set("replica_0")
    try:
        assert router.db_for_read(Stream) == "replica_0"
        assert router.db_for_write(Stream) == DEFAULT_DB_ALIAS  # writes never leave the primary
    finally:
        replicas._reading_from.reset(token)
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "suppression") is True
    assert router.allow_migrate("replica_0", "suppression") is False


# --- relay reads on a second database alias, in this process -------------------------------


def _add_alias(alias: str, settings_dict: dict) -> None:
    """A connection under `alias` in this thread, made by hand: the test framework allows
    queries only to the databases a test names, except to connections made like this."""
    connections[alias] = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)


def _remove_alias(alias: str) -> None:
    connections[alias].close()
    del connections[alias]


@pytest.fixture
def second_alias(transactional_db, monkeypatch):
    """`replica_0`: a second connection to the test database, made the one healthy replica
    (committed data is visible through it: transactional tests)."""
    _add_alias("replica_0", {**connections[DEFAULT_DB_ALIAS].settings_dict})
    monkeypatch.setattr(replicas, "_replicas", make(FakeMeasure(replica_0=0.0), recheck=60)[0])
    yield "replica_0"
    _remove_alias("replica_0")


@pytest.fixture
def dead_alias(transactional_db, monkeypatch):
    """`replica_0` on a port nothing listens on, though its last measurement said healthy (it
    went down since)."""
    _add_alias(
        "replica_0",
        {
            **connections[DEFAULT_DB_ALIAS].settings_dict,
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": 1,
            "NAME": "gone",
            "USER": "postgres",
            "OPTIONS": {"connect_timeout": 2},
        },
    )
    chosen = make(FakeMeasure(replica_0=0.0), recheck=60)[0]
    monkeypatch.setattr(replicas, "_replicas", chosen)
    yield chosen
    _remove_alias("replica_0")


def _listed(default_tenant, address: str) -> Stream:
    stream = Stream.objects.get(tenant=default_tenant, slug="marketing")
    services.suppress(
        target=Target(tenant=default_tenant, scope="global"),
        address=address,
        reason="manual",
        origin="api",
    )
    return stream


def test_a_relay_read_reads_the_replica_and_nothing_from_the_primary(second_alias, default_tenant):
    stream = _listed(default_tenant, "pat@example.com")
    wait_until_the_feed_shows_every_change()
    check = replicas.relay_read(selectors.is_suppressed)
    batch = replicas.relay_read(selectors.suppressed_among)
    feed = replicas.relay_read(selectors.changes_since)
    with (
        CaptureQueriesContext(connections[second_alias]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        assert check(stream=stream, address="pat@example.com").suppressed is True
        assert [
            v["address"] for v in batch(stream=stream, addresses_=["pat@example.com"]).suppressed
        ] == ["pat@example.com"]
        events, _ = feed(selectors.Cursor(0, 0), limit=10, tenant_ids=None)
        assert [e.current.address for e in events] == ["pat@example.com"]
    assert len(on_replica.captured_queries) >= 4  # the lookups, the feed and its rows
    assert on_primary.captured_queries == []


def test_reads_outside_relay_reads_and_inside_a_write_transaction_use_the_primary(
    second_alias, default_tenant
):
    stream = _listed(default_tenant, "kim@example.com")
    with CaptureQueriesContext(connections[second_alias]) as on_replica:
        assert selectors.is_suppressed(stream=stream, address="kim@example.com").suppressed
        with transaction.atomic():
            # A read in the transaction of a write must see that write: the primary.
            assert replicas.relay_read(selectors.is_suppressed)(
                stream=stream, address="kim@example.com"
            ).suppressed
            with replicas.relay_reads() as alias:
                assert alias == DEFAULT_DB_ALIAS
    assert on_replica.captured_queries == []


def test_a_replica_that_fails_a_read_is_answered_by_the_primary(dead_alias, default_tenant, caplog):
    stream = _listed(default_tenant, "lee@example.com")
    with caplog.at_level(logging.WARNING, logger="compliance.replicas"):
        verdict = replicas.relay_read(selectors.is_suppressed)(
            stream=stream, address="lee@example.com"
        )
    assert verdict.suppressed is True
    assert "relay read on replica replica_0 failed" in caplog.text
    assert dead_alias.state("replica_0").ok is False  # skipped until measured again


def test_an_export_is_not_begun_on_a_replica_that_does_not_answer(dead_alias):
    assert replicas.relay_alias() == DEFAULT_DB_ALIAS
    assert dead_alias.state("replica_0").problem.startswith("a read failed")


def test_healthz_lists_each_replica_with_its_lag(db, client, monkeypatch):
    monkeypatch.setattr(replicas, "configured_aliases", lambda: ["replica_0", "replica_1"])
    monkeypatch.setattr(
        replicas,
        "_replicas",
        make(FakeMeasure(replica_0=0.25, replica_1="unreachable: OperationalError"))[0],
    )
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "eager",
        "replicas": [
            {"alias": "replica_0", "ok": True, "lag_seconds": 0.25},
            {
                "alias": "replica_1",
                "ok": False,
                "lag_seconds": None,
                "error": "unreachable: OperationalError",
            },
        ],
    }


# --- settings ----------------------------------------------------------------------------------


def test_each_replica_url_becomes_a_database_of_its_own():
    result = run_python(
        "import django, json; django.setup(); from django.conf import settings;"
        "print(json.dumps({a: [d['HOST'], d['PORT'], d['OPTIONS'], d['TEST']['MIRROR']] "
        "for a, d in settings.DATABASES.items() if a != 'default'}));"
        "print(settings.REPLICA_MAX_LAG_SECONDS, settings.REPLICA_RECHECK_SECONDS)",
        env=service_env(
            DATABASE_URL="postgres://postgres@primary.internal:5432/compliance",
            REPLICA_DATABASE_URLS=(
                "postgres://reader@replica-a.internal:5432/compliance,"
                " postgres://reader@replica-b.internal:6432/compliance?connect_timeout=5"
            ),
        ),
    )
    assert result.returncode == 0, result.stderr
    aliases, bounds = result.stdout.strip().splitlines()
    assert json.loads(aliases) == {
        # Tests read the primary's test database through each replica's name.
        "replica_0": ["replica-a.internal", 5432, {"connect_timeout": 2}, "default"],
        "replica_1": ["replica-b.internal", 6432, {"connect_timeout": 5}, "default"],
    }
    assert bounds == "5.0 1.0"  # the defaults


def test_bad_replica_settings_stop_the_service_naming_each():
    result = run_manage(
        "check",
        env=service_env(
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/compliance",
            REPLICA_DATABASE_URLS="sqlite:///replica.sqlite3",
            REPLICA_MAX_LAG_SECONDS="0",
            REPLICA_RECHECK_SECONDS="-1",
        ),
    )
    assert result.returncode != 0
    errors = result.stderr.decode()
    assert "(compliance.E017) REPLICA_DATABASE_URLS: replica 0 is not a PostgreSQL URL" in errors
    assert "REPLICA_MAX_LAG_SECONDS must be more than 0, got 0.0" in errors
    assert "REPLICA_RECHECK_SECONDS must be 0 or more, got -1.0" in errors

    malformed = run_manage("check", env=service_env(REPLICA_DATABASE_URLS="replica-a:5432"))
    assert malformed.returncode != 0
    assert "REPLICA_DATABASE_URLS is malformed" in malformed.stderr.decode()

    on_sqlite = run_manage(
        "check", env=service_env(REPLICA_DATABASE_URLS="postgres://reader@replica-a/compliance")
    )
    assert on_sqlite.returncode != 0
    assert "REPLICA_DATABASE_URLS needs DATABASE_URL to be PostgreSQL" in on_sqlite.stderr.decode()
