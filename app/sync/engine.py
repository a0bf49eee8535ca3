"""run_sync: apply one full snapshot as one transaction (SPEC §2).

validate (streaming, into a spool; no table touched) -> lock -> stage ->
plan -> merge -> report. The session's transaction is owned here: committed
once when the sync applies, rolled back for a refusal; a dry run's merge
is rolled back to a savepoint and only its report is committed. The advisory lock is the
transaction's first statement, so nothing the merge reads can change under it.
What differs between patients and payments comes from their ``Entity``
(app/sync/entities.py); nothing here names either.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.clock import database_now
from app.db.positions import transaction_position
from app.models import SyncRun
from app.sync import merge, queue
from app.sync.clock import sync_time
from app.sync.entities import ENTITIES
from app.sync.entity import Entity, Rejections
from app.sync.errors import MassDeleteRefused
from app.sync.lock import sync_lock
from app.sync.parallel_parse import validate_upload
from app.sync.queue import Claimed
from app.sync.records import ValidationSummary
from app.sync.report import MergeCounts, RecordError, SyncReport, SyncSettings
from app.sync.staging import drop_stage, stage_sink, temporary_plan

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def run_sync(
    session: orm.Session,
    entity: str,
    records: Iterable[Any],
    *,
    dry_run: bool = False,
    force: bool = False,
    settings: SyncSettings,
    progress: Progress | None = None,
    claimed: Claimed | None = None,
) -> SyncReport:
    """Make the replica of ``entity`` equal to the snapshot ``records``; return the report.

    ``records`` may be a lazy iterator (a streaming upload): it is consumed
    once, before the lock is taken. Raises SyncInProgress when the lock is not
    free within the timeout and MassDeleteRefused when the guard trips; in both
    cases, and on any error, nothing changed.

    ``claimed``: an asynchronous sync a worker claimed (app/sync/queue.py). Its
    row, allotted at acceptance, is filled in instead of a new one, and the
    same commit records it applied and deletes its stored upload; LostClaim if
    it is no longer the worker's.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}")
    described = ENTITIES[entity]
    say = _timed(progress)
    try:
        with stage_sink(session.connection(), described) as sink:
            summary = validate_upload(
                described, records, sink, settings.max_errors, settings.parse_processes
            )
            connection = session.connection()
            sink.finish(connection)
            say(f"{entity}: {summary.received} records read, {summary.rejected} invalid")
            with sync_lock(connection, settings.lock_timeout):
                # The database's clock, under the lock: history follows the order
                # syncs were applied in, whatever the clock of this host.
                now = sync_time(connection)
                merge.tune_transaction(connection, settings.work_mem)
                # Opened first, so that every row the merge writes names its sync; a
                # dry run keeps its record and undoes only its merge. Its place in
                # the order syncs finished in is taken here, under the lock, so a
                # sync that commits later always has a later one (the feed's order).
                run = (
                    _open_run(session, entity, dry_run, now)
                    if claimed is None
                    else queue.take_claimed_run(session, claimed.sync_id, claimed.claimant)
                )
                run.started_at = now
                run.applied_seq = queue.next_applied_seq(connection)
                stamp = merge.SyncStamp(run.id, now)
                changes = session.begin_nested() if dry_run else None
                connection = session.connection()  # emits the SAVEPOINT, which is lazy
                with temporary_plan(connection, described) as plan:
                    stage = sink.load(connection)
                    say(f"{entity}: staged")
                    outcome = _apply(
                        connection, described, stage, sink.staged, plan, stamp, settings, force
                    )
                say(f"{entity}: merged")
                if changes is not None:
                    changes.rollback()
                else:
                    run.created_after_id, run.created_through_id = outcome.created_ids
                drop_stage(connection, described)
                finished = _Finished(
                    run.id,
                    now,
                    max(database_now(connection), now),
                    # After the merge, before the report is stored (which raises it again).
                    transaction_position(connection),
                )
                report = _report(entity, dry_run, summary, outcome, settings, finished)
                _record(run, report)
                if claimed is not None:
                    queue.finish_applied(session, run, report.to_json())
                session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info(
        "sync %s %s dry_run=%s received=%s %s",
        report.sync_id,
        entity,
        dry_run,
        report.received,
        " ".join(f"{name}={n}" for name, n in report.counts().items()),
    )
    return report


def _timed(progress: Progress | None) -> Progress:
    """Prefix progress messages with the seconds since the sync began."""
    began = time.monotonic()

    def say(message: str) -> None:
        if progress is not None:
            progress(f"[{time.monotonic() - began:7.2f}s] {message}")

    return say


@dataclass(frozen=True)
class MergeOutcome:
    """What the database side decided: rows written, and the rejections it found."""

    counts: MergeCounts
    rejected: int
    errors: list[RecordError]
    # The ids of the rows created: (after, through], an empty range if none.
    created_ids: tuple[int, int]


def _apply(
    connection: sa.Connection,
    entity: Entity,
    stage: sa.Table,
    staged: int,
    plan: sa.Table,
    stamp: merge.SyncStamp,
    settings: SyncSettings,
    force: bool,
) -> MergeOutcome:
    """Settle the cross-record rules, plan, keep what is replaced, then apply each rule.

    ``staged``: how many rows ``stage`` holds.
    """

    def apply_rules(duplicates: Rejections) -> MergeOutcome:
        return _apply_rules(
            connection, entity, stage, staged, plan, stamp, settings, force, duplicates
        )

    if merge.loads_an_empty_table(connection, entity.target, staged, settings.bulk_load_min_rows):
        outcome = _unless_duplicated(connection, stage, plan, apply_rules)
        if outcome is not None:
            return outcome
    return apply_rules(merge.reject_duplicates(connection, stage, settings.max_errors))


class _Duplicated(Exception):
    """An externalId occurs twice in an upload applied as if none did."""


_UNIQUE_IDS_ASSUMED = "unique_ids_assumed"


def _unless_duplicated(
    connection: sa.Connection,
    stage: sa.Table,
    plan: sa.Table,
    apply_rules: Callable[[Rejections], MergeOutcome],
) -> MergeOutcome | None:
    """The rules applied to an empty table without rule 6's count of every externalId
    first: None if it finds a duplicate, with nothing changed.

    Into an empty table every valid element is inserted, so the table's own
    unique index on externalId finds two valid elements that share one (when
    the index is built again after a load in bulk, or at the second insert);
    an element rejected for another reason that shares its externalId is
    looked for among the few rejected. Either rolls back to a savepoint, and
    the caller applies the upload as usual: a duplicate costs an initial load
    twice its time, and saves every other one the count (0.8 s of a million).
    """
    connection.exec_driver_sql(f"SAVEPOINT {_UNIQUE_IDS_ASSUMED}")
    try:
        outcome = apply_rules((0, []))
        if merge.rejected_share_an_id(connection, stage, plan):
            raise _Duplicated
    except (sa.exc.IntegrityError, _Duplicated):
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_UNIQUE_IDS_ASSUMED}")
        outcome = None
    connection.exec_driver_sql(f"RELEASE SAVEPOINT {_UNIQUE_IDS_ASSUMED}")
    return outcome


def _apply_rules(
    connection: sa.Connection,
    entity: Entity,
    stage: sa.Table,
    staged: int,
    plan: sa.Table,
    stamp: merge.SyncStamp,
    settings: SyncSettings,
    force: bool,
    duplicates: Rejections,
) -> MergeOutcome:
    """``_apply`` once rule 6 is settled: ``duplicates``, what it rejected."""
    target, fields = entity.target, entity.merged
    rejected, errors = duplicates
    planned = merge.build_plan(connection, entity, stage, plan)
    if entity.reject_in_plan is not None:
        more, more_errors = entity.reject_in_plan(connection, plan, settings.max_errors)
        rejected, errors = rejected + more, errors + more_errors
    live = merge.count_live(connection, target)
    # Counted without a join: when nothing is absent (a resend) the anti-join
    # over the whole table (the soft delete) is skipped, and when nothing
    # matches (an initial load) so are the statements over matches.
    counted = merge.count_plan(connection, plan, staged, planned)
    present, matched = counted.present, counted.matched
    absent = live - present
    if matched:
        merge.keep_superseded_versions(connection, entity, plan, stamp)
    deleted = merge.soft_delete_absent(connection, entity, stage, stamp) if absent else 0
    # Checked after the fact: a refusal rolls the whole transaction back anyway,
    # and the delete's own row count saves a second anti-join.
    _guard_mass_delete(live, deleted, settings, force)
    updated = merge.update_changed(connection, target, plan, fields, stamp) if matched else 0
    restored = merge.restore_deleted(connection, target, plan, fields, stamp) if matched else 0
    # One INSERT under the entity's lock takes its ids from the sequence: every
    # id it gives is above the highest id visible before it, and the range is
    # how the sync's changes find the rows it created.
    created_after = merge.last_id(connection, target)
    with merge.new_rows_in_bulk(
        connection, target, counted.new, settings.bulk_load_min_rows
    ) as in_bulk:
        numbered = counted.new_indexes if in_bulk else None
        created = (
            merge.insert_new(connection, target, plan, fields, stamp, numbered)
            if counted.new
            else 0
        )
    created_ids = (created_after, merge.last_id(connection, target) if created else created_after)
    counts = MergeCounts(deleted=deleted, updated=updated, restored=restored, created=created)
    if (
        counts.deleted + counts.updated + counts.restored + counts.created
        > merge.ANALYZE_SHARE * max(live, 1)
    ):
        merge.analyze(connection, target)
    if entity.after_merge is not None:
        entity.after_merge(connection, plan, stamp.at, in_bulk)
    return MergeOutcome(counts, rejected, errors, created_ids)


def _guard_mass_delete(live: int, doomed: int, settings: SyncSettings, force: bool) -> None:
    """Refuse a snapshot that deletes too much of a large table, unless forced."""
    if force or live < settings.guard_min_rows:
        return
    if doomed > settings.max_delete_ratio * live:
        raise MassDeleteRefused(
            f"This snapshot would delete {doomed} of {live} live rows, more than "
            f"{settings.max_delete_ratio:.0%}; resend with force=true if that is intended.",
            {"live": live, "wouldDelete": doomed, "maxDeleteRatio": settings.max_delete_ratio},
        )


@dataclass(frozen=True)
class _Finished:
    """The recorded sync a report describes: its id, and when it started and finished."""

    sync_id: int
    started_at: datetime
    finished_at: datetime
    data_position: str | None


def _report(
    entity: str,
    dry_run: bool,
    summary: ValidationSummary,
    outcome: MergeOutcome,
    settings: SyncSettings,
    finished: _Finished,
) -> SyncReport:
    counts = outcome.counts
    rejected = summary.rejected + outcome.rejected
    errors = _first_errors([summary.errors, outcome.errors], settings.max_errors)
    return SyncReport(
        sync_id=finished.sync_id,
        entity=entity,
        dry_run=dry_run,
        received=summary.received,
        created=counts.created,
        updated=counts.updated,
        restored=counts.restored,
        unchanged=(summary.received - rejected - counts.created - counts.updated - counts.restored),
        rejected=rejected,
        deleted=counts.deleted,
        errors=errors,
        errors_truncated=rejected > len(errors),
        started_at=finished.started_at,
        finished_at=finished.finished_at,
        data_position=finished.data_position,
    )


def _first_errors(sources: list[list[RecordError]], max_errors: int) -> list[RecordError]:
    """The first ``max_errors`` rejected elements, one entry each, messages combined.

    Each source lists its own first ``max_errors`` in upload order, so the
    union's first ``max_errors`` are all present.
    """
    by_index: dict[int, RecordError] = {}
    for error in sorted((e for source in sources for e in source), key=lambda e: e.index):
        known = by_index.get(error.index)
        if known is None:
            by_index[error.index] = error
            continue
        messages = {key: list(value) for key, value in known.messages.items()}
        for key, value in error.messages.items():
            messages.setdefault(key, []).extend(value)
        by_index[error.index] = RecordError(error.index, known.external_id, messages)
    return list(islice(by_index.values(), max_errors))


def _open_run(session: orm.Session, entity: str, dry_run: bool, now: datetime) -> SyncRun:
    """The sync_runs row of this sync, with its id; the report follows in ``_record``."""
    run = SyncRun(
        entity=entity,
        dry_run=dry_run,
        started_at=now,
        finished_at=now,
        report={},
        uid=str(uuid.uuid4()),
    )
    session.add(run)
    session.flush()
    return run


def _record(run: SyncRun, report: SyncReport) -> None:
    """Store ``report`` in the sync's row."""
    run.finished_at = report.finished_at
    run.report = report.to_json()
