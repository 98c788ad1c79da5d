"""The stdlib feed parser's reading of a message, without a regular expression per boundary.

Before Python 3.13, `email.feedparser.FeedParser._parsegen` compiles a pattern for every
multipart boundary it meets, to test each line of the part against it. Every message has
boundaries of its own, so the `re` module's cache never helps: over the fixture corpus in a
fresh process the compiling took about a seventh of the parse. CPython 3.13 tests a prefix and
one shared pattern instead (python/cpython#106628). `PARSEGEN` is the running Python's own
`_parsegen`, seeing an `re` that does the same: the boundary pattern becomes a BoundaryLine,
which matches exactly the lines the compiled pattern would. Every other pattern, and a pattern
of any other shape, is the real `re` module's; on 3.13 and later nothing changes.
"""

from __future__ import annotations

import email.feedparser
import re
import types
from typing import Final

__all__ = ["PARSEGEN", "BoundaryLine"]

# What feedparser before 3.13 puts around the escaped "--" + boundary.
_HEAD: Final = "(?P<sep>"
_TAIL: Final = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR: Final = re.compile(_TAIL[1:])
_ESCAPE: Final = re.compile(r"\\(.)", re.DOTALL)  # re.escape only puts "\" before a character


class BoundaryLine:
    """The compiled boundary pattern's `match`, for one separator ("--" and the boundary)."""

    __slots__ = ("_separator", "_length")

    def __init__(self, separator: str) -> None:
        self._separator = separator
        self._length = len(separator)

    def match(self, line: str) -> re.Match[str] | None:
        if line.startswith(self._separator):
            return _AFTER_SEPARATOR.match(line, self._length)
        return None


class _Re:
    """The `re` module as PARSEGEN sees it."""

    escape = staticmethod(re.escape)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> re.Pattern[str] | BoundaryLine:
        if not flags and pattern.startswith(_HEAD) and pattern.endswith(_TAIL):
            return BoundaryLine(_ESCAPE.sub(r"\1", pattern[len(_HEAD) : -len(_TAIL)]))
        return re.compile(pattern, flags)

    def __getattr__(self, name: str) -> object:
        return getattr(re, name)


_stdlib = email.feedparser.FeedParser._parsegen
PARSEGEN: Final = types.FunctionType(
    _stdlib.__code__,
    {**vars(email.feedparser), "re": _Re()},
    _stdlib.__name__,
    _stdlib.__defaults__,
    _stdlib.__closure__,
)
PARSEGEN.__qualname__ = _stdlib.__qualname__
