"""What a recipient sees of a message: the visible text and links of its text and HTML bodies.

Attachments are skipped. HTML is read with the standard library's parser: text inside <head>,
<script>, <style>, <title>, <template>, or an element hidden by `hidden` or an inline style
(display:none, visibility:hidden, opacity:0, font-size:0 — the tricks of preheader text) is
not visible, nor is a link with no text and no image. Pure: imports nothing from Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser

__all__ = ["Body", "Link", "visible_body"]


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    text: str  # what the recipient reads: the link's text, an image's alt, or the nearby line


@dataclass(frozen=True, slots=True)
class Body:
    text: str  # visible text of every text part, blocks on lines of their own
    links: tuple[Link, ...]


def visible_body(message: EmailMessage) -> Body:
    texts: list[str] = []
    links: list[Link] = []  # an HTML link's own text says more than a plain URL's line: first
    plain_links: list[Link] = []
    for part in message.walk():
        if part.is_multipart() or part.is_attachment():
            continue
        content_type = part.get_content_type()
        if content_type == "text/html":
            reader = _HtmlReader()
            reader.feed(_content(part))
            reader.close()
            texts.append(reader.text())
            links.extend(reader.links)
        elif content_type == "text/plain":
            text = _content(part)
            texts.append(text)
            plain_links.extend(_plain_links(text))
    return Body(text="\n".join(texts), links=tuple(links + plain_links))


# Of a longer part, its start and its end (where footers are) are read: Gmail shows no more
# than about 102 KB of a message anyway, and reading tens of megabytes would take seconds.
PART_HEAD = PART_TAIL = 100_000


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        content = part.get_payload(decode=True) or b""
    if not isinstance(content, str):
        content = content.decode("utf-8", "replace")
    if len(content) > PART_HEAD + PART_TAIL:
        content = content[:PART_HEAD] + "\n" + content[-PART_TAIL:]
    return content


# --- plain text ------------------------------------------------------------------------------

_PLAIN_URL = re.compile(r"""(?i)\b(?:https?://|mailto:)[^\s<>"')\]]+""")


def _plain_links(text: str) -> list[Link]:
    """Each URL of a plain text body, read with its own line and the line before it: "To
    unsubscribe, visit:" commonly stands above the link."""
    links = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for match in _PLAIN_URL.finditer(line):
            context = " ".join(lines[max(0, i - 1) : i + 1])
            links.append(Link(url=match.group(0).rstrip(".,;:!?"), text=context.strip()))
    return links


# --- HTML ------------------------------------------------------------------------------------

# Elements without an end tag: never pushed on the stack of open elements.
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_NEVER_SHOWN = frozenset({"head", "script", "style", "title", "template"})
# Elements that start a new line of text (addresses in footers are split by <br> and <p>).
_BLOCK = frozenset(
    "address article aside blockquote br center dd div dl dt footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)
_HIDING_STYLE = re.compile(
    r"display:none|visibility:hidden|opacity:0(?:\.0*)?(?:;|$)|font-size:0(?:px|em|rem|pt|%)?(?:;|$)"
)
_LINK_SCHEMES = ("http://", "https://", "mailto:")
# Nesting deeper than this is no real message: the rest is read as text at that depth.
_MAX_DEPTH = 500


def _hides(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _NEVER_SHOWN:
        return True
    for name, value in attrs:
        if name == "hidden":
            return True
        if name == "style" and value and _HIDING_STYLE.search(re.sub(r"\s+", "", value.lower())):
            return True
    return False


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self._open: list[tuple[str, bool]] = []  # (tag, hides what it holds)
        self._hidden = 0  # open elements that hide their content
        self._lines: list[list[str]] = [[]]
        self._anchor: tuple[str, list[str]] | None = None  # (href, the text read so far)

    def text(self) -> str:
        return "\n".join(" ".join("".join(line).split()) for line in self._lines).strip()

    def handle_starttag(self, tag, attrs):
        if tag in _BLOCK:
            self._lines.append([])
        if tag == "img" and self._anchor is not None and not self._hidden:
            alt = dict(attrs).get("alt") or ""
            self._anchor[1].append(f" {alt} " if alt.strip() else " [image] ")
        hides = _hides(tag, attrs)
        if tag == "a":
            self._close_anchor()
            href = (dict(attrs).get("href") or "").strip()
            if not (self._hidden or hides) and href.lower().startswith(_LINK_SCHEMES):
                self._anchor = (href, [])
        if tag in _VOID or len(self._open) >= _MAX_DEPTH:
            return
        self._open.append((tag, hides))
        self._hidden += hides

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "a":
            self._close_anchor()
        if tag in _BLOCK:
            self._lines.append([])
        # Close the innermost open element of this name, and any left unclosed inside it.
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth][0] == tag:
                for _closed, hides in self._open[depth:]:
                    self._hidden -= hides
                del self._open[depth:]
                break

    def handle_data(self, data):
        if self._hidden:
            return
        self._lines[-1].append(data)
        if self._anchor is not None:
            self._anchor[1].append(data)

    def close(self):
        super().close()
        self._close_anchor()

    def _close_anchor(self) -> None:
        if self._anchor is None:
            return
        href, parts = self._anchor
        self._anchor = None
        text = " ".join("".join(parts).split())
        if text:  # a link with nothing to see or click is not visible
            self.links.append(Link(url=href, text=text))
