"""Reading a snapshot upload: a JSON array streamed element by element (SPEC §2).

A snapshot can hold millions of records, so it is never held whole in
memory: the body is decompressed (bounded, gzip bombs get 413) and decoded
incrementally, and each element is parsed by the standard library's C
scanner as it arrives. Numbers are read exactly (Decimal), NaN and Infinity
are refused, and any syntax error anywhere (even after the last element)
makes the whole body invalid.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

from app.errors import APIError

CHUNK_SIZE = 1 << 20
_MAX_INT_DIGITS = 1000
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _parse_int(text: str) -> int | Decimal:
    # int() refuses more than 4300 digits (CVE-2020-10735 guard), which would fail
    # the whole upload; such a number is invalid in any field, so reject it per record.
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_parse_int,
                            parse_constant=_reject_constant)


class GunzipReader:
    """A read()-able gunzipped view of a stream that refuses to inflate beyond ``limit``."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._produced = 0

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        """Up to ``size`` decompressed bytes; b"" at the end of a complete gzip stream."""
        while True:
            data = self._inflater.unconsumed_tail or self._raw.read(CHUNK_SIZE)
            if not data:
                if not self._inflater.eof:
                    raise APIError.invalid_json("The gzip body is truncated.")
                return b""
            try:
                out = self._inflater.decompress(data, size)
            except zlib.error as error:
                raise APIError.invalid_json(f"The body is not valid gzip: {error}.") from None
            self._produced += len(out)
            if self._produced > self._limit:
                raise APIError.payload_too_large(self._limit)
            if out or self._inflater.eof:
                return out


def iter_snapshot(stream: BinaryIO) -> Iterator[Any]:
    """Yield the elements of the JSON array in ``stream``, one at a time.

    Raises APIError invalid_json (400) for anything that is not JSON, and
    invalid_payload (422) for JSON that is not an array.
    """
    reader = _TextReader(stream)
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

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._eof = False
        self.buffer = ""
        self.pos = 0
        self.consumed = 0

    def _refill(self, size: int = CHUNK_SIZE) -> bool:
        if self._eof:
            return False
        chunk = self._stream.read(size)
        self._eof = not chunk
        try:
            text = self._decoder.decode(chunk, final=self._eof)
        except UnicodeDecodeError as error:
            raise APIError.invalid_json(f"The body is not valid UTF-8: {error}.") from None
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos:] + text
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character, or "" at the end of the body."""
        while self.pos >= len(self.buffer):
            if not self._refill():
                return ""
        return self.buffer[self.pos]

    def skip_whitespace(self) -> None:
        """Move past JSON whitespace, reading more when the buffer runs out."""
        while True:
            self.pos = _WHITESPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buffer) or not self._refill():
                return

    def element(self) -> Any:
        """Decode one JSON value that is followed by more text (or the end of the body).

        A value that ends exactly at the end of the buffer may be cut short
        (``12`` of ``123``), so it is decoded again once more text is in.
        """
        # Read ever larger chunks while one element stays incomplete, so a huge
        # or broken element costs linear, not quadratic, time.
        size = CHUNK_SIZE
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self._refill(size):
                    size *= 2
                    continue
                raise self.error(error.msg) from None
            except (ValueError, RecursionError) as error:
                raise self.error(str(error)) from None
            if end < len(self.buffer) or not self._refill():
                self.pos = end
                return value

    def error(self, message: str) -> APIError:
        """invalid_json with the character offset where reading stopped."""
        return APIError.invalid_json(
            f"The body is not valid JSON: {message} (near character {self.consumed + self.pos}).")


def _classify_non_array(reader: _TextReader) -> None:
    while reader._refill():
        pass
    text = reader.buffer[reader.pos:]
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=_parse_int,
                           parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise APIError.invalid_json(f"The body is not valid JSON: {error}.") from None
    raise APIError.invalid_payload(
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
