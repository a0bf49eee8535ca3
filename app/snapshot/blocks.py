"""A snapshot cut into blocks of whole elements, for decoding on other processes.

The sequential reader (``iter_snapshot``) is the reference; this only lets a
sync decode most of a large body elsewhere while proving, block by block,
that the result is what the reader would have yielded.

A block is cut just before a ``{`` that follows a comma: a guess at where an
element starts, since the same characters may sit inside a string. A block
whose text ``decode_block`` reads as whole elements, each followed by a
comma, ends where the next element starts *if it began at an element
start*: JSON decodes one way only, and every element ends before the block
does. The first block begins at the first element, so a run of blocks that
all decode proves each cut in turn. From the first block that does not
decode (a guess inside a string, a syntax error, an element over the limit,
anything unusual), the reader takes over (``BlockReader.rest``), and
decides that text, the body's end included, exactly as it always does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from app.snapshot.decoder import DECODER
from app.snapshot.reader import SEPARATOR, TextReader, read_array, read_elements

# A comma, whitespace, then what may be an object's "{": where a block may end.
_CUT = re.compile(r",[ \t\n\r]*\{")
# How far past the block's size a cut is looked for before the rest is left to the reader.
_MAX_OVERRUN = 8


def decode_block(text: str, limit: int) -> list[Any] | None:
    """The elements of ``text`` if it is whole elements, each followed by a comma; else None.

    None as well for an element longer than ``limit`` characters, which the
    reader would skip rather than decode.
    """
    scan, separator = DECODER.scan_once, SEPARATOR.match
    values: list[Any] = []
    pos, end_of_text = 0, len(text)
    while pos < end_of_text:
        try:
            value, end = scan(text, pos)
        except (StopIteration, ValueError, RecursionError):
            return None
        following = separator(text, end)
        if end - pos > limit or following is None:
            return None
        values.append(value)
        pos = following.end()
    return values


class BlockReader:
    """A snapshot body read as blocks of text (``next_block``), then as elements (``rest``)."""

    def __init__(self, stream: BinaryIO, limit: int, block_chars: int) -> None:
        self._reader = TextReader(stream, limit)
        self._block_chars = block_chars
        self._opened = False  # past the array's "[", at its first element

    @property
    def limit(self) -> int:
        """The longest element, in characters, that is decoded rather than skipped."""
        return self._reader.limit

    def open(self) -> bool:
        """Move to the array's first element; False if the body does not start with "["."""
        reader = self._reader
        reader.skip_whitespace()
        if reader.peek() != "[":
            return False
        reader.pos += 1
        reader.skip_whitespace()
        self._opened = True
        return True

    def next_block(self) -> str | None:
        """The text of the next block, about ``block_chars`` long; None once the rest is short.

        None too when no cut is found well past the block's size (elements
        that are not objects, or one very long element): the rest is then
        left to the reader.
        """
        if not self._opened:
            return None
        reader, size = self._reader, self._block_chars
        while True:
            cut = None
            if len(reader.buffer) - reader.pos > size:
                cut = _CUT.search(reader.buffer, reader.pos + size)
            if cut is not None:
                block = reader.buffer[reader.pos : cut.end() - 1]
                reader.pos = cut.end() - 1
                return block
            if len(reader.buffer) - reader.pos > _MAX_OVERRUN * size or not reader.refill():
                return None

    def rest(self, unread: Sequence[str] = ()) -> Iterator[Any]:
        """The elements from the start of ``unread`` (blocks taken but not used) to the body's end.

        ``unread``: the last blocks ``next_block`` returned, in order, from
        the first one not decoded elsewhere; the reader decodes them again.
        """
        reader = self._reader
        if unread:
            taken = "".join(unread)
            reader.buffer = taken + reader.buffer[reader.pos :]
            reader.consumed += reader.pos - len(taken)
            reader.pos = 0
        return read_elements(reader) if self._opened else read_array(reader)
