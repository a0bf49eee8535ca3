"""Validation of a large upload on other processes, proven equal to the sequential path.

A sync spends most of its time before the lock decoding and validating the
upload, one element after another, on one core. Here this process reads the
body and cuts it into blocks (app/snapshot/blocks.py) that a pool of
processes decodes and validates into the stage's COPY text, while this
process hands the finished blocks to the COPY in upload order, each
element's index added. A block that does not decode as whole elements, or
that fails in its process for any reason, ends the blockwise part: from
that block on, the body is read and validated here as it always is
(``validate_snapshot``), so every element, rejection and error is the
sequential path's own.

The pool is this process's, started on first use through a fork server
(forking a threaded server is unsafe) and kept for later syncs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol, cast

from app.snapshot.blocks import BlockReader, decode_block
from app.snapshot.reader import SnapshotBody
from app.sync.entities import ENTITIES
from app.sync.entity import PLAIN_ELEMENT_CHARS, Entity, Fields
from app.sync.records import StageSink, ValidationSummary, validate_snapshot
from app.sync.report import RecordError
from app.sync.staging import StageText

log = logging.getLogger(__name__)

BLOCK_CHARS = 1 << 18
# Blocks sent ahead per process: one being worked on, one waiting, so none idles.
_AHEAD_PER_PROCESS = 2


class TextSink(StageSink, Protocol):
    """A sink that also takes elements already written as COPY text."""

    def add_text(self, text: str, rows: int) -> None:
        """Stage ``rows`` elements of COPY text, index first."""


def validate_upload(
    entity: Entity,
    records: Iterable[Any],
    sink: StageSink,
    max_errors: int,
    processes: int,
    block_chars: int | None = None,
) -> ValidationSummary:
    """``validate_snapshot``, on ``processes`` other processes where it can be.

    Only an upload not read yet (a SnapshotBody) going to a sink that takes
    COPY text can be; anything else, or ``processes`` 0, is validated here.
    ``block_chars``: the blocks' size (default BLOCK_CHARS); a body of
    about one block or less is validated here.
    """
    if not isinstance(records, SnapshotBody) or processes < 1 or not hasattr(sink, "add_text"):
        return validate_snapshot(entity, records, sink, max_errors)
    size = BLOCK_CHARS if block_chars is None else block_chars
    return _validate_in_blocks(entity, records, cast(TextSink, sink), max_errors, processes, size)


@dataclass(frozen=True)
class _Validated:
    """One block, validated: its elements' COPY text, and what was rejected."""

    elements: int
    # Each staged element's line after its index, in order (StageText.body).
    bodies: str
    # The staged elements' indexes within the block; None when every element was staged.
    indexes: list[int] | None
    rejected: int
    errors: list[RecordError]


def _validate_in_blocks(
    entity: Entity,
    body: SnapshotBody,
    sink: TextSink,
    max_errors: int,
    processes: int,
    block_chars: int,
) -> ValidationSummary:
    blocks = BlockReader(body.stream, body.max_record_bytes, block_chars)
    summary = ValidationSummary()
    unread = (
        _stage_blocks(entity, blocks, sink, summary, max_errors, processes) if blocks.open() else []
    )
    return validate_snapshot(entity, blocks.rest(unread), sink, max_errors, summary)


def _stage_blocks(
    entity: Entity,
    blocks: BlockReader,
    sink: TextSink,
    summary: ValidationSummary,
    max_errors: int,
    processes: int,
) -> list[str]:
    """Stage the blocks the pool validates, in order, while they are whole elements.

    ``summary`` counts the elements staged. Returns the blocks taken but not
    staged (from the first that was not whole elements), which the reader
    reads again.
    """
    pool = _pool(processes)
    pending: deque[tuple[str, Future[_Validated | None] | None]] = deque()
    more = True
    try:
        while True:
            while more and len(pending) < processes * _AHEAD_PER_PROCESS:
                block = blocks.next_block()
                more = block is not None
                if block is not None:
                    job = _submit(pool, entity.name, block, blocks.limit, max_errors)
                    pending.append((block, job))
            if not pending:
                return []
            block, job = pending.popleft()
            validated = None if job is None else _outcome(pool, job)
            if validated is None:
                return [block, *(text for text, _ in pending)]
            _stage(validated, sink, summary, max_errors)
    finally:
        for _, job in pending:
            if job is not None:
                job.cancel()


def _stage(
    validated: _Validated, sink: TextSink, summary: ValidationSummary, max_errors: int
) -> None:
    """Stage one block's elements, numbered on from the ``summary``'s, and count them in it."""
    first = summary.received
    lines = validated.bodies.split("\n")
    lines.pop()  # after the last newline
    indexes: Iterable[int] = (
        range(first, first + len(lines))
        if validated.indexes is None
        else [first + index for index in validated.indexes]
    )
    if lines:
        sink.add_text(
            "".join([f"{index}\t{line}\n" for index, line in zip(indexes, lines, strict=True)]),
            len(lines),
        )
    summary.rejected += validated.rejected
    for error in validated.errors[: max_errors - len(summary.errors)]:
        summary.errors.append(RecordError(first + error.index, error.external_id, error.messages))
    summary.received += validated.elements


def _submit(
    pool: ProcessPoolExecutor, entity: str, block: str, limit: int, max_errors: int
) -> Future[_Validated | None] | None:
    """The block sent to the pool; None if the pool no longer takes work."""
    try:
        return pool.submit(_validate_block, entity, block, limit, max_errors)
    except (BrokenProcessPool, RuntimeError):
        _forget(pool)
        return None


def _outcome(pool: ProcessPoolExecutor, job: Future[_Validated | None]) -> _Validated | None:
    """The block's result; None if it is not whole elements or its process failed."""
    try:
        return job.result()
    except BrokenProcessPool:
        log.warning("the parse processes stopped; this sync goes on in its own process")
        _forget(pool)
        return None
    except Exception:
        # The block is validated again here, where the same error, if it is one, is raised.
        log.warning("a block failed in a parse process; validated here", exc_info=True)
        return None


class _Bodies:
    """A sink in a parse process: each staged element's line, without its index."""

    def __init__(self, entity: Entity) -> None:
        self._body = StageText(entity).body
        self.bodies: list[str] = []
        self.indexes: list[int] | None = None

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Keep the element's line (and its index, once one element was not staged)."""
        if self.indexes is None and index != len(self.bodies):
            self.indexes = list(range(len(self.bodies)))
        if self.indexes is not None:
            self.indexes.append(index)
        self.bodies.append(self._body(external_id, fields))


def _validate_block(entity: str, text: str, limit: int, max_errors: int) -> _Validated | None:
    """In a parse process: the block decoded and validated, or None if it is not whole elements."""
    described = ENTITIES[entity]
    if described.plain_block is not None and limit >= PLAIN_ELEMENT_CHARS:
        read = described.plain_block(text)
        if read is not None:
            return _Validated(read[0], read[1], None, 0, [])
    elements = decode_block(text, limit)
    if elements is None:
        return None
    sink = _Bodies(described)
    summary = validate_snapshot(described, elements, sink, max_errors)
    return _Validated(
        len(elements), "".join(sink.bodies), sink.indexes, summary.rejected, summary.errors
    )


_POOL_LOCK = threading.Lock()
# (the owning process's id, its size, the pool): a forked child starts its own.
_POOL: tuple[int, int, ProcessPoolExecutor] | None = None


def _pool(processes: int) -> ProcessPoolExecutor:
    """This process's pool of ``processes`` parse processes, started on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[:2] != (os.getpid(), processes):
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            _POOL = (os.getpid(), processes, ProcessPoolExecutor(processes, mp_context=context))
        return _POOL[2]


def _forget(pool: ProcessPoolExecutor) -> None:
    """Drop a broken pool; the next sync starts a new one."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and _POOL[2] is pool:
            _POOL = None
    pool.shutdown(wait=False, cancel_futures=True)
