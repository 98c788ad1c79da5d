"""One process at a time: PostgreSQL session advisory locks.

A task redelivered while its first run is still going (Redis hands an unacknowledged task on
after its visibility timeout, whether or not the worker that took it is alive) must not run the
same work twice at once. The lock belongs to the database session, not to a transaction, so it
holds no transaction open for the length of a long task, and the database drops it by itself
when the process holding it dies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DatabaseError, connection


@contextlib.contextmanager
def exclusive(lock_class: int, key: int) -> Iterator[bool]:
    """Whether this process holds the lock (`lock_class`, `key`) for the block: False at once
    when another one does. Always True on SQLite, whose embedded default runs one process."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [lock_class, key])
        mine = cursor.fetchone()[0]
    try:
        yield mine
    finally:
        if mine:
            # A broken connection took the lock with it; its error is the block's to report.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [lock_class, key])
