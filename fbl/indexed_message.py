"""A stdlib `Message` whose header lookups do not rescan every header.

`Message.get` lower-cases each field name in turn until one matches, on every call. Reading a
report asks each part for the same few fields (Content-Type above all) dozens of times, so
over a corpus of bounces that scan was about a tenth of the parse. `IndexedMessage` keeps, per
message, where each name first occurs, and the content type it last worked out. Both are only
shortcuts: they are checked against the header list on every use and rebuilt when it has
changed, so a message that is modified answers exactly as a plain `Message` would.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

__all__ = ["IndexedMessage"]

_MISSING: Any = object()


class IndexedMessage(Message):
    # The header list the index was built from, its length then, and lower name -> position of
    # the first field of that name. Positions stay right while the list is that same object
    # and no longer: Message only appends in place (set_raw, __setitem__, add_header),
    # replaces a value in place under the same name (replace_header), and builds a new list
    # whenever it removes fields (__delitem__, set_boundary).
    _indexed: list[tuple[str, Any]] | None = None
    _indexed_length = -1
    _first: dict[str, int]
    # The Content-Type value and default type the memoised content type was worked out from.
    _ctype_key: tuple[Any, str] | None = None
    _ctype = ""

    def _position(self, name: str) -> int | None:
        headers = self._headers
        if headers is not self._indexed or len(headers) != self._indexed_length:
            first: dict[str, int] = {}
            for position, (key, _) in enumerate(headers):
                first.setdefault(key.lower(), position)
            self._first = first
            self._indexed = headers
            self._indexed_length = len(headers)
        return self._first.get(name.lower())

    def get(self, name: str, failobj: Any = None) -> Any:
        position = self._position(name)
        if position is None:
            return failobj
        key, value = self._headers[position]
        return self.policy.header_fetch_parse(key, value)

    def get_content_type(self) -> str:
        position = self._position("content-type")
        value = _MISSING if position is None else self._headers[position][1]
        key = (value, self.get_default_type())
        cached = self._ctype_key
        if cached is not None and cached[0] is key[0] and cached[1] == key[1]:
            return self._ctype
        ctype = super().get_content_type()
        self._ctype_key = key
        self._ctype = ctype
        return ctype
