"""The relay mirror helper (docs/relays/suppression_mirror.py) against the live service: load an
export, follow the change feed over HTTP, answer checks as the service would."""

from __future__ import annotations

import importlib.util
import io
import itertools
import re
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.core.management import call_command

from suppression import addresses, rules, services
from suppression.models import Suppression
from tests.support import ROOT, wait_until_the_feed_shows_every_change

pytestmark = pytest.mark.django_db(transaction=True)

HELPER = ROOT / "docs" / "relays" / "suppression_mirror.py"
TIMEOUT = 60


def helper(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=TIMEOUT
    )


def load_helper_module():
    spec = importlib.util.spec_from_file_location("suppression_mirror", HELPER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


class Relay:
    """A mirror on 'the relay': its SQLite file and the helper's three commands."""

    def __init__(self, tmp_path, url: str, api_key: str) -> None:
        self.db = str(tmp_path / "mirror.sqlite3")
        self.tmp_path = tmp_path
        self.url = url
        self.api_key = api_key

    def init_from_export(self, *export_args: str) -> subprocess.CompletedProcess:
        out = self.tmp_path / "export.hashes"
        call_command(
            "export_suppressions", *export_args, "--output", str(out), stderr=io.StringIO()
        )
        loaded = helper("init", str(out), "--db", self.db)
        assert loaded.returncode == 0, loaded.stderr
        return loaded

    def sync(self, *extra: str, url: str | None = None) -> subprocess.CompletedProcess:
        wait_until_the_feed_shows_every_change()
        return helper(
            "sync", "--db", self.db, "--url", url or self.url, "--api-key", self.api_key, *extra
        )

    def suppressed(self, *candidates: str) -> set[str]:
        found = helper(
            "check", *candidates, "--db", self.db, "--hash-key", settings.ADDRESS_HASH_KEY
        )
        assert found.returncode in (0, 1), found.stderr
        listed = {
            line.split("\t")[0] for line in found.stdout.splitlines() if "\tsuppressed" in line
        }
        assert (found.returncode == 1) == bool(listed)
        return listed


@pytest.fixture
def relay(tmp_path, live_server, make_api_key):
    _, key = make_api_key("suppression:read")
    return Relay(tmp_path, live_server.url, key)


def lift(address: str, scope: str) -> None:
    row = Suppression.objects.get(address=address, scope=scope)
    services.lift(suppression=row, note="the recipient asked again")


ALL = [
    "optout@example.org",
    "bounced@example.org",
    "both@example.org",
    "late@example.org",
    "double@example.org",
    "clean@example.org",
]


def test_a_commercial_mirror_follows_adds_and_lifts(relay, suppress):
    suppress("optout@example.org", "unsubscribe")
    suppress("bounced@example.org", "hard_bounce")
    suppress("both@example.org", "unsubscribe")  # two entries behind one hash
    suppress("both@example.org", "hard_bounce")
    loaded = relay.init_from_export("--stream", "marketing")
    assert loaded.stdout.startswith("loaded 3 hashes of default/marketing; cursor ")
    assert relay.suppressed(*ALL) == {
        "optout@example.org",
        "bounced@example.org",
        "both@example.org",
    }

    suppress("late@example.org", "unsubscribe")
    suppress("double@example.org", "unsubscribe")
    suppress("double@example.org", "hard_bounce")
    lift("optout@example.org", "commercial")  # from the export: the helper asks the service
    lift("both@example.org", "commercial")  # ... which says the hard bounce still applies
    lift("double@example.org", "commercial")  # known entries: the global one remains
    synced = relay.sync()
    assert synced.returncode == 0, synced.stderr
    # The six changes since the export; the export's cursor may stand a little earlier when
    # another session's transaction in the cluster held the feed back, and replaying a change
    # the export already holds changes nothing.
    applied = int(re.match(r"applied (\d+) changes; cursor ", synced.stdout).group(1))
    assert applied >= 6

    assert relay.suppressed(*ALL) == {
        "bounced@example.org",
        "both@example.org",
        "late@example.org",
        "double@example.org",
    }
    again = relay.sync()
    assert again.stdout.startswith("applied 0 changes")
    assert "Clean@Example.org" not in relay.suppressed("Clean@Example.org", " LATE@example.org")


def test_a_transactional_mirror_ignores_marketing_opt_outs(relay, suppress):
    suppress("optout@example.org", "unsubscribe")
    suppress("bounced@example.org", "hard_bounce")
    relay.init_from_export("--stream", "transactional")
    assert relay.suppressed(*ALL) == {"bounced@example.org"}
    suppress("late@example.org", "unsubscribe", scope="global")
    suppress("double@example.org", "invalid")
    lift("bounced@example.org", "global")
    assert relay.sync().returncode == 0
    assert relay.suppressed(*ALL) == {"double@example.org"}


def test_sync_retries_with_backoff_and_then_gives_up(relay, suppress, default_tenant):
    relay.init_from_export("--stream", "marketing")
    refused = relay.sync("--max-attempts", "3", "--backoff", "0.05", url="http://127.0.0.1:1")
    assert refused.returncode == 2
    assert refused.stderr.count("retrying in") == 2
    assert "failed 3 times" in refused.stderr

    relay.api_key = "not-a-key"
    denied = relay.sync("--max-attempts", "3", "--backoff", "0.05")
    assert denied.returncode == 2
    assert "answered 401" in denied.stderr and "retrying" not in denied.stderr


def test_sync_rides_out_a_service_that_fails_for_a_while(relay, suppress, default_tenant):
    relay.init_from_export("--stream", "marketing")
    suppress("late@example.org", "unsubscribe")
    with flaky_proxy(relay.url, failures=2) as url:
        synced = relay.sync("--backoff", "0.05", url=url)
    assert synced.returncode == 0, synced.stderr
    assert synced.stderr.count("HTTP 503; retrying") == 2
    assert relay.suppressed("late@example.org") == {"late@example.org"}


class flaky_proxy:
    """An HTTP server that answers 503 to its first `failures` requests, then passes requests
    on to `target`: a service restarting behind a load balancer."""

    def __init__(self, target: str, *, failures: int) -> None:
        self.target = target
        self.failures = itertools.count()
        limit = failures
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if next(proxy.failures) < limit:
                    self.send_error(503)
                    return
                upstream = urllib.request.Request(
                    proxy.target + self.path,
                    headers={"Authorization": self.headers["Authorization"]},
                )
                with urllib.request.urlopen(upstream, timeout=TIMEOUT) as answer:
                    body = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_init_refuses_a_file_that_is_not_an_export(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("email,reason\npat@example.org,unsubscribe\n")
    refused = helper("init", str(bad), "--db", str(tmp_path / "m.sqlite3"))
    assert refused.returncode == 2
    assert "not a suppression-hashes/1 export" in refused.stderr
    empty = helper("check", "a@example.org", "--db", str(tmp_path / "m.sqlite3"), "--hash-key", "k")
    assert empty.returncode == 2 and "load an export with `init` first" in empty.stderr


# --- the helper agrees with the service -----------------------------------------------------


@pytest.mark.parametrize("kind", ["commercial", "transactional"])
def test_the_helpers_blocking_rule_is_the_services(kind):
    mirror = load_helper_module()
    tenant_id, stream_id, other_stream = 7, 70, 71
    stream = mirror.Stream("acme", "news", kind)
    keys = rules.blocking_keys(
        tenant_id=tenant_id, stream_id=stream_id, commercial=kind == "commercial"
    )
    # (tenant slug or None, scope label, scope key) of every kind of entry the feed can carry
    entries = [
        (None, "global", rules.scope_key(None, rules.GLOBAL)),
        ("acme", "global", rules.scope_key(tenant_id, rules.GLOBAL)),
        ("other", "global", rules.scope_key(8, rules.GLOBAL)),
        (None, "commercial", rules.scope_key(None, rules.COMMERCIAL)),
        ("acme", "commercial", rules.scope_key(tenant_id, rules.COMMERCIAL)),
        ("other", "commercial", rules.scope_key(8, rules.COMMERCIAL)),
        ("acme", "stream:news", rules.scope_key(tenant_id, rules.STREAM, stream_id)),
        ("acme", "stream:other", rules.scope_key(tenant_id, rules.STREAM, other_stream)),
        ("acme", "topic:news/sale", rules.scope_key(tenant_id, rules.TOPIC, 700)),
    ]
    for (tenant, label, key), reason in itertools.product(entries, rules.PRECEDENCE):
        expected = rules.blocks(keys, key, reason)
        assert stream.blocked_by(tenant=tenant, scope=label, reason=reason) == expected, (
            tenant,
            label,
            reason,
        )
    assert [mirror.weightier(a, b) for a, b in itertools.product(rules.PRECEDENCE, repeat=2)] == [
        rules.weightier(a, b) for a, b in itertools.product(rules.PRECEDENCE, repeat=2)
    ]


@pytest.mark.parametrize(
    "address",
    [
        "pat@example.org",
        "  Pat.Smith+News@Example.ORG ",
        "O'Brien@Mail.Example.co.uk",
        "zoë@example.org",  # a non-ASCII local part: NFC, lower-cased
        "pat@Bücher.example",  # IDNA 2003 and 2008 agree here
    ],
)
def test_the_helper_normalises_and_hashes_as_the_service(address):
    mirror = load_helper_module()
    key = settings.ADDRESS_HASH_KEY.encode()
    assert mirror.normalise(address) == addresses.normalise(address)
    assert mirror.address_hash(address, key) == addresses.hash_address(address, key)
