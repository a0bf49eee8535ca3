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

from app.snapshot.errors import SnapshotError, SnapshotTooLarge
from app.snapshot.gunzip import GunzipReader
from app.snapshot.reader import CHUNK_SIZE, OversizedRecord, SnapshotBody, iter_snapshot

__all__ = [
    "CHUNK_SIZE",
    "GunzipReader",
    "OversizedRecord",
    "SnapshotBody",
    "SnapshotError",
    "SnapshotTooLarge",
    "iter_snapshot",
]
