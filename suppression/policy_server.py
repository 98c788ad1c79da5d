"""The Postfix policy server: asyncio connections, suppression lookups in a bounded thread pool.

Postfix asks once per recipient (`check_policy_service inet:HOST:PORT` in
`smtpd_recipient_restrictions`); each smtpd process keeps its connection open and sends request
after request over it. The wire format lives in `suppression/policy.py`; this module decides and
moves bytes.

Which tenant and stream a message belongs to comes from its envelope sender through the sending
identities (`compliance.models.SendingIdentity`, matched with `compliance.selectors`'s patterns).
The server keeps the whole identity table in memory, refreshes it periodically and, when a
refresh fails, keeps the last table it had (also saved to a state file, so a restart during a
database outage still knows which streams are transactional). A recipient then costs one SQL
query, run in a thread pool because the ORM is synchronous.

When the database cannot be asked, the answer is the stream kind's fail action:
`POLICY_FAIL_COMMERCIAL` (default DEFER_IF_PERMIT: nothing commercial goes out unchecked) or
`POLICY_FAIL_TRANSACTIONAL` (default DUNNO: a password reset is not held up). A stream the server
knows nothing about counts as commercial: it fails closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, close_old_connections, connections

from compliance.replicas import read_alias, read_connection, relay_read
from compliance.selectors import sender_patterns
from suppression import addresses, rules, sql
from suppression.policy import (
    DUNNO,
    Action,
    MalformedRequest,
    PolicyRequest,
    RequestParser,
    fail_action,
    reject_suppressed,
)
from suppression.scopes import label_for_key

logger = logging.getLogger("suppression.policy_server")

T = TypeVar("T")

STATE_FORMAT = "policy-directory/1"
# One read takes whatever has arrived up to this much: every request a pipelining client has sent.
READ_SIZE = 65_536


# --- which stream a sender's mail belongs to ---------------------------------------------------


@dataclass(frozen=True)
class StreamRef:
    """What the server needs to know of a stream: ids for the lookup, its kind for the fail mode."""

    tenant_id: int
    tenant_slug: str
    stream_id: int
    slug: str
    commercial: bool

    @property
    def name(self) -> str:
        return f"{self.tenant_slug}/{self.slug}"

    @functools.cached_property
    def keys(self) -> rules.BlockingKeys:
        return rules.blocking_keys(
            tenant_id=self.tenant_id, stream_id=self.stream_id, commercial=self.commercial
        )


@dataclass(frozen=True)
class SenderDirectory:
    """Sending identities (pattern → stream) and the stream of mail that matches none."""

    default_stream: str
    default: StreamRef | None = None
    identities: Mapping[str, StreamRef] = field(default_factory=lambda: MappingProxyType({}))
    loaded: bool = False

    def stream_for(self, sender: str) -> StreamRef | None:
        """The same matching as `compliance.selectors.identity_for_sender` (exact address, then
        domain, then the nearest `*.parent`), falling back to the default stream. None when the
        stream is unknown: the database was never reachable or the default stream is missing."""
        for pattern in sender_patterns(sender):
            found = self.identities.get(pattern)
            if found is not None:
                return found
        return self.default

    def to_json(self) -> dict[str, Any]:
        def ref(r: StreamRef) -> dict[str, Any]:
            return {
                "tenant_id": r.tenant_id,
                "tenant": r.tenant_slug,
                "stream_id": r.stream_id,
                "stream": r.slug,
                "commercial": r.commercial,
            }

        return {
            "format": STATE_FORMAT,
            "default_stream": self.default_stream,
            "default": ref(self.default) if self.default else None,
            "identities": {p: ref(r) for p, r in sorted(self.identities.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, default_stream: str) -> SenderDirectory:
        """Raises ValueError (or KeyError, TypeError) for a state file of another shape."""
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} state file")

        def ref(d: Mapping[str, Any]) -> StreamRef:
            return StreamRef(
                tenant_id=int(d["tenant_id"]),
                tenant_slug=str(d["tenant"]),
                stream_id=int(d["stream_id"]),
                slug=str(d["stream"]),
                commercial=bool(d["commercial"]),
            )

        # A default saved under another POLICY_DEFAULT_STREAM is not this one's.
        default = data["default"] if data.get("default_stream") == default_stream else None
        return cls(
            default_stream=default_stream,
            default=ref(default) if default else None,
            identities=MappingProxyType({p: ref(d) for p, d in data["identities"].items()}),
            loaded=True,
        )


def split_stream_name(name: str) -> tuple[str, str]:
    """`TENANT/STREAM` as (tenant slug, stream slug). Raises ValueError."""
    tenant, sep, stream = name.strip().partition("/")
    if not sep or not tenant or not stream or "/" in stream:
        raise ValueError(f"POLICY_DEFAULT_STREAM must be TENANT/STREAM, got {name!r}")
    return tenant, stream


def load_directory(default_stream: str) -> SenderDirectory:
    """Read every sending identity and the default stream (two queries). Raises DatabaseError."""
    from compliance.models import SendingIdentity, Stream

    def ref(stream: Stream) -> StreamRef:
        return StreamRef(
            tenant_id=stream.tenant_id,
            tenant_slug=stream.tenant.slug,
            stream_id=stream.pk,
            slug=stream.slug,
            commercial=stream.is_commercial,
        )

    tenant_slug, stream_slug = split_stream_name(default_stream)
    default = (
        Stream.objects.select_related("tenant")
        .filter(tenant__slug=tenant_slug, slug=stream_slug)
        .first()
    )
    identities = {
        i.pattern: ref(i.stream)
        for i in SendingIdentity.objects.select_related("stream__tenant").order_by("pattern")
    }
    return SenderDirectory(
        default_stream=default_stream,
        default=ref(default) if default else None,
        identities=MappingProxyType(identities),
        loaded=True,
    )


def read_state(path: Path, *, default_stream: str) -> SenderDirectory | None:
    """The directory saved by an earlier run, or None (logged) if there is none usable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SenderDirectory.from_json(data, default_stream=default_stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring the state file %s: %s", path, exc)
        return None


def write_state(path: Path, directory: SenderDirectory) -> None:
    """Replace the state file atomically: a crash mid-write leaves the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(directory.to_json(), f, indent=1)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# --- recipients: one query each, sent together ---------------------------------------------------


@relay_read
def blocking_entries(
    lookups: list[tuple[bytes, rules.BlockingKeys]],
) -> list[list[tuple[str, str]]]:
    """For each (hash, keys): (scope key, reason) of every active entry that blocks. One query
    per lookup; on PostgreSQL several go in one pipeline (one round trip). A relay read: on a
    read replica when one is healthy, else (or when it fails the lookup) on the primary.
    Raises DatabaseError."""
    connection = read_connection()
    if connection.vendor != "postgresql":
        return [
            [(row.scope_key, row.reason) for row in sql.blocking_rows([digest], keys)]
            for digest, keys in lookups
        ]
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = _lookup_cursor(read_alias(), connection.connection)
        params = [sql.lookup_params(digest, keys) for digest, keys in lookups]
        if len(params) == 1:
            cursor.execute(sql.POLICY_LOOKUP_SQL, params[0], prepare=True)
            return [cursor.fetchall()]
        cursor.executemany(sql.POLICY_LOOKUP_SQL, params, returning=True)
        found = [cursor.fetchall()]
        while cursor.nextset():
            found.append(cursor.fetchall())
        return found


_cursors = threading.local()


def _lookup_cursor(alias: str, raw: psycopg.Connection) -> psycopg.Cursor:
    """This thread's cursor for sql.POLICY_LOOKUP_SQL on its current connection to `alias` (a
    new one after a reconnect): server-side binding, so the statement can be prepared. One per
    database, so turns between replicas and the primary keep each one's."""
    mine = getattr(_cursors, "by_alias", None)
    if mine is None:
        mine = _cursors.by_alias = {}
    known = mine.get(alias)
    if known is None or known[0] is not raw:
        # Django turns psycopg's prepared statements off (poolers in transaction mode lose
        # them). This connection belongs to one policy thread and runs this one statement all
        # day, so it prepares it, unless DB_PREPARED_STATEMENTS is off; behind PgBouncer that
        # needs max_prepared_statements (1.21+).
        raw.prepare_threshold = 5 if settings.DB_PREPARED_STATEMENTS else None
        known = mine[alias] = (raw, psycopg.Cursor(raw))
    return known[1]


def check_recipients(
    checks: list[tuple[StreamRef, str]], key: bytes
) -> list[Action | addresses.InvalidAddress]:
    """For each (stream, recipient): REJECT if an active entry blocks it, else DUNNO; an
    InvalidAddress (such an address cannot be listed) costs no query. Raises DatabaseError."""
    outcomes: list[Action | addresses.InvalidAddress] = []
    asked: list[tuple[int, StreamRef, bytes]] = []
    for stream, recipient in checks:
        try:
            digest = addresses.address_hash(addresses.normalise(recipient), key)
        except addresses.InvalidAddress as exc:
            outcomes.append(exc)
            continue
        asked.append((len(outcomes), stream, digest))
        outcomes.append(DUNNO)
    if not asked:
        return outcomes
    found = blocking_entries([(digest, stream.keys) for _, stream, digest in asked])
    for (i, stream, _), entries in zip(asked, found, strict=True):
        if entries:
            scope_key, reason = rules.widest(entries)
            outcomes[i] = reject_suppressed(
                reason=reason, scope=label_for_key(scope_key, stream=stream, topic=None)
            )
    return outcomes


def check_recipient(stream: StreamRef, recipient: str, *, key: bytes) -> Action:
    """One recipient; raises addresses.InvalidAddress and DatabaseError."""
    [outcome] = check_recipients([(stream, recipient)], key)
    if isinstance(outcome, addresses.InvalidAddress):
        raise outcome
    return outcome


# --- the database side: a bounded pool of threads, each with its own connection ---------------


class DatabaseThreads:
    """Runs ORM work in at most `threads` threads, each keeping its own database connection.

    Django's request cycle closes broken and expired connections around every request
    (`close_old_connections` on request_started/finished); a long-lived server does the same
    around its work. With CONN_HEALTH_CHECKS each of those calls makes the next ORM query ping
    the server first, so it is done at most once per `tidy_seconds` per thread, and at once
    after a failure.
    """

    def __init__(self, threads: int, *, tidy_seconds: float = 1.0) -> None:
        if threads < 1:
            raise ValueError("at least one database thread is needed")
        self.threads = threads
        self._tidy_seconds = tidy_seconds
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="policy-db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a database thread; raises what it raises."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        now = time.monotonic()
        if now >= getattr(self._local, "tidy_at", 0.0):
            close_old_connections()
            self._local.tidy_at = now + self._tidy_seconds
        connection = connections[DEFAULT_DB_ALIAS]
        reused = connection.connection is not None
        try:
            return fn(*args)
        except DatabaseError:
            close_old_connections()
            self._local.tidy_at = 0.0
            if not reused:
                raise
        # The kept connection had died (a database restart, an idle timeout in a proxy): once
        # more on a fresh one before calling the database unreachable.
        return fn(*args)

    def close(self) -> None:
        """Close every thread's connection, then stop the threads.

        A connection belongs to its thread, so each thread closes its own: one task per thread,
        held at a barrier until every thread has taken one.
        """
        barrier = threading.Barrier(self.threads)

        def close_mine() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            connections.close_all()

        for _ in range(self.threads):
            self._executor.submit(close_mine)
        self._executor.shutdown(wait=True)


class RecipientLookups:
    """Recipient checks from every connection, gathered while the threads are busy.

    A check goes to a thread at once when one is free. Checks that arrive while every thread is
    busy wait, and the next free thread takes all of them (up to MAX_BATCH) as one job that sends
    their queries in one pipeline: under load one hand-over and one round trip serve many
    recipients, each still its own query.
    """

    MAX_BATCH = 64

    def __init__(self, threads: DatabaseThreads, *, key: bytes) -> None:
        self._threads = threads
        self._key = key
        self._waiting: list[tuple[StreamRef, str, asyncio.Future[Action]]] = []
        self._in_flight = 0

    async def check(self, stream: StreamRef, recipient: str) -> Action:
        """Raises addresses.InvalidAddress and DatabaseError."""
        future: asyncio.Future[Action] = asyncio.get_running_loop().create_future()
        self._waiting.append((stream, recipient, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._waiting and self._in_flight < self._threads.threads:
            batch = self._waiting[: self.MAX_BATCH]
            del self._waiting[: self.MAX_BATCH]
            self._in_flight += 1
            job = asyncio.ensure_future(
                self._threads.run(check_recipients, [(s, r) for s, r, _ in batch], self._key)
            )
            job.add_done_callback(functools.partial(self._finished, batch=batch))

    def _finished(self, job: asyncio.Future[list[Action | Exception]], *, batch) -> None:
        self._in_flight -= 1
        if job.cancelled():  # the server is shutting down
            for _, _, future in batch:
                future.cancel()
            return
        error = job.exception()
        outcomes = [error] * len(batch) if error is not None else job.result()
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its connection went away meanwhile
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._dispatch()


# --- deciding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySettings:
    """How one server runs: `from_django` reads the POLICY_* settings, the command the rest."""

    host: str = "127.0.0.1"
    port: int = 10040
    threads: int = 4
    # Postfix closes idle policy connections after smtpd_policy_service_max_idle (300 s); waiting
    # a little longer lets Postfix end them, so it never writes into a socket we just closed.
    idle_timeout: float = 330.0
    refresh_seconds: float = 30.0
    # After a failed lookup or refresh, how long to answer the fail action without asking the
    # database: a down database costs one connect timeout per this period, not one per recipient.
    retry_seconds: float = 1.0
    default_stream: str = "default/marketing"
    fail_commercial: Action = field(default_factory=lambda: fail_action("DEFER_IF_PERMIT"))
    fail_transactional: Action = DUNNO
    state_file: Path | None = None

    @classmethod
    def from_django(cls, **overrides: Any) -> PolicySettings:
        """From POLICY_* settings. Raises ValueError for a malformed fail action or stream."""
        split_stream_name(settings.POLICY_DEFAULT_STREAM)
        base = cls(
            default_stream=settings.POLICY_DEFAULT_STREAM,
            fail_commercial=fail_action(settings.POLICY_FAIL_COMMERCIAL),
            fail_transactional=fail_action(settings.POLICY_FAIL_TRANSACTIONAL),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


class PolicyService:
    """Answers requests: the directory in memory, one lookup per recipient in the threads."""

    def __init__(
        self,
        config: PolicySettings,
        *,
        threads: DatabaseThreads,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._threads = threads
        self._clock = clock
        self._lookups = RecipientLookups(threads, key=settings.ADDRESS_HASH_KEY.encode())
        self.directory = SenderDirectory(default_stream=config.default_stream)
        if config.state_file is not None:
            saved = read_state(config.state_file, default_stream=config.default_stream)
            if saved is not None:
                self.directory = saved
                logger.info(
                    "loaded %d sending identities from %s",
                    len(saved.identities),
                    config.state_file,
                )
        self._down_until = 0.0
        self._outage_answers = 0

    async def refresh(self) -> bool:
        """Reload the directory; keep the last one (and say so) when the database fails."""
        try:
            directory = await self._threads.run(load_directory, self.config.default_stream)
        except DatabaseError as exc:
            known = (
                f"keeping the last known {len(self.directory.identities)} identities"
                if self.directory.loaded
                else "no identities known: every stream counts as commercial"
            )
            logger.warning("cannot load sending identities (%s); %s", _one_line(exc), known)
            return False
        if directory.default is None:
            logger.error(
                "POLICY_DEFAULT_STREAM %r names no stream: mail from senders without a sending "
                "identity gets the commercial fail action",
                directory.default_stream,
            )
        if directory != self.directory and self.config.state_file is not None:
            try:
                write_state(self.config.state_file, directory)
            except OSError as exc:
                logger.warning("cannot save the state file %s: %s", self.config.state_file, exc)
        self.directory = directory
        return True

    async def answer(self, request: PolicyRequest) -> Action:
        if not request.asks_about_recipient:
            return DUNNO
        recipient = request.recipient.strip()
        if not recipient:
            logger.warning(
                "RCPT request without a recipient (queue id %r): DUNNO", request.queue_id
            )
            return DUNNO
        stream = self.directory.stream_for(request.sender)
        if stream is None:
            logger.warning(
                "stream of sender %r unknown (%s): commercial fail action",
                request.sender,
                "default stream missing" if self.directory.loaded else "database never reached",
            )
            return self.config.fail_commercial
        if self._clock() < self._down_until:
            self._outage_answers += 1
            return self._fail_for(stream)
        try:
            action = await self._lookups.check(stream, recipient)
        except addresses.InvalidAddress as exc:
            logger.info("recipient %r is not a valid address (%s): DUNNO", recipient, exc.reason)
            return DUNNO
        except Exception as exc:  # noqa: BLE001 - any failure to decide is a failure to check
            self._mark_down(exc)
            self._outage_answers += 1
            return self._fail_for(stream)
        if self._down_until:
            logger.warning(
                "database reachable again; %d answers were fail actions", self._outage_answers
            )
            self._down_until = 0.0
            self._outage_answers = 0
        logger.debug(
            "%s %s for %s (queue id %s)", action.verb, action.text, stream.name, request.queue_id
        )
        return action

    def _fail_for(self, stream: StreamRef) -> Action:
        if stream.commercial:
            return self.config.fail_commercial
        return self.config.fail_transactional

    def _mark_down(self, exc: Exception) -> None:
        if not self._down_until:
            log = logger.error if isinstance(exc, DatabaseError) else logger.exception
            log(
                "suppression lookup failed (%s): answering %s for commercial and %s for "
                "transactional streams until the database answers",
                _one_line(exc),
                self.config.fail_commercial.verb,
                self.config.fail_transactional.verb,
            )
        self._down_until = self._clock() + self.config.retry_seconds


# --- the wire ------------------------------------------------------------------------------------


class PolicyServer:
    """Accepts connections and answers the requests of each in order.

    One sweeper closes connections silent for `idle_timeout` (also those stuck because their
    client stopped reading), instead of a timer around every read and write.
    """

    def __init__(self, service: PolicyService, config: PolicySettings) -> None:
        self.service = service
        self.config = config
        self._last_seen: dict[asyncio.StreamWriter, float] = {}
        self._timed_out: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def connections(self) -> int:
        return len(self._last_seen)

    async def start(self) -> None:
        # The reader's limit bounds what a client can make us buffer before we read it; the
        # parser bounds what we keep between reads.
        self._server = await asyncio.start_server(
            self._handle, self.config.host, self.config.port, limit=READ_SIZE
        )
        self._sweeper = asyncio.create_task(self._close_idle())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._last_seen):
            writer.close()

    async def _close_idle(self) -> None:
        timeout = self.config.idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(max(timeout / 4, 0.05), 5.0))
            cutoff = loop.time() - timeout
            for writer, seen in list(self._last_seen.items()):
                if seen < cutoff and writer not in self._timed_out:
                    logger.info("%s: idle for %ss, closing", _peer(writer), timeout)
                    self._timed_out.add(writer)
                    # close() would first wait for unsent answers a client is not reading.
                    writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        self._last_seen[writer] = asyncio.get_running_loop().time()
        try:
            await self._converse(reader, writer, peer)
        except ConnectionError as exc:
            if writer not in self._timed_out:
                logger.info("%s: connection lost (%s)", peer, _one_line(exc) or type(exc).__name__)
        except Exception:
            logger.exception("%s: unexpected error; closing the connection", peer)
        finally:
            self._last_seen.pop(writer, None)
            self._timed_out.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        parser = RequestParser()
        loop = asyncio.get_running_loop()
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                if parser.in_progress and writer not in self._timed_out:
                    logger.warning("%s: disconnected in the middle of a request", peer)
                return
            self._last_seen[writer] = loop.time()
            try:
                requests = parser.feed(data)
            except MalformedRequest as exc:
                # SMTPD_POLICY_README: in case of trouble, log a warning and disconnect.
                logger.warning("%s: malformed request (%s); disconnecting", peer, exc.reason)
                return
            if len(requests) == 1:
                writer.write((await self.service.answer(requests[0])).encode())
            elif requests:
                # A pipelining client's requests are looked up together, answered in order.
                answers = await asyncio.gather(*(self.service.answer(r) for r in requests))
                writer.write(b"".join(a.encode() for a in answers))
            if requests:
                await writer.drain()
                self._last_seen[writer] = loop.time()


@contextlib.asynccontextmanager
async def running(config: PolicySettings) -> AsyncIterator[PolicyServer]:
    """A started server (directory loaded or its failure logged), closed on the way out."""
    threads = DatabaseThreads(config.threads)
    service = PolicyService(config, threads=threads)
    server = PolicyServer(service, config)
    refresher: asyncio.Task[None] | None = None
    try:
        loaded = await service.refresh()
        await server.start()
        refresher = asyncio.create_task(_keep_refreshing(service, config, ok=loaded))
        yield server
    finally:
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        await server.close()
        await asyncio.get_running_loop().run_in_executor(None, threads.close)


async def _keep_refreshing(service: PolicyService, config: PolicySettings, *, ok: bool) -> None:
    """Reload the identities every `refresh_seconds`, or every `retry_seconds` after a failure."""
    while True:
        await asyncio.sleep(config.refresh_seconds if ok else config.retry_seconds)
        try:
            ok = await service.refresh()
        except Exception:  # a bug must not end the refreshing for the life of the process
            logger.exception("reloading the sending identities failed")
            ok = False


async def serve(
    config: PolicySettings,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """Serve until `stop` is set."""
    async with running(config) as server:
        logger.info(
            "policy server on %s:%d (%d database threads, default stream %s)",
            *server.address,
            config.threads,
            config.default_stream,
        )
        if on_ready is not None:
            on_ready(server.address)
        await stop.wait()
    logger.info("policy server stopped")


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
