"""Read replicas for the relay read paths: which database a read goes to, and which replica may
serve it.

Only the relay read paths read from a replica, and only where they say so: `relay_read` (a
function run on a replica, and again on the primary if the replica fails it) or `relay_reads()`
(a block). Those are the single and batch suppression checks, send decisions, the change feed,
exports and the Postfix policy server. Everything else, every write and every read that must see
a write just made (the one-click POST and the page after it, the admin), goes to the primary,
the "default" database: `ReplicaRouter` sends a read elsewhere only inside a relay read.

A replica serves while it answers and lags at most REPLICA_MAX_LAG_SECONDS behind the primary.
Each process measures each replica at most once per REPLICA_RECHECK_SECONDS (one small query)
and takes the healthy ones in turn. A replica that is down or behind is skipped for the primary,
never an error; the skip and the return are logged once each.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)

logger = logging.getLogger("compliance.replicas")

T = TypeVar("T")

# settings.py names the replicas of REPLICA_DATABASE_URLS replica_0, replica_1, ... in order.
ALIAS_PREFIX = "replica_"

# Seconds the replica's replay is behind the primary. A standby that has replayed everything
# it has received, from a primary it is streaming from, is not behind however long ago the last
# commit was: an idle primary sends nothing to replay, and now() - pg_last_xact_replay_timestamp()
# alone would grow until the replica looked stale. Without a WAL receiver (the primary is
# gone or the stream broke) nothing says how much it missed, so the age of its last replayed
# commit counts. A server that is not in recovery is a primary and behind nothing. NULL: no
# commit replayed since it started, lag unknown.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END
"""

# The database the relay read running in this thread or task reads from; None outside one.
_reading_from: ContextVar[str | None] = ContextVar("relay_read_alias", default=None)


@dataclass(frozen=True)
class ReplicaState:
    """What a process last learnt of one replica: may it serve, and how far behind it is."""

    alias: str
    ok: bool
    lag_seconds: float | None  # None: not measured (unreachable, or nothing replayed yet)
    problem: str = ""  # why it is skipped
    checked_at: float = 0.0  # time.monotonic() of the measurement

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "alias": self.alias,
            "ok": self.ok,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
        }
        if not self.ok:
            entry["error"] = self.problem
        return entry


def measure_lag(alias: str) -> tuple[float | None, str]:
    """(lag in seconds or None, problem) of the replica `alias`, over this thread's connection
    to it. A connection that fails is closed, so the next measurement connects afresh."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            (lag,) = cursor.fetchone()
    except DatabaseError as exc:
        _discard(alias)
        return None, f"unreachable: {type(exc).__name__}: {_first_line(exc)}"
    if lag is None:
        return None, "no transaction replayed yet: lag unknown"
    return max(float(lag), 0.0), ""  # clocks of two hosts may disagree by a little


class Replicas:
    """The replicas of one process, their health remembered for `recheck_seconds`.

    `measure` and `clock` are the database and the time, so the choice itself can be tested
    without either."""

    def __init__(
        self,
        aliases: list[str],
        *,
        max_lag: float,
        recheck_seconds: float,
        measure: Callable[[str], tuple[float | None, str]] = measure_lag,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.aliases = list(aliases)
        self.max_lag = max_lag
        self.recheck_seconds = recheck_seconds
        self._measure = measure
        self._clock = clock
        self._states: dict[str, ReplicaState] = {}
        self._measuring: set[str] = set()
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def choose(self) -> str:
        """A replica that may serve, in turn among the healthy ones; the primary when none may."""
        healthy = [alias for alias in self.aliases if self.state(alias).ok]
        if not healthy:
            return DEFAULT_DB_ALIAS
        return healthy[next(self._turn) % len(healthy)]

    def state(self, alias: str, *, fresh: bool = False) -> ReplicaState:
        """The remembered state of `alias`, measured again once it is older than the interval
        (or at once when `fresh`). While another thread measures it, the last state stands:
        nobody waits on a slow replica."""
        known = self._states.get(alias)
        if (
            known is not None
            and not fresh
            and self._clock() - known.checked_at < self.recheck_seconds
        ):
            return known
        with self._lock:
            if known is not None and alias in self._measuring:
                return known
            self._measuring.add(alias)
        try:
            lag, problem = self._measure(alias)
        finally:
            with self._lock:
                self._measuring.discard(alias)
        if not problem and lag is not None and lag > self.max_lag:
            problem = f"lag {lag:.3f}s over REPLICA_MAX_LAG_SECONDS={self.max_lag:g}"
        return self._record(ReplicaState(alias, ok=not problem, lag_seconds=lag, problem=problem))

    def measure_all(self) -> list[ReplicaState]:
        """Every replica measured now (for /healthz), remembered like any measurement."""
        return [self.state(alias, fresh=True) for alias in self.aliases]

    def failed(self, alias: str, exc: BaseException) -> None:
        """A read on `alias` failed: skip it until it is measured again."""
        self._record(
            ReplicaState(
                alias,
                ok=False,
                lag_seconds=None,
                problem=f"a read failed: {type(exc).__name__}: {_first_line(exc)}",
            )
        )

    def _record(self, state: ReplicaState) -> ReplicaState:
        state = ReplicaState(
            state.alias, state.ok, state.lag_seconds, state.problem, checked_at=self._clock()
        )
        before = self._states.get(state.alias)
        self._states[state.alias] = state
        if not state.ok and (before is None or before.ok):
            logger.warning(
                "read replica %s skipped, relay reads go to the primary: %s",
                state.alias,
                state.problem,
            )
        elif state.ok and before is not None and not before.ok:
            logger.info("read replica %s serves again (lag %.3fs)", state.alias, state.lag_seconds)
        return state


_replicas: Replicas | None = None
_replicas_lock = threading.Lock()


def configured_aliases() -> list[str]:
    """The replicas' database aliases, in the order of REPLICA_DATABASE_URLS."""
    found = [alias for alias in settings.DATABASES if alias.startswith(ALIAS_PREFIX)]
    return sorted(found, key=lambda alias: int(alias.removeprefix(ALIAS_PREFIX)))


def replicas() -> Replicas:
    """This process's replicas, made from the settings on first use."""
    global _replicas
    if _replicas is None:
        with _replicas_lock:
            if _replicas is None:
                _replicas = Replicas(
                    configured_aliases(),
                    max_lag=settings.REPLICA_MAX_LAG_SECONDS,
                    recheck_seconds=settings.REPLICA_RECHECK_SECONDS,
                )
    return _replicas


def _choose() -> str:
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        # Inside a transaction on the primary a read must see that transaction's writes.
        return DEFAULT_DB_ALIAS
    chosen = replicas()
    return chosen.choose() if chosen.aliases else DEFAULT_DB_ALIAS


def read_alias() -> str:
    """The database the current relay read reads from; the primary outside one."""
    return _reading_from.get() or DEFAULT_DB_ALIAS


def read_connection():
    """The connection raw SQL of a relay read path runs on (Django's `connection` is always the
    primary's)."""
    return connections[read_alias()]


@contextlib.contextmanager
def relay_reads() -> Iterator[str]:
    """Reads in this block go to one healthy replica that has just answered (the primary when
    none is); yields its alias. For work that cannot be run again once begun (an export being
    written): a replica that fails inside the block fails the block. Where the work can be run
    again, `relay_read` runs it again on the primary instead."""
    current = _reading_from.get()
    if current is not None:  # inside a relay read already: the same database throughout
        yield current
        return
    token = _reading_from.set(relay_alias())
    try:
        yield _reading_from.get()
    finally:
        _reading_from.reset(token)


def relay_read(fn: Callable[..., T]) -> Callable[..., T]:
    """Run `fn` as a relay read: its reads go to one healthy replica, and when that replica
    fails it (it went down, or cancelled the query), `fn` runs again on the primary. `fn` must
    only read. Inside another relay read it runs on that one's database."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        if _reading_from.get() is not None:
            return fn(*args, **kwargs)
        alias = _choose()
        token = _reading_from.set(alias)
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if alias == DEFAULT_DB_ALIAS:
                raise
            failure = exc
        finally:
            _reading_from.reset(token)
        _replica_failed(alias, failure)
        token = _reading_from.set(DEFAULT_DB_ALIAS)
        try:
            return fn(*args, **kwargs)
        finally:
            _reading_from.reset(token)

    return run


def relay_alias() -> str:
    """A database for a relay read that cannot be run again once begun (a streamed export):
    a healthy replica that has just answered, else the primary."""
    alias = _choose()
    if alias == DEFAULT_DB_ALIAS:
        return alias
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        _replica_failed(alias, exc)
        return DEFAULT_DB_ALIAS
    return alias


def _replica_failed(alias: str, exc: BaseException) -> None:
    logger.warning(
        "relay read on replica %s failed (%s); answered from the primary",
        alias,
        _first_line(exc) or type(exc).__name__,
    )
    replicas().failed(alias, exc)
    _discard(alias)


def _discard(alias: str) -> None:
    """Close this thread's connection to `alias` (broken or not), so the next use reconnects."""
    with contextlib.suppress(Exception):
        connections[alias].close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0]


class ReplicaRouter:
    """DATABASE_ROUTERS: reads inside a relay read go to its database, every other read and
    every write to the primary. Migrations run on the primary only (replicas copy them)."""

    def db_for_read(self, model, **hints) -> str:
        return _reading_from.get() or DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
