"""A hot path's one statement as its request's connection check.

With CONN_HEALTH_CHECKS Django sends `SELECT 1` before a request's first query on a kept
connection: a round trip as long as the statement of a single check or a one-click. Run through
`as_connection_check`, the statement is the check: one that finds its connection dead (a server
restart, an idle timeout) runs once more on a new connection. Only a dead connection is replaced;
any other error (a query the server cancelled, as a replica does in a recovery conflict) is the
caller's. Give it only a statement that may run twice: a read, or a write whose unique key makes
a second run store nothing should the connection break after the server committed the first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg
from django.db import OperationalError

T = TypeVar("T")


def as_connection_check(
    db, statement: Callable[[], T], *, may_repeat: Callable[[], bool] = lambda: True
) -> T:
    """`statement()` (which uses `db`, a Django connection, PostgreSQL) as `db`'s check. The
    statement may run a transaction of its own. `may_repeat()`, asked after a failure, says
    whether it may still run again (not once it has handed on some of its rows, say)."""
    db.ensure_connection()
    # A connection just opened, one already checked in this request, or one inside a transaction
    # (which a new connection could not carry on) is not replaced.
    checks = not (db.health_check_done or db.in_atomic_block)
    db.health_check_done = True
    checked = db.connection
    with db.wrap_database_errors:
        try:
            return statement()
        except (psycopg.OperationalError, OperationalError):
            if not (checks and may_repeat() and _dead(db, checked)):
                raise
            if db.connection is checked:  # not replaced by Django already
                db.close()
            db.ensure_connection()
            return statement()


def _dead(db, checked) -> bool:
    """Was `checked`, `db`'s connection when the statement began, gone? Django replaces a
    connection whose rollback failed at the end of a transaction; psycopg marks one it found
    closed; and one the server closed just as a transaction began may be neither yet, which
    only asking tells (a rare path)."""
    if db.connection is not checked or db.connection is None or db.connection.broken:
        return True
    return not db.is_usable()
