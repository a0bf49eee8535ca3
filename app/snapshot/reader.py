"""The snapshot reader: a JSON array decoded element by element as the body arrives."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, NoReturn

from app.snapshot.decoder import DECODER, json_type, parse_int, reject_constant
from app.snapshot.errors import SnapshotError, SnapshotNotAnArray
from app.snapshot.skipper import Skipper

CHUNK_SIZE = 1 << 20
DEFAULT_MAX_RECORD_BYTES = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# What separates two array elements: a comma, with any whitespace around it.
SEPARATOR = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
# The end of a number that is not whole yet: "1." of "1.5", "1e" or "1e+" of "1e+5".
_UNFINISHED_NUMBER = re.compile(r"(?:\.|[eE][+-]?)\Z")


@dataclass(frozen=True)
class OversizedRecord:
    """Stands in for an array element longer than ``limit``, which was skipped, not decoded.

    ``size`` counts decoded characters (code points), not bytes: the reader sees
    text, and for the ASCII of ordinary records the two are the same.
    ``external_id`` is the element's top-level "externalId" value as decoded
    JSON when it was a short string or an integer, else None.
    """

    size: int
    external_id: Any
    limit: int = DEFAULT_MAX_RECORD_BYTES


@dataclass(frozen=True)
class SnapshotBody:
    """A snapshot upload not read yet: iterating it reads its elements (``iter_snapshot``).

    A sync may read it as blocks instead (app/snapshot/blocks.py), which is
    why the body, not only its elements, reaches the sync.
    """

    stream: BinaryIO
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES

    def __iter__(self) -> Iterator[Any]:
        return iter_snapshot(self.stream, max_record_bytes=self.max_record_bytes)


def iter_snapshot(
    stream: BinaryIO, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[Any]:
    """Yield the elements of the JSON array in ``stream``, one at a time.

    An element longer than ``max_record_bytes`` (counted in characters) is
    yielded as an OversizedRecord. Raises SnapshotError (invalid_json) for
    anything that is not JSON, and SnapshotNotAnArray for JSON that is not
    an array.
    """
    yield from read_array(TextReader(stream, max_record_bytes))


def read_array(reader: TextReader) -> Iterator[Any]:
    """Yield the elements of the array that starts at the reader's cursor (iter_snapshot)."""
    reader.skip_whitespace()
    if reader.peek() != "[":
        _classify_non_array(reader)
    reader.pos += 1
    yield from read_elements(reader)


def read_elements(reader: TextReader) -> Iterator[Any]:
    """Yield the array's elements from the cursor, just past "[" or at an element, to the end.

    The body must end with the array's "]" and whitespace.
    """
    reader.skip_whitespace()
    if reader.peek() == "]":
        reader.pos += 1
    else:
        yield from reader.elements()
    reader.skip_whitespace()
    if reader.peek() != "":
        raise reader.error("unexpected data after the array")


class TextReader:
    """Incrementally decoded UTF-8 text with a cursor; refills on demand."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._eof = False
        self._held = ""  # the end of the last chunk, held back until the next one
        self.limit = limit
        self.buffer = ""
        self.pos = 0
        self.consumed = 0

    def refill(self, size: int = 0) -> bool:
        """Drop the text before the cursor and read ``size`` bytes (default CHUNK_SIZE) more.

        False, with nothing read, once the body has ended.
        """
        if self._eof:
            return False
        chunk = self._stream.read(size or CHUNK_SIZE)
        self._eof = not chunk
        try:
            text = self._held + self._decoder.decode(chunk, final=self._eof)
        except UnicodeDecodeError as error:
            raise SnapshotError(f"The body is not valid UTF-8: {error}.") from None
        self._held = ""
        # "1." or "1e+" at the end may go on as "1.5" or "1e+5" in the next chunk; the
        # decoder would take the "1" alone, so it sees the tail only with what follows.
        tail = None if self._eof else _UNFINISHED_NUMBER.search(text, max(0, len(text) - 2))
        if tail:
            text, self._held = text[: tail.start()], tail.group()
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos :] + text
        self.pos = 0
        return True

    def fill(self, chars: int) -> bool:
        """Read until more than ``chars`` characters follow the cursor; False if the body ends."""
        while len(self.buffer) - self.pos <= chars:
            if not self.refill():
                return False
        return True

    def peek(self) -> str:
        """The next character, or "" at the end of the body."""
        while self.pos >= len(self.buffer):
            if not self.refill():
                return ""
        return self.buffer[self.pos]

    def skip_whitespace(self) -> None:
        """Move past JSON whitespace, reading more when the buffer runs out."""
        while True:
            self.pos = _WHITESPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buffer) or not self.refill():
                return

    def elements(self) -> Iterator[Any]:
        """Yield the array's elements from the cursor (at the first) through its closing "]".

        Millions of records take the inner loop, which does no more than it
        must: it decodes with the C scanner itself (``raw_decode`` is a Python
        frame around it) and steps over the comma with one match, so each
        element costs half what ``element`` and the separator checks cost.
        Whatever it cannot take whole (the end of the buffer, an element over
        the limit, a syntax error, the closing "]") goes to the general path
        below, which decides it exactly as for any element.
        """
        scan, separator, limit = DECODER.scan_once, SEPARATOR.match, self.limit
        while True:
            buffer, pos = self.buffer, self.pos
            buffer_end = len(buffer)
            while True:
                try:
                    value, end = scan(buffer, pos)
                except (StopIteration, ValueError, RecursionError):
                    break
                # A comma, then more text in the buffer: the value ended where the scanner said.
                following = separator(buffer, end)
                if end - pos > limit or following is None or following.end() >= buffer_end:
                    break
                yield value
                pos = following.end()
            self.pos = pos
            yield self.element()
            self.skip_whitespace()
            after = self.peek()
            self.pos += 1
            if after == "]":
                return
            if after != ",":
                raise self.error("expected ',' or ']' after an array element")
            self.skip_whitespace()

    def element(self) -> Any:
        """Decode one JSON value that is followed by more text (or the end of the body).

        An element longer than ``limit`` is skipped and an OversizedRecord
        stands in for it.
        """
        # The hot path: millions of records take it, so it does no more than it must.
        # A value that ends where the buffer does may be cut short (``12`` of
        # ``123``); refill() holds back a cut number's "1." or "1e" tail, so
        # any other value that ends inside the buffer is whole.
        buffer, start = self.buffer, self.pos
        try:
            value, end = DECODER.raw_decode(buffer, start)
        except (ValueError, RecursionError):
            pass
        else:
            if end < len(buffer) and end - start <= self.limit:
                self.pos = end
                return value
        return self.element_slowly()

    def element_slowly(self) -> Any:
        """element() for a value the buffer does not hold whole, or one that is not valid."""
        # Read ever larger chunks while one element stays incomplete, so an element
        # near the limit costs linear, not quadratic, time.
        size = CHUNK_SIZE
        while True:
            if len(self.buffer) - self.pos > self.limit:
                return self._skip()
            try:
                value, end = DECODER.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if not self.refill(size):
                    raise self.error(error.msg, self.consumed + error.pos) from None
            except (ValueError, RecursionError) as error:
                raise self.error(str(error)) from None
            else:
                if end < len(self.buffer) or not self.refill(size):
                    self.pos = end
                    return value
            size *= 2

    def _skip(self) -> Any:
        """Move past the element at the cursor, which may be longer than the limit.

        The scanner finds where it ends without decoding it (the decoder builds
        objects as it goes). An element within the limit after all was whole in
        the buffer, so it is decoded, exactly, as any other.
        """
        start, at = self.consumed + self.pos, self.pos
        external_id = Skipper(self).run()
        size = self.consumed + self.pos - start
        if size > self.limit:
            return OversizedRecord(size, external_id, self.limit)
        # Its end was in the buffer, so the scanner read nothing more and ``at`` holds.
        try:
            value, self.pos = DECODER.raw_decode(self.buffer, at)
        except json.JSONDecodeError as error:
            raise self.error(error.msg, self.consumed + error.pos) from None
        except (ValueError, RecursionError) as error:
            raise self.error(str(error), start) from None
        return value

    def error(self, message: str, offset: int | None = None) -> SnapshotError:
        """invalid_json with the character offset where reading stopped (or ``offset``)."""
        where = self.consumed + self.pos if offset is None else offset
        return SnapshotError(f"The body is not valid JSON: {message} (near character {where}).")


def _classify_non_array(reader: TextReader) -> NoReturn:
    """Refuse a body that is not an array, naming its JSON type (or as not JSON at all).

    A body of up to ``limit`` characters is parsed whole, exactly; a longer
    one is read as one element, so it is skipped rather than held in memory.
    """
    if not reader.fill(reader.limit):
        _classify_text(reader.buffer[reader.pos :])
    first = reader.peek()
    value = reader.element_slowly()
    reader.skip_whitespace()
    if reader.peek() != "":
        raise reader.error("unexpected data after the value")
    kind = (
        json_type(value)
        if not isinstance(value, OversizedRecord)
        else ("object" if first == "{" else "string" if first == '"' else "number")
    )
    raise SnapshotNotAnArray(f"Expected a JSON array of records, got a JSON {kind}.")


def _classify_text(text: str) -> NoReturn:
    """Refuse the whole body ``text``, which is not an array."""
    try:
        value = json.loads(
            text, parse_float=Decimal, parse_int=parse_int, parse_constant=reject_constant
        )
    except (ValueError, RecursionError) as error:
        raise SnapshotError(f"The body is not valid JSON: {error}.") from None
    raise SnapshotNotAnArray(f"Expected a JSON array of records, got a JSON {json_type(value)}.")
