"""The Postfix policy server, spoken to over a real loopback socket by an asyncio client.

The server's lookups run in its own database threads, so these tests commit their data
(`transaction=True`) for those threads to see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from compliance.models import SendingIdentity, Stream
from compliance.selectors import identity_for_sender
from suppression import policy_server, selectors
from suppression.policy import encode_request
from tests.support import ROOT, require, same_database_env, service_env

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 15  # seconds any one exchange may take before the test fails


def rcpt(recipient: str, sender: str = "someone@unknown.example", **extra: str) -> dict:
    """The attributes Postfix sends at RCPT TO (SMTPD_POLICY_README), trimmed to the usual."""
    return {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "client_name": "app.example.net",
        "helo_name": "app.example.net",
        "sender": sender,
        "recipient": recipient,
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1a2b.6751c3a1.5e2b1.0",
        "size": "0",
        **extra,
    }


class Client:
    """One connection to the policy server, as Postfix's smtpd keeps one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> str:
        """The next answer, without its terminating empty line."""
        raw = await asyncio.wait_for(self.reader.readuntil(b"\n\n"), TIMEOUT)
        return raw.decode()[:-2]

    async def ask(self, attributes: dict) -> str:
        await self.send(encode_request(attributes))
        return await self.answer()

    async def is_closed_by_server(self) -> bool:
        """True if the server closes the connection (without a word) before TIMEOUT."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), TIMEOUT)
        except ConnectionResetError:
            return True
        return rest == b""

    def close(self) -> None:
        self.writer.close()


def run_with_server(scenario, **settings):
    """Run `await scenario(server)` against an in-process server on a free loopback port."""
    config = policy_server.PolicySettings.from_django(port=0, **settings)

    async def main():
        async with policy_server.running(config) as server:
            return await asyncio.wait_for(scenario(server), 4 * TIMEOUT)

    return run_in_own_loop(main)


def run_in_own_loop(main):
    """asyncio.run(main()) in a thread of its own: the test thread may already have an event
    loop marked running (Playwright's sync API leaves one for the session)."""
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(8 * TIMEOUT)
    if thread.is_alive():
        pytest.fail(f"the exchange took longer than {8 * TIMEOUT}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def ask_each(requests: list[dict], **settings) -> list[str]:
    """Answers to `requests`, sent one after another over one connection."""

    async def scenario(server):
        client = await Client.connect(server.address[1])
        try:
            return [await client.ask(r) for r in requests]
        finally:
            client.close()

    return run_with_server(scenario, **settings)


@pytest.fixture(autouse=True)
def _default_streams(default_tenant):
    """The default tenant and its streams (a transactional test starts from an empty database)."""


def stream(tenant, slug: str) -> Stream:
    return Stream.objects.get(tenant=tenant, slug=slug)


@pytest.fixture
def identities(default_tenant):
    """news@shop.example: marketing; shop.example and *.mail.shop.example: transactional."""
    made = {}
    for pattern, slug in [
        ("news@shop.example", "marketing"),
        ("shop.example", "transactional"),
        ("*.mail.shop.example", "transactional"),
    ]:
        made[pattern] = SendingIdentity.objects.create(
            pattern=pattern, tenant=default_tenant, stream=stream(default_tenant, slug)
        )
    return made


# --- answers ------------------------------------------------------------------------------------


def test_a_suppressed_recipient_is_rejected_and_a_clean_one_is_left_to_postfix(suppress):
    suppress("pat@example.org", "unsubscribe")
    answers = ask_each([rcpt("Pat@Example.org"), rcpt("kim@example.org")])
    assert answers == ["action=REJECT 5.7.1 Suppressed: unsubscribe (commercial)", "action=DUNNO"]


def test_several_requests_on_one_connection_are_answered_in_order(suppress):
    suppress("b@example.org", "hard_bounce")
    recipients = ["a@example.org", "b@example.org", "c@example.org", "b@example.org"]

    async def scenario(server):
        client = await Client.connect(server.address[1])
        one_by_one = [await client.ask(rcpt(r)) for r in recipients]
        # Pipelined: every request in one write, before reading any answer.
        await client.send(b"".join(encode_request(rcpt(r)) for r in recipients))
        pipelined = [await client.answer() for _ in recipients]
        client.close()
        return one_by_one, pipelined

    one_by_one, pipelined = run_with_server(scenario)
    expected = [a.startswith("action=REJECT") for a in one_by_one]
    assert expected == [False, True, False, True]
    assert pipelined == one_by_one


def test_nothing_is_answered_until_the_empty_line(suppress):
    suppress("pat@example.org", "unsubscribe")

    async def scenario(server):
        client = await Client.connect(server.address[1])
        wire = encode_request(rcpt("pat@example.org"))
        await client.send(wire[:-1])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.reader.readuntil(b"\n\n"), 0.5)
        await client.send(b"\n")
        answer = await client.answer()
        client.close()
        return answer

    assert run_with_server(scenario).startswith("action=REJECT 5.7.1")


def test_only_the_rcpt_stage_of_an_access_policy_request_is_checked(suppress):
    suppress("pat@example.org", "hard_bounce")
    others = [
        rcpt("pat@example.org", protocol_state=state)
        for state in ("CONNECT", "EHLO", "MAIL", "DATA", "END-OF-MESSAGE")
    ]
    others.append(rcpt("pat@example.org", request="something_else"))
    assert ask_each([*others, rcpt("pat@example.org")]) == ["action=DUNNO"] * len(others) + [
        "action=REJECT 5.7.1 Suppressed: hard_bounce (global)"
    ]


def test_a_marketing_opt_out_does_not_stop_transactional_mail_but_a_hard_bounce_does(
    suppress, identities
):
    suppress("optout@example.org", "unsubscribe")  # commercial by default
    suppress("gone@example.org", "hard_bounce")  # global by default
    answers = ask_each(
        [
            rcpt("optout@example.org", sender="news@shop.example"),
            rcpt("optout@example.org", sender="receipts@shop.example"),
            rcpt("gone@example.org", sender="news@shop.example"),
            rcpt("gone@example.org", sender="receipts@shop.example"),
        ]
    )
    assert answers == [
        "action=REJECT 5.7.1 Suppressed: unsubscribe (commercial)",
        "action=DUNNO",
        "action=REJECT 5.7.1 Suppressed: hard_bounce (global)",
        "action=REJECT 5.7.1 Suppressed: hard_bounce (global)",
    ]


@pytest.mark.parametrize(
    ("sender", "stream_slug"),
    [
        ("News@Shop.example", "marketing"),  # the exact address wins over its domain
        ("receipts@shop.example", "transactional"),  # the domain
        ("bounce@eu.mail.shop.example", "transactional"),  # *.parent matches subdomains
        ("x@mail.shop.example", "marketing"),  # ... not the parent itself: the default
        ("x@other.example", "marketing"),  # no identity: POLICY_DEFAULT_STREAM
        ("", "marketing"),  # the null sender of bounces: the default too
    ],
)
def test_the_sender_decides_the_stream_as_identity_for_sender_does(
    suppress, identities, sender, stream_slug
):
    suppress("optout@example.org", "unsubscribe")
    [answer] = ask_each([rcpt("optout@example.org", sender=sender)])
    rejected = answer.startswith("action=REJECT")
    assert rejected == (stream_slug == "marketing")
    found = identity_for_sender(sender)
    assert (found.stream.slug if found else "marketing") == stream_slug


def test_a_stream_scope_blocks_only_that_stream(suppress, default_tenant):
    promos = Stream.objects.create(
        tenant=default_tenant, slug="promos", name="Promos", kind=Stream.Kind.COMMERCIAL
    )
    SendingIdentity.objects.create(pattern="promos.example", tenant=default_tenant, stream=promos)
    suppress("pat@example.org", "unsubscribe", scope="stream:marketing")
    answers = ask_each(
        [
            rcpt("pat@example.org", sender="x@other.example"),  # default: marketing
            rcpt("pat@example.org", sender="x@promos.example"),
        ]
    )
    assert answers == [
        "action=REJECT 5.7.1 Suppressed: unsubscribe (stream:marketing)",
        "action=DUNNO",
    ]


def test_a_tenant_sees_its_own_and_shared_entries_only(suppress, make_tenant, default_tenant):
    acme = make_tenant("acme")
    SendingIdentity.objects.create(
        pattern="acme.example", tenant=acme, stream=stream(acme, "marketing")
    )
    suppress("mine@example.org", "unsubscribe")  # the default tenant's
    suppress("everyone@example.org", "complaint", tenant=None)  # shared by all tenants
    answers = ask_each(
        [
            rcpt("mine@example.org", sender="news@acme.example"),
            rcpt("everyone@example.org", sender="news@acme.example"),
            rcpt("mine@example.org", sender="news@default.example"),
        ]
    )
    assert answers == [
        "action=DUNNO",
        "action=REJECT 5.7.1 Suppressed: complaint (commercial)",
        "action=REJECT 5.7.1 Suppressed: unsubscribe (commercial)",
    ]


def test_a_lifted_or_expired_entry_no_longer_rejects(suppress):
    import datetime

    from django.utils import timezone

    from suppression import services

    lifted = suppress("lifted@example.org", "unsubscribe")
    services.lift(suppression=lifted, note="asked to be back")
    suppress(
        "expired@example.org",
        "soft_bounce",
        expires_at=timezone.now() - datetime.timedelta(seconds=1),
    )
    assert ask_each([rcpt("lifted@example.org"), rcpt("expired@example.org")]) == [
        "action=DUNNO",
        "action=DUNNO",
    ]


def test_new_sending_identities_are_picked_up_without_a_restart(suppress, default_tenant):
    suppress("optout@example.org", "unsubscribe")

    async def scenario(server):
        client = await Client.connect(server.address[1])
        before = await client.ask(rcpt("optout@example.org", sender="x@late.example"))
        await asyncio.to_thread(
            SendingIdentity.objects.create,
            pattern="late.example",
            tenant=default_tenant,
            stream=await asyncio.to_thread(stream, default_tenant, "transactional"),
        )
        await asyncio.sleep(0.6)  # two refresh periods
        after = await client.ask(rcpt("optout@example.org", sender="x@late.example"))
        client.close()
        return before, after

    before, after = run_with_server(scenario, refresh_seconds=0.25)
    assert before.startswith("action=REJECT")
    assert after == "action=DUNNO"


def test_many_concurrent_connections_each_get_their_own_answers(suppress):
    listed = {f"listed{i}@example.org" for i in range(0, 40, 3)}
    for address in listed:
        suppress(address, "unsubscribe")

    async def one_connection(port, n):
        client = await Client.connect(port)
        answers = {}
        for i in range(40):
            address = f"listed{(i + n) % 40}@example.org"
            answers[address] = await client.ask(rcpt(address))
        client.close()
        return answers

    async def scenario(server):
        port = server.address[1]
        return await asyncio.gather(*(one_connection(port, n) for n in range(50)))

    for answers in run_with_server(scenario, threads=3):
        assert {a for a, answer in answers.items() if answer.startswith("action=REJECT")} == listed


# --- bad input --------------------------------------------------------------------------------


def test_a_request_without_recipient_or_with_an_invalid_one_gets_dunno(suppress, caplog):
    suppress("pat@example.org", "hard_bounce")
    caplog.set_level(logging.INFO, logger="suppression.policy_server")
    no_recipient = rcpt("")
    del no_recipient["recipient"]
    answers = ask_each([no_recipient, rcpt("not an address"), rcpt("pat@example.org")])
    assert answers == [
        "action=DUNNO",
        "action=DUNNO",
        "action=REJECT 5.7.1 Suppressed: hard_bounce (global)",
    ]
    assert "RCPT request without a recipient" in caplog.text
    assert "'not an address' is not a valid address" in caplog.text


@pytest.mark.parametrize(
    ("bad", "logged"),
    [
        (b"request=smtpd_access_policy\nthis line has no equals sign\n\n", "without '='"),
        (b"recipient=" + b"a" * 3000 + b"\n\n", "longer than 2048"),
        (b"recipient=" + b"a" * 100_000, "longer than 2048"),  # no newline at all
        (b"".join(b"x%d=y\n" % i for i in range(500)), "more than 100 attributes"),
    ],
)
def test_a_malformed_request_closes_that_connection_and_the_others_keep_going(
    suppress, caplog, bad, logged
):
    suppress("pat@example.org", "unsubscribe")

    async def scenario(server):
        port = server.address[1]
        good = await Client.connect(port)
        assert (await good.ask(rcpt("kim@example.org"))) == "action=DUNNO"
        broken = await Client.connect(port)
        await broken.send(bad)
        closed = await broken.is_closed_by_server()
        after = await good.ask(rcpt("pat@example.org"))
        fresh = await Client.connect(port)
        again = await fresh.ask(rcpt("pat@example.org"))
        for c in (good, broken, fresh):
            c.close()
        return closed, after, again

    closed, after, again = run_with_server(scenario)
    assert closed
    assert after.startswith("action=REJECT") and again.startswith("action=REJECT")
    assert "malformed request" in caplog.text and logged in caplog.text


def test_a_client_that_disconnects_mid_request_is_logged_and_forgotten(caplog):
    caplog.set_level(logging.INFO, logger="suppression.policy_server")

    async def scenario(server):
        port = server.address[1]
        quitter = await Client.connect(port)
        await quitter.send(encode_request(rcpt("pat@example.org"))[:40])
        quitter.writer.close()
        await quitter.writer.wait_closed()
        for _ in range(100):
            if server.connections == 0:
                break
            await asyncio.sleep(0.05)
        remaining = server.connections
        other = await Client.connect(port)
        answer = await other.ask(rcpt("kim@example.org"))
        other.close()
        return remaining, answer

    remaining, answer = run_with_server(scenario)
    assert remaining == 0
    assert answer == "action=DUNNO"
    assert "disconnected in the middle of a request" in caplog.text


def test_idle_connections_are_closed_and_busy_ones_are_not(caplog):
    caplog.set_level(logging.INFO, logger="suppression.policy_server")

    async def scenario(server):
        port = server.address[1]
        idle = await Client.connect(port)
        busy = await Client.connect(port)
        for _ in range(8):  # 1.2 s of traffic, well past the idle timeout
            assert await busy.ask(rcpt("kim@example.org")) == "action=DUNNO"
            await asyncio.sleep(0.15)
        idle_closed = await idle.is_closed_by_server()
        still = await busy.ask(rcpt("kim@example.org"))
        busy.close()
        return idle_closed, still

    idle_closed, still = run_with_server(scenario, idle_timeout=0.5)
    assert idle_closed
    assert still == "action=DUNNO"
    assert "idle for 0.5s, closing" in caplog.text


# --- lookups -------------------------------------------------------------------------------------


RULE_CASES = [
    # (reason, scope, transactional blocked, commercial blocked), the README's table
    ("hard_bounce", "global", True, True),
    ("erasure", "global", True, True),
    ("unsubscribe", "global", False, True),
    ("complaint", "commercial", False, True),
    ("manual", "stream:marketing", False, True),
]


@pytest.mark.parametrize(("reason", "scope", "transactional", "commercial"), RULE_CASES)
def test_the_policy_lookup_agrees_with_the_check_api_selector(
    suppress, default_tenant, reason, scope, transactional, commercial
):
    suppress("pat@example.org", reason, scope=scope)
    directory = policy_server.load_directory("default/marketing")
    key = b"test-address-hash-key-0123456789abcdef"
    for slug, expected in (("transactional", transactional), ("marketing", commercial)):
        model = stream(default_tenant, slug)
        ref = directory.default if slug == "marketing" else None
        ref = ref or policy_server.StreamRef(
            tenant_id=default_tenant.pk,
            tenant_slug="default",
            stream_id=model.pk,
            slug=slug,
            commercial=model.is_commercial,
        )
        action = policy_server.check_recipient(ref, "PAT@example.org", key=key)
        verdict = selectors.is_suppressed(stream=model, address="PAT@example.org")
        assert (action.verb == "REJECT") == verdict.suppressed == expected
        if verdict.suppressed:
            assert action.text == f"5.7.1 Suppressed: {verdict.reason} ({verdict.scope})"


def test_each_recipient_costs_one_query(suppress, default_tenant):
    suppress("a@example.org", "unsubscribe")
    suppress("a@example.org", "hard_bounce", scope="global")
    model = stream(default_tenant, "marketing")
    ref = policy_server.StreamRef(default_tenant.pk, "default", model.pk, "marketing", True)
    checks = [(ref, f"{name}@example.org") for name in ("a", "b", "c")] + [(ref, "bad address")]
    key = b"test-address-hash-key-0123456789abcdef"
    policy_server.check_recipients(checks[:1], key)  # connect and prepare first
    with statements_counted() as count:
        outcomes = policy_server.check_recipients(checks, key)
    assert count == [3]  # the invalid address costs none
    assert [getattr(o, "verb", "invalid") for o in outcomes] == [
        "REJECT",
        "DUNNO",
        "DUNNO",
        "invalid",
    ]
    assert outcomes[0].text == "5.7.1 Suppressed: hard_bounce (global)"  # the widest scope


@contextmanager
def statements_counted():
    """Count the SQL statements this thread's connection sends, whichever way it sends them:
    Django's query log on SQLite, the PostgreSQL wire protocol trace (libpq PQtrace) otherwise.
    The count is in the yielded list once the block has ended."""
    counted: list[int] = []
    if connection.vendor != "postgresql":
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            yield counted
        counted.append(len(captured.captured_queries))
        return
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace:
        fd = os.dup(trace.fileno())  # libpq wraps it in a FILE it never closes
        pgconn.trace(fd)
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counted
        finally:
            pgconn.untrace()  # flushes the trace
            os.close(fd)
        trace.seek(0)
        frontend = [line.split("\t") for line in trace.read().decode().splitlines()]
    counted.append(sum(1 for f in frontend if f[0] == "F" and f[2:3] in (["Execute"], ["Query"])))


# --- the database out of reach ------------------------------------------------------------------

UNREACHABLE = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x", "DB_CONNECT_TIMEOUT": "1"}


@dataclass
class ServerProcess:
    process: subprocess.Popen
    port: int
    stderr: str = ""  # everything it logged, once it has stopped


@contextmanager
def server_process(env: dict, *args: str):
    """`manage.py run_policy_server --port 0` as its own process, stopped on the way out."""
    err = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_policy_server", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    running = ServerProcess(process, 0)
    try:
        line = _readline_within(process, TIMEOUT)
        if not line.startswith("listening on "):
            err.seek(0)
            pytest.fail(f"the policy server did not start: {line!r}\n{err.read().decode()}")
        running.port = int(line.strip().rsplit(":", 1)[1])
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        err.seek(0)
        running.stderr = err.read().decode()
        err.close()


def _readline_within(process: subprocess.Popen, seconds: float) -> str:
    import selectors as io_selectors

    with io_selectors.DefaultSelector() as waiter:
        waiter.register(process.stdout, io_selectors.EVENT_READ)
        if not waiter.select(seconds):
            return ""
    return process.stdout.readline()


def ask_process(port: int, requests: list[dict]) -> list[str]:
    async def main():
        client = await Client.connect(port)
        try:
            return [await client.ask(r) for r in requests]
        finally:
            client.close()

    return run_in_own_loop(main)


def test_with_the_database_down_and_nothing_known_every_stream_fails_closed():
    with server_process(service_env(**UNREACHABLE)) as server:
        answers = ask_process(
            server.port,
            [rcpt("pat@example.org", sender="news@shop.example"), rcpt("kim@example.org")],
        )
    assert all(a.startswith("action=DEFER_IF_PERMIT 4.4.3 ") for a in answers), answers
    log = server.stderr
    assert "cannot load sending identities" in log
    assert "every stream counts as commercial" in log


def test_with_the_database_down_each_stream_gets_its_kinds_fail_action(identities, tmp_path):
    state = tmp_path / "identities.json"
    # A first run, with the database up, saves the sending identities it loaded...
    with server_process(same_database_env(), "--state-file", str(state)) as server:
        assert ask_process(server.port, [rcpt("kim@example.org")]) == ["action=DUNNO"]
    assert state.exists()
    # ... so a restart while the database is unreachable still knows each stream's kind.
    commercial = rcpt("pat@example.org", sender="news@shop.example")
    transactional = rcpt("pat@example.org", sender="receipts@shop.example")
    unmatched = rcpt("pat@example.org", sender="x@elsewhere.example")  # default: marketing
    down = service_env(**UNREACHABLE)
    with server_process(down, "--state-file", str(state)) as server:
        answers = ask_process(server.port, [commercial, transactional, unmatched, commercial])
    assert answers == [
        "action=DEFER_IF_PERMIT 4.4.3 Suppression list unavailable, try again later",
        "action=DUNNO",
        "action=DEFER_IF_PERMIT 4.4.3 Suppression list unavailable, try again later",
        "action=DEFER_IF_PERMIT 4.4.3 Suppression list unavailable, try again later",
    ]
    log = server.stderr
    assert "loaded 3 sending identities from" in log
    assert "suppression lookup failed" in log and "answering DEFER_IF_PERMIT" in log
    # The outage is reported once, not once per recipient.
    assert log.count("suppression lookup failed") == 1


def test_the_fail_actions_follow_the_settings(identities, tmp_path):
    state = tmp_path / "identities.json"
    with server_process(same_database_env(), "--state-file", str(state)):
        pass
    env = service_env(
        **UNREACHABLE,
        POLICY_FAIL_COMMERCIAL="450 4.3.2 Try again later",
        POLICY_FAIL_TRANSACTIONAL="DEFER_IF_PERMIT",
    )
    with server_process(env, "--state-file", str(state)) as server:
        answers = ask_process(
            server.port,
            [
                rcpt("pat@example.org", sender="news@shop.example"),
                rcpt("pat@example.org", sender="receipts@shop.example"),
            ],
        )
    assert answers == [
        "action=450 4.3.2 Try again later",
        "action=DEFER_IF_PERMIT 4.4.3 Suppression list unavailable, try again later",
    ]


def test_a_fail_action_that_is_not_one_stops_the_command_at_start():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_policy_server", "--port", "0"],
        cwd=ROOT,
        env=service_env(POLICY_FAIL_COMMERCIAL="PERMIT"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "(compliance.E009) POLICY_FAIL_COMMERCIAL" in proc.stderr
    assert "unknown policy fail action 'PERMIT'" in proc.stderr
    assert "listening" not in proc.stdout


def test_sigterm_stops_the_server_cleanly():
    with server_process(service_env(**UNREACHABLE)) as server:
        ask_process(server.port, [rcpt("kim@example.org")])
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=TIMEOUT) == 0
    assert "policy server stopped" in server.stderr


class CuttableProxy:
    """A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused)
    and restored on the same port: a database that goes away and comes back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


def test_when_the_database_goes_away_and_comes_back_the_server_follows(identities, suppress):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    suppress("pat@example.org", "unsubscribe")
    db = connection.settings_dict
    proxy = CuttableProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    env = service_env(
        DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
        DB_CONNECT_TIMEOUT="1",
        ADDRESS_HASH_KEY=settings.ADDRESS_HASH_KEY,  # the key the test's entries were hashed with
    )
    commercial = rcpt("pat@example.org", sender="news@shop.example")
    transactional = rcpt("gone@example.org", sender="receipts@shop.example")
    try:
        with server_process(env) as server:
            up = ask_process(server.port, [commercial])
            proxy.cut()
            down = ask_process(server.port, [commercial, transactional])
            proxy.restore()
            time.sleep(1.5)  # past the server's retry period
            back = ask_process(server.port, [commercial])
    finally:
        proxy.cut()
    assert up == ["action=REJECT 5.7.1 Suppressed: unsubscribe (commercial)"]
    assert down == [
        "action=DEFER_IF_PERMIT 4.4.3 Suppression list unavailable, try again later",
        "action=DUNNO",  # the identities loaded at start say: transactional
    ]
    assert back == up
    assert "database reachable again; 2 answers were fail actions" in server.stderr


def test_a_damaged_state_file_is_ignored_and_replaced(identities, tmp_path, caplog):
    state = tmp_path / "identities.json"
    state.write_text("{not json")
    answers = ask_each([rcpt("kim@example.org", sender="receipts@shop.example")], state_file=state)
    assert answers == ["action=DUNNO"]
    assert "ignoring the state file" in caplog.text
    saved = policy_server.read_state(state, default_stream="default/marketing")
    assert saved.identities["shop.example"].slug == "transactional"
    assert saved.default.slug == "marketing"
