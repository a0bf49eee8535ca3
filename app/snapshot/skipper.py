"""Skipping a JSON value too long to decode, in bounded memory, reading its externalId."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

from app.snapshot.decoder import decode

if TYPE_CHECKING:
    from app.snapshot.reader import TextReader

# The longest text kept while skipping, to read a key or an externalId value
# split across two chunks; a readable externalId is 255 characters at most anyway.
_MAX_ID_TEXT = 4096

# The skip scanner's vocabulary. Outside strings, JSON text is brackets,
# quotes, and characters from _GAP_CHARS (whitespace, punctuation, numbers,
# true/false/null); anything else is a syntax error.
_GAP_CHARS = r" \t\n\r:,0-9+\-.eEtrufalsn"
_NOT_GAP = re.compile(f"[^{_GAP_CHARS}]")
_STRING_BODY_PATTERN = r'(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+'
_STRING_BODY = re.compile(_STRING_BODY_PATTERN)
_PARTIAL_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?")
_NUMBER_TEXT = re.compile(r"[0-9+\-.eE]*")
_ID_VALUE = re.compile(r"[ \t\n\r]*:[ \t\n\r]*(.*?)[ \t\n\r]*", re.DOTALL)
_RUN_LEVELS = 3


def _containers(levels: int) -> str:
    """A pattern for a whole, balanced container nested at most ``levels`` deep."""
    # Possessive throughout: a container that does not close in the buffer fails
    # after one pass instead of backtracking.
    gap_or_string = f'[{_GAP_CHARS}]++|"{_STRING_BODY_PATTERN}"'
    inner = gap_or_string
    containers = ""
    for _ in range(levels):
        containers = rf"\{{(?:{inner})*+\}}|\[(?:{inner})*+\]"
        inner = f"{gap_or_string}|{containers}"
    return containers


# Runs the skip scanner passes in one C call: whitespace, punctuation, numbers,
# literals, whole strings and whole containers up to _RUN_LEVELS deep. It stops
# at what needs a closer look: a closing bracket, something split by the end of
# the buffer, deeper nesting, or an error. _TOP_RUN, for the element's own
# object, also stops at strings that could be the key "externalId".
_RUN = re.compile(f'(?:[{_GAP_CHARS}]++|"{_STRING_BODY_PATTERN}"|{_containers(_RUN_LEVELS)})*+')
_TOP_RUN = re.compile(
    f'(?:[{_GAP_CHARS}]++|"(?![e\\\\]){_STRING_BODY_PATTERN}"|{_containers(_RUN_LEVELS)})*+'
)


class Skipper:
    """Moves a reader past one element too long to decode, holding one chunk at a time.

    Regular expressions pass over the text in C, stopping only at quotes and
    brackets they cannot take whole (see _RUN); the loop tracks string state
    and the open brackets, so strings, escapes and nesting are checked, and
    the text between must hold only characters JSON allows there. The
    element's top-level "externalId" is read on the way when the element is
    an object: a key that may be "externalId" is looked at character by
    character, and a short key or value split by a refill is kept whole.
    """

    def __init__(self, reader: TextReader) -> None:
        self.reader = reader
        self.closers: list[str] = []  # the closing bracket each open container expects
        self.max_depth = sys.getrecursionlimit()  # the decoder refuses deeper nesting too
        self.top_object = False  # the element is an object: its keys are looked at
        self.in_string = False
        self.done = False
        self.capturing = False  # reading the value of an "externalId" key
        self.mark: int | None = None  # where a key, or an externalId value, began
        self.before = ""  # the last significant character of text already dropped
        self.external_id: Any = None

    def run(self) -> Any:
        """Put the reader just past the element; return its externalId value, or None."""
        reader = self.reader
        at = reader.pos
        first = reader.buffer[at]
        if first not in '{["':
            self._scalar(at)
            return None
        if first == '"':
            self.in_string = True
        else:
            self._open(first, at)
        at += 1
        while not self.done:
            at = self._in_string(at) if self.in_string else self._outside(at)
            if at >= len(reader.buffer) and not self.done:
                at = self._more(at)
        reader.pos = at
        return self.external_id

    def _scalar(self, at: int) -> None:
        """Move past a number too long to decode: a run of the characters of numbers."""
        reader = self.reader
        while True:
            reader.pos = _NUMBER_TEXT.match(reader.buffer, at).end()  # type: ignore[union-attr]
            if reader.pos < len(reader.buffer) or not reader.refill():
                return
            at = 0

    def _outside(self, at: int) -> int:
        """Handle the text from ``at`` through the next bracket or quote outside strings."""
        buffer = self.reader.buffer
        at_top = self.top_object and len(self.closers) == 1
        if not at_top and len(self.closers) < self.max_depth - _RUN_LEVELS:
            at = _RUN.match(buffer, at).end()  # type: ignore[union-attr]
        elif at_top and not self.capturing:
            at = _TOP_RUN.match(buffer, at).end()  # type: ignore[union-attr]
        found = _NOT_GAP.search(buffer, at)
        end = found.start() if found else len(buffer)
        if at_top and self.capturing:
            comma = buffer.find(",", at, end)
            if comma >= 0:
                self._capture(buffer, comma)
        if found is None:
            return end
        char = buffer[end]
        if char == '"':
            self._open_string(buffer, end)
        elif char in "[{":
            self._open(char, end)
        elif char in "]}":
            self._close(buffer, char, end)
        else:
            raise self.reader.error(f"unexpected character {char!r}", self.reader.consumed + end)
        return end + 1

    def _in_string(self, at: int) -> int:
        """Move through a string from ``at``, to just past its closing quote if it is here."""
        buffer = self.reader.buffer
        end = _STRING_BODY.match(buffer, at).end()  # type: ignore[union-attr]
        if end == len(buffer):
            return end
        if buffer[end] == '"':
            self.in_string = False
            self._close_string(buffer, end)
            return end + 1
        if buffer[end] == "\\" and _PARTIAL_ESCAPE.fullmatch(buffer, end):
            return self._more(end)  # an escape split by the end of the buffer
        raise self.reader.error(
            "invalid escape or control character in a string", self.reader.consumed + end
        )

    def _open(self, char: str, at: int) -> None:
        self.closers.append("}" if char == "{" else "]")
        depth = len(self.closers)
        if depth == 1:
            self.top_object = char == "{"
        elif depth == 2 and self.capturing:
            self._forget_mark()  # an externalId that is an object or an array
        if depth > self.max_depth:
            raise self.reader.error("nested too deeply", self.reader.consumed + at)

    def _close(self, buffer: str, char: str, at: int) -> None:
        if self.closers.pop() != char:
            raise self.reader.error(f"unexpected {char!r}", self.reader.consumed + at)
        if self.closers:
            return
        if self.capturing:
            self._capture(buffer, at)
        self.done = True

    def _open_string(self, buffer: str, at: int) -> None:
        self.in_string = True
        if (
            self.top_object
            and len(self.closers) == 1
            and not self.capturing
            and (_last_significant(buffer, at) or self.before) in ("{", ",")
        ):
            self.mark = at  # a key: it may be "externalId"

    def _close_string(self, buffer: str, at: int) -> None:
        if not self.closers:
            self.done = True
        elif self.capturing:
            if len(self.closers) == 1:
                self._capture(buffer, at + 1)
        elif self.mark is not None:
            self._key(buffer[self.mark : at + 1], at + 1)

    def _key(self, text: str, after: int) -> None:
        """Start reading the value after ``text`` when that key is "externalId"."""
        self.mark = None
        if text == '"externalId"' or ("\\" in text and decode(text) == "externalId"):
            # A later "externalId" wins, as it does when an object is decoded.
            self.external_id = None
            self.capturing = True
            self.mark = after

    def _capture(self, buffer: str, end: int) -> None:
        """Take the externalId value from the text between its key and ``end``."""
        text = buffer[self.mark : end]
        self._forget_mark()
        self.external_id = _id_value(text)

    def _forget_mark(self) -> None:
        """Stop reading a key or an externalId value (too long, or not a short scalar)."""
        self.mark = None
        self.capturing = False

    def _more(self, at: int) -> int:
        """Read the next chunk, keeping the text from ``at`` (or a short mark); the new ``at``."""
        reader = self.reader
        keep = at
        if self.mark is not None and at - self.mark <= _MAX_ID_TEXT:
            keep = self.mark
        elif self.mark is not None:
            self._forget_mark()
        self.before = _last_significant(reader.buffer, keep) or self.before
        reader.pos = keep
        if not reader.refill():
            raise reader.error("the body ends inside an element", reader.consumed + at)
        if self.mark is not None:
            self.mark -= keep
        return at - keep


def _last_significant(text: str, end: int) -> str:
    """The last character before ``end`` that is not whitespace, or "" if there is none."""
    while end > 0:
        start = max(0, end - 64)
        piece = text[start:end].rstrip(" \t\n\r")
        if piece:
            return piece[-1]
        end = start
    return ""


def _id_value(text: str) -> Any:
    """The value in ``text`` (``: value``) if it is a short string or an integer, else None."""
    match = _ID_VALUE.fullmatch(text) if len(text) <= _MAX_ID_TEXT else None
    value = decode(match.group(1)) if match else None
    return value if type(value) in (str, int) else None
