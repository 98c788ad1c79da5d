"""A thread with a database connection of its own, running the work handed to it in order.

Bulk jobs use two of them to keep two transactions of PostgreSQL busy at once: one backend
works on one core, so a single writer leaves the other core to the Python side alone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


class Lane:
    """Runs submitted callables one after another on its own thread and connection. `setup`
    runs first on that connection (a session setting, say); `close` ends the thread and closes
    the connection."""

    def __init__(self, *, name: str, setup: Callable[[], None] | None = None):
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._setup = setup
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._inbox.put((work, future))
        return future

    def close(self, timeout: float | None = None) -> None:
        self._inbox.put(None)
        self._thread.join(timeout)

    def _serve(self) -> None:
        try:
            setup_failed: BaseException | None = None
            if self._setup is not None:
                try:
                    self._setup()
                except BaseException as exc:  # every piece of work reports it
                    setup_failed = exc
            while (item := self._inbox.get()) is not None:
                work, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                if setup_failed is not None:
                    future.set_exception(setup_failed)
                    continue
                try:
                    future.set_result(work())
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            connection.close()
