"""The stored body of an asynchronous sync (SPEC §2): gzip parts in ``sync_uploads``.

Accepted means durable, and any worker on any host may apply the sync, so
the body lives in the database every worker already reaches, written in the
transaction that records the sync queued. It is stored gzip: a gzip upload
as it came (its bounds checked on the way: a bomb is refused before the
202), any other compressed on the way in at level 1, so the bytes kept and
logged to WAL are a fraction of the JSON. It is read back one part at a
time and deleted in the transaction that records the sync finished. Memory
stays bounded either way: one part (about 1 MiB) at a time.
"""

from __future__ import annotations

import zlib
from contextlib import AbstractContextManager, nullcontext
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.dialect import dialect_of
from app.models import SyncUpload
from app.snapshot import GunzipReader

# About one part per MiB of compressed body: few rows, each well below any
# statement or packet limit.
PART_BYTES = 1 << 20
READ_BYTES = 1 << 16
# Fast and still about 8x on snapshot JSON: the point is bounded disk and WAL.
COMPRESS_LEVEL = 1
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def store_upload(
    connection: sa.Connection, sync_id: int, body: BinaryIO, *, gzip: bool, limit: int
) -> int:
    """Store ``body`` (gzip if ``gzip``) as sync ``sync_id``'s upload; return the bytes stored.

    A gzip body is checked as it is stored: bad gzip raises SnapshotError, more
    than ``limit`` bytes once inflated SnapshotTooLarge, as a synchronous sync
    would. The caller's transaction holds the parts; nothing is committed here.
    """
    source = _Tee(body) if gzip else _Compressed(body)
    parts = _Parts(connection, sync_id)
    if isinstance(source, _Tee):
        # Inflated only to check the bounds; what is kept is the gzip as sent.
        checker = GunzipReader(source, limit)  # type: ignore[arg-type]
        while checker.read(READ_BYTES):
            parts.add(source.take())
        parts.add(source.take())
    else:
        while data := source.read():
            parts.add(data)
    return parts.finish()


def open_upload(bind: sa.Connection | orm.Session, sync_id: int, limit: int) -> BinaryIO:
    """Sync ``sync_id``'s stored upload as a read()-able JSON body, inflated and bounded.

    Read through ``bind`` (``upload_source``), one part per statement.
    """
    return GunzipReader(_StoredParts(bind, sync_id), limit)  # type: ignore[return-value]


def upload_source(
    session: orm.Session,
) -> AbstractContextManager[sa.Connection | orm.Session]:
    """What a worker reads a claimed sync's upload through while ``session`` applies it.

    Where the stage is filled by a COPY as the upload is read (PostgreSQL), the
    sync's connection is busy: a connection of its own. Elsewhere (SQLite) the
    sync's own session: a second connection's read would keep its commit waiting.
    """
    if dialect_of(session).bulk_load(by_copy=True, by_insert=False):
        return session.get_bind().engine.connect()
    return nullcontext(session)


def delete_upload(connection: sa.Connection, sync_id: int) -> None:
    """Drop sync ``sync_id``'s stored upload (in the transaction that finishes the sync)."""
    connection.execute(sa.delete(SyncUpload).where(SyncUpload.sync_id == sync_id))


class _Parts:
    """Buffers bytes and inserts them as parts of about PART_BYTES."""

    def __init__(self, connection: sa.Connection, sync_id: int) -> None:
        self._connection = connection
        self._sync_id = sync_id
        self._buffer = bytearray()
        self._next = 0
        self.stored = 0

    def add(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= PART_BYTES:
            self._flush()

    def finish(self) -> int:
        self._flush()
        return self.stored

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._connection.execute(
            sa.insert(SyncUpload).values(
                sync_id=self._sync_id, part=self._next, chunk=bytes(self._buffer)
            )
        )
        self.stored += len(self._buffer)
        self._next += 1
        self._buffer = bytearray()


class _Tee:
    """A read()-able view of ``raw`` that keeps what was read until taken."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._kept: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._kept.append(data)
        return data

    def take(self) -> bytes:
        data, self._kept = b"".join(self._kept), []
        return data


class _Compressed:
    """``raw`` gzip-compressed as it is read, a block at a time."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._deflater = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        self._done = False

    def read(self) -> bytes:
        """The next compressed bytes (possibly empty while the deflater buffers); b"" at the end."""
        while not self._done:
            data = self._raw.read(READ_BYTES)
            if not data:
                self._done = True
                return self._deflater.flush()
            out = self._deflater.compress(data)
            if out:
                return out
        return b""


class _StoredParts:
    """The stored parts of one upload, read in order, one part in memory at a time."""

    def __init__(self, bind: sa.Connection | orm.Session, sync_id: int) -> None:
        self._bind = bind
        self._sync_id = sync_id
        self._next = 0
        self._part = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        if self._offset >= len(self._part):
            chunk = self._bind.scalar(
                sa.select(SyncUpload.chunk).where(
                    SyncUpload.sync_id == self._sync_id, SyncUpload.part == self._next
                )
            )
            if chunk is None:
                return b""
            self._part, self._offset, self._next = bytes(chunk), 0, self._next + 1
        end = len(self._part) if size < 0 else self._offset + size
        data = self._part[self._offset : end]
        self._offset += len(data)
        return data
