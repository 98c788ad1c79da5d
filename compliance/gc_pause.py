"""Python's cyclic garbage collector held off during a burst of allocations.

A batch check makes tens of thousands of objects (rows, entries, the answer's dicts) that hold
no reference cycles and are freed by reference counting. With the collector on, they set off
dozens of collections of the young generations and sometimes of the whole heap, which took
2-4 ms of a 50 ms check (bench/README.md, batch check). Collections resume afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off cyclic collections inside the block. With several threads, the one that found
    the collector on turns it on again; it is never left off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
