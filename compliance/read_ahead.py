"""Making the next chunk of a bulk job in a thread while the database writes this one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def read_ahead(chunks: Iterator[T], *, depth: int = 2, name: str = "read-ahead") -> Iterator[T]:
    """`chunks`, made by a thread up to `depth` ahead: reading, checking and hashing the next
    chunk (Python) overlaps the database's insert of this one, during which the caller waits on
    the socket without the GIL. A database connection the thread opened for its lookups is
    closed at its end; its errors are raised here."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ready.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
