"""A small in-process cache with a time limit, for lookups on the hot check path.

Each web process keeps its own: a revoked key or a renamed stream is seen by every process
within `LOOKUP_CACHE_SECONDS`, with no shared cache server to run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
_MISSING = object()


class TtlCache(Generic[V]):
    def __init__(
        self,
        *,
        seconds: Callable[[], float],
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._seconds = seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        now = self._clock()
        found = self._entries.get(key, _MISSING)
        if found is not _MISSING and found[0] > now:
            return found[1]
        value = load()
        ttl = self._seconds()
        if ttl > 0:
            with self._lock:
                if len(self._entries) >= self._max:
                    self._entries.clear()  # rare; simpler than LRU bookkeeping on every hit
                self._entries[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
