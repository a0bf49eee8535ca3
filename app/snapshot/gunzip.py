"""Bounded gunzip of an upload: several members read as one body, a bomb refused early."""

from __future__ import annotations

import zlib
from typing import BinaryIO

from app.snapshot.errors import SnapshotError, SnapshotTooLarge

READ_SIZE = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS


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
        """Up to ``size`` (default READ_SIZE) decompressed bytes; b"" after the last member."""
        size = size if size > 0 else READ_SIZE
        while True:
            data = self._compressed()
            if not data:
                if not self._inflater.eof:
                    raise SnapshotError(
                        "The gzip body is truncated, or ends with bytes that are not gzip."
                        if self._members > 1
                        else "The gzip body is truncated."
                    )
                return b""
            # A member may end with no output left to give; only the end of the
            # body may return b"", so read on.
            out = self._inflate(data, size)
            if out:
                return out

    def _compressed(self) -> bytes:
        """The next compressed bytes; after the end of a member they begin the next one."""
        if not self._inflater.eof:
            return self._inflater.unconsumed_tail or self._raw.read(READ_SIZE)
        data = self._inflater.unused_data or self._raw.read(READ_SIZE)
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
