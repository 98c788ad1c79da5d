"""The report rules' regular expressions, compiled once and kept in `__pycache__`, as Python
keeps the modules' bytecode.

`re` compiles a pattern in Python code, and the classification and bounce-text rules are
77 patterns, about 17,600 characters: compiling them took some 18 ms of every process's
start, a third of what `parse_report` spends before its first file and about a fifth of a
run over one file. Reading the compiled form back takes under 1 ms.

`compile(pattern, flags)` answers what `re.compile` would, the same Pattern (equal to it,
code and all), from the cache file when it holds that pattern for this very Python, else by
compiling it. What a process had to compile is written back when it exits, next to the
bytecode: not when Python writes no bytecode (PYTHONDONTWRITEBYTECODE), and silently not
where the directory cannot be written. A file from another Python, or one that cannot be read,
is ignored, so the worst a stale or broken cache costs is the compile it was meant to save.
Entries are looked up by their whole pattern text, so an edited rule is simply compiled anew.
"""

from __future__ import annotations

import atexit
import marshal
import os
import re
import sys
from typing import Any

try:  # CPython's own compiler, which `re.compile` runs: its output is what is cached
    import _sre
    from re import _compiler, _parser
except ImportError:  # pragma: no cover - another implementation: plain re.compile
    _sre = None

__all__ = ["CACHE", "PatternCache", "compile"]

_FORMAT = 1
# Entries beyond this many mean many edits since the file was begun: keep only those in use.
_MAX_ENTRIES = 2000

# (pattern, flags) -> what _sre.compile takes besides the pattern: the flags the pattern
# ends up with, its code, its group count and its group names both ways.
_Entry = tuple[int, list[int], int, dict[str, int], tuple[Any, ...]]


def _stamp() -> tuple[Any, ...]:
    """What the compiled code depends on: the file is used only by the Python that wrote it."""
    if _sre is None:  # pragma: no cover
        return ()
    return (_FORMAT, sys.version, sys.implementation.cache_tag, _sre.MAGIC, _sre.CODESIZE)


class PatternCache:
    """Compiled patterns read from, and written back to, the file at `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._added = 0
        self._used: set[tuple[str, int]] = set()
        self.hits = 0  # patterns answered from the file
        if _sre is not None:
            self._entries = self._read()

    def _read(self) -> dict[tuple[str, int], _Entry]:
        try:
            with open(self.path, "rb") as file:
                data = file.read()  # marshal.load reads a file in small pieces: 15 times slower
            stamp, entries = marshal.loads(data)
        except Exception:  # absent, unreadable or not ours: compile as usual
            return {}
        if stamp != _stamp() or not isinstance(entries, dict):
            return {}
        return entries

    @property
    def used(self) -> frozenset[tuple[str, int]]:
        """The (pattern, flags) pairs this process has asked for."""
        return frozenset(self._used)

    def compile(self, pattern: str, flags: int = 0) -> re.Pattern[str]:
        """`re.compile(pattern, flags)`, from the cache where it holds the pattern."""
        if _sre is None:  # pragma: no cover
            return re.compile(pattern, flags)
        key = (pattern, int(flags))
        self._used.add(key)
        entry = self._entries.get(key)
        if entry is not None:
            try:
                compiled = _sre.compile(pattern, *entry)
            except Exception:  # code _sre refuses: this entry is of no use
                del self._entries[key]
            else:
                self.hits += 1
                return compiled
        try:
            entry = _compiled_parts(pattern, int(flags))
            compiled = _sre.compile(pattern, *entry)
        except Exception:
            # The pattern's own error, or a `re` whose insides differ: re says which.
            return re.compile(pattern, flags)
        self._entries[key] = entry
        self._added += 1
        return compiled

    def write(self, *, always: bool = False) -> bool:
        """Write the file if this process compiled anything it did not hold (with `always`,
        even then, and whatever PYTHONDONTWRITEBYTECODE says). Whether the file now holds
        every pattern this process used. Never raises."""
        if _sre is None:  # pragma: no cover
            return False
        if not always and (not self._added or sys.dont_write_bytecode):
            return not self._added
        entries = self._entries
        if len(entries) > _MAX_ENTRIES:
            entries = {key: entries[key] for key in self._used if key in entries}
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(marshal.dumps((_stamp(), entries)))
            os.replace(temporary, self.path)  # readers see the old file or the new, whole
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            return False
        self._added = 0
        return True


def _compiled_parts(pattern: str, flags: int) -> _Entry:
    """What `re._compiler.compile` hands `_sre.compile` for `pattern`, in marshal's types."""
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return (
        int(flags | parsed.state.flags),
        [int(word) for word in code],
        parsed.state.groups - 1,
        groupindex,
        tuple(indexgroup),
    )


# The package's own file, beside its bytecode.
CACHE = PatternCache(
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "__pycache__",
        f"report-patterns.{sys.implementation.cache_tag}.marshal",
    )
)
atexit.register(CACHE.write)


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:  # noqa: A001 - as re.compile
    """`re.compile(pattern, flags)` through the package's cache file."""
    return CACHE.compile(pattern, flags)


def main() -> int:
    """`python -m fbl.pattern_cache`: write the cache file for every report rule now, as an
    install step, for services that run with PYTHONDONTWRITEBYTECODE."""
    import fbl.parse  # noqa: F401 - its modules compile every rule through the cache
    from fbl import pattern_cache  # this module as imported, not as __main__

    cache = pattern_cache.CACHE
    if not cache.write(always=True):
        print(f"cannot write {cache.path}", file=sys.stderr)
        return 1
    print(f"{cache.path}: {len(cache.used)} patterns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
