"""Reading a snapshot upload: a JSON array streamed element by element (SPEC §2).

A snapshot can hold millions of records, so it is never held whole in
memory: the body is decompressed (bounded: a gzip bomb is SnapshotTooLarge; several gzip
members read as one body) and decoded incrementally, and each element is
parsed by the standard library's C scanner as it arrives. Numbers are read
exactly (Decimal), NaN and Infinity are refused, and any syntax error
anywhere (even after the last element) makes the whole body invalid.

Memory stays bounded whatever the body. An element longer than
``max_record_bytes`` is never decoded: a skip scanner walks it chunk by chunk
and an ``OversizedRecord`` (its size and its top-level "externalId", when
that is readable) is yielded in its place. The scanner checks what it skips
at the lexical level: strings and their escapes, bracket nesting, and that
the text between them holds only characters JSON allows there. That is
looser than the decoder (``{"a" 1}`` passes), but anything it refuses is not
JSON, so the body is still refused whole. A body that is not an array gets
its SnapshotNotAnArray the same way, without being read into memory.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, NoReturn

CHUNK_SIZE = 1 << 20
DEFAULT_MAX_RECORD_BYTES = 1 << 20
_MAX_INT_DIGITS = 1000
# The longest text kept while skipping, to read a key or an externalId value
# split across two chunks; a readable externalId is 255 characters at most anyway.
_MAX_ID_TEXT = 4096
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# The end of a number that is not whole yet: "1." of "1.5", "1e" or "1e+" of "1e+5".
_UNFINISHED_NUMBER = re.compile(r"(?:\.|[eE][+-]?)\Z")

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
    f'(?:[{_GAP_CHARS}]++|"(?![e\\\\]){_STRING_BODY_PATTERN}"|{_containers(_RUN_LEVELS)})*+')


def _parse_int(text: str) -> int | Decimal:
    # int() refuses more than 4300 digits (CVE-2020-10735 guard), which would fail
    # the whole upload; such a number is invalid in any field, so reject it per record.
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_parse_int,
                            parse_constant=_reject_constant)


class SnapshotError(Exception):
    """The body cannot be read as a snapshot: it is refused whole and nothing is applied.

    ``code`` names the failure for callers (the HTTP layer maps it to a status,
    the CLI to its exit code): this one is a body that is not JSON, not UTF-8 or
    not gzip.
    """

    code = "invalid_json"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SnapshotNotAnArray(SnapshotError):
    """Valid JSON, but not the array of records a snapshot is."""

    code = "invalid_payload"


class SnapshotTooLarge(SnapshotError):
    """The body, decompressed, is longer than ``limit`` bytes."""

    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds the limit of {limit} bytes.")
        self.limit = limit


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


class GunzipReader:
    """A read()-able gunzipped view of a stream that refuses to inflate beyond ``limit``.

    Members that follow one another (as ``cat a.gz b.gz`` makes) read as one
    body, as gzip(1) reads them. Whatever follows the last member must itself
    be gzip, or the body is invalid. Python's gzip module skips NUL padding
    after the last member; SPEC §2 wants bytes that are not gzip refused, and
    a NUL is not gzip, so padding is refused here too.
    """

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
        self._members = 1
        self._produced = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` (default CHUNK_SIZE) decompressed bytes; b"" after the last member."""
        size = size if size > 0 else CHUNK_SIZE
        while True:
            data = self._compressed()
            if not data:
                if not self._inflater.eof:
                    raise SnapshotError(
                        "The gzip body is truncated, or ends with bytes that are not gzip."
                        if self._members > 1 else "The gzip body is truncated.")
                return b""
            # A member may end with no output left to give; only the end of the
            # body may return b"", so read on.
            out = self._inflate(data, size)
            if out:
                return out

    def _compressed(self) -> bytes:
        """The next compressed bytes; after the end of a member they begin the next one."""
        if not self._inflater.eof:
            return self._inflater.unconsumed_tail or self._raw.read(CHUNK_SIZE)
        data = self._inflater.unused_data or self._raw.read(CHUNK_SIZE)
        if data:
            self._inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
            self._members += 1
        return data

    def _inflate(self, data: bytes, size: int) -> bytes:
        try:
            out = self._inflater.decompress(data, size)
        except zlib.error as error:
            raise SnapshotError(f"The body is not valid gzip: {error}.") from None
        self._produced += len(out)
        if self._produced > self._limit:
            raise SnapshotTooLarge(self._limit)
        return out


def iter_snapshot(stream: BinaryIO, *,
                  max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[Any]:
    """Yield the elements of the JSON array in ``stream``, one at a time.

    An element longer than ``max_record_bytes`` (counted in characters) is
    yielded as an OversizedRecord. Raises SnapshotError (invalid_json) for
    anything that is not JSON, and SnapshotNotAnArray for JSON that is not
    an array.
    """
    reader = _TextReader(stream, max_record_bytes)
    reader.skip_whitespace()
    if reader.peek() != "[":
        _classify_non_array(reader)
    reader.pos += 1
    reader.skip_whitespace()
    if reader.peek() == "]":
        reader.pos += 1
    else:
        while True:
            yield reader.element()
            reader.skip_whitespace()
            separator = reader.peek()
            reader.pos += 1
            if separator == "]":
                break
            if separator != ",":
                raise reader.error("expected ',' or ']' after an array element")
            reader.skip_whitespace()
    reader.skip_whitespace()
    if reader.peek() != "":
        raise reader.error("unexpected data after the array")


class _TextReader:
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
            text, self._held = text[:tail.start()], tail.group()
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos:] + text
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
            value, end = _DECODER.raw_decode(buffer, start)
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
                value, end = _DECODER.raw_decode(self.buffer, self.pos)
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
        external_id = _Skipper(self).run()
        size = self.consumed + self.pos - start
        if size > self.limit:
            return OversizedRecord(size, external_id, self.limit)
        # Its end was in the buffer, so the scanner read nothing more and ``at`` holds.
        try:
            value, self.pos = _DECODER.raw_decode(self.buffer, at)
        except json.JSONDecodeError as error:
            raise self.error(error.msg, self.consumed + error.pos) from None
        except (ValueError, RecursionError) as error:
            raise self.error(str(error), start) from None
        return value

    def error(self, message: str, offset: int | None = None) -> SnapshotError:
        """invalid_json with the character offset where reading stopped (or ``offset``)."""
        where = self.consumed + self.pos if offset is None else offset
        return SnapshotError(
            f"The body is not valid JSON: {message} (near character {where}).")


class _Skipper:
    """Moves a reader past one element too long to decode, holding one chunk at a time.

    Regular expressions pass over the text in C, stopping only at quotes and
    brackets they cannot take whole (see _RUN); the loop tracks string state
    and the open brackets, so strings, escapes and nesting are checked, and
    the text between must hold only characters JSON allows there. The
    element's top-level "externalId" is read on the way when the element is
    an object: a key that may be "externalId" is looked at character by
    character, and a short key or value split by a refill is kept whole.
    """

    def __init__(self, reader: _TextReader) -> None:
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
        raise self.reader.error("invalid escape or control character in a string",
                                self.reader.consumed + end)

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
        if (self.top_object and len(self.closers) == 1 and not self.capturing
                and (_last_significant(buffer, at) or self.before) in ("{", ",")):
            self.mark = at  # a key: it may be "externalId"

    def _close_string(self, buffer: str, at: int) -> None:
        if not self.closers:
            self.done = True
        elif self.capturing:
            if len(self.closers) == 1:
                self._capture(buffer, at + 1)
        elif self.mark is not None:
            self._key(buffer[self.mark:at + 1], at + 1)

    def _key(self, text: str, after: int) -> None:
        """Start reading the value after ``text`` when that key is "externalId"."""
        self.mark = None
        if text == '"externalId"' or ("\\" in text and _decode(text) == "externalId"):
            # A later "externalId" wins, as it does when an object is decoded.
            self.external_id = None
            self.capturing = True
            self.mark = after

    def _capture(self, buffer: str, end: int) -> None:
        """Take the externalId value from the text between its key and ``end``."""
        text = buffer[self.mark:end]
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


def _decode(text: str) -> Any:
    """The JSON value of ``text``, or None if it is not one."""
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None


def _id_value(text: str) -> Any:
    """The value in ``text`` (``: value``) if it is a short string or an integer, else None."""
    match = _ID_VALUE.fullmatch(text) if len(text) <= _MAX_ID_TEXT else None
    value = _decode(match.group(1)) if match else None
    return value if type(value) in (str, int) else None


def _classify_non_array(reader: _TextReader) -> NoReturn:
    """Refuse a body that is not an array, naming its JSON type (or as not JSON at all).

    A body of up to ``limit`` characters is parsed whole, exactly; a longer
    one is read as one element, so it is skipped rather than held in memory.
    """
    if not reader.fill(reader.limit):
        _classify_text(reader.buffer[reader.pos:])
    first = reader.peek()
    value = reader.element_slowly()
    reader.skip_whitespace()
    if reader.peek() != "":
        raise reader.error("unexpected data after the value")
    kind = _json_type(value) if not isinstance(value, OversizedRecord) else (
        "object" if first == "{" else "string" if first == '"' else "number")
    raise SnapshotNotAnArray(f"Expected a JSON array of records, got a JSON {kind}.")


def _classify_text(text: str) -> NoReturn:
    """Refuse the whole body ``text``, which is not an array."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=_parse_int,
                           parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise SnapshotError(f"The body is not valid JSON: {error}.") from None
    raise SnapshotNotAnArray(
        f"Expected a JSON array of records, got a JSON {_json_type(value)}.")


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
