"""run_sync: apply one full snapshot as one transaction (SPEC §2).

lock -> validate -> stage -> merge -> report, with the session's transaction
owned here: committed once when the sync applies, rolled back for a dry run
or a refusal (the dry run's report is then recorded on its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from heapq import merge as merge_sorted
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import SyncRun
from app.sync import merge
from app.sync.errors import MassDeleteRefused
from app.sync.lock import sync_lock
from app.sync.records import ENTITIES, ValidatedSnapshot, validate_snapshot
from app.sync.report import MergeCounts, RecordError, SyncReport, SyncSettings
from app.sync.staging import create_stage, drop_stages
from app.types import utcnow

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def run_sync(session: orm.Session, entity: str, records: Iterable[Any], *,
             dry_run: bool = False, force: bool = False,
             settings: SyncSettings | None = None, progress: Progress | None = None) -> SyncReport:
    """Make the replica of ``entity`` equal to the snapshot ``records``; return the report.

    Raises SyncInProgress when the lock is not free within the timeout and
    MassDeleteRefused when the guard trips; in both cases nothing changed.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}")
    settings = settings or SyncSettings()
    say = progress or (lambda message: None)
    validated = validate_snapshot(entity, records, settings.max_errors)
    say(f"{entity}: {validated.received} records read, {validated.rejected} invalid")
    connection = session.connection()
    try:
        with sync_lock(connection, settings.lock_timeout):
            now = utcnow()
            counts, unknown, unknown_errors = _apply(connection, entity, validated, now,
                                                     settings, force)
            say(f"{entity}: merged")
            report = _report(entity, dry_run, validated, counts, unknown, unknown_errors,
                             settings.max_errors, now)
            if dry_run:
                session.rollback()
            report = _record(session, report)
            session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("sync %(syncId)s %(entity)s dry_run=%(dryRun)s received=%(received)s "
             "created=%(created)s updated=%(updated)s restored=%(restored)s "
             "unchanged=%(unchanged)s rejected=%(rejected)s deleted=%(deleted)s",
             _counts_only(report))
    return report


def _apply(connection: sa.Connection, entity: str, validated: ValidatedSnapshot, now: datetime,
           settings: SyncSettings, force: bool) -> tuple[MergeCounts, int, list[RecordError]]:
    """Stage the snapshot and run the merge statements; returns counts and rule 7 rejections."""
    target = merge.TARGETS[entity]
    fields = merge.MERGED_FIELDS[entity]
    stage = create_stage(connection, entity, validated.rows, validated.protected)
    unknown, unknown_errors = 0, []
    if entity == "payments":
        unknown, unknown_errors = merge.reject_unknown_patients(
            connection, stage, settings.max_errors)
    _guard_mass_delete(connection, target, stage, settings, force)
    if entity == "payments":
        merge.remember_moved_payments(connection, stage)
    counts = MergeCounts(
        deleted=merge.soft_delete_absent(connection, target, stage, now),
        updated=merge.update_changed(connection, target, stage, fields, now),
        restored=merge.restore_deleted(connection, target, stage, fields, now),
        created=merge.insert_new(connection, target, stage, fields, now),
    )
    if entity == "payments":
        merge.refresh_payment_totals(connection, now)
    drop_stages(connection)
    return counts, unknown, unknown_errors


def _guard_mass_delete(connection: sa.Connection, target: sa.Table, stage: sa.Table,
                       settings: SyncSettings, force: bool) -> None:
    """Refuse a snapshot that would delete too much of a large table, unless forced."""
    if force:
        return
    live = merge.count_live(connection, target)
    if live < settings.guard_min_rows:
        return
    doomed = merge.count_absent(connection, target, stage)
    if doomed > settings.max_delete_ratio * live:
        raise MassDeleteRefused(
            f"This snapshot would delete {doomed} of {live} live rows, more than "
            f"{settings.max_delete_ratio:.0%}; resend with force=true if that is intended.",
            {"live": live, "wouldDelete": doomed, "maxDeleteRatio": settings.max_delete_ratio})


def _report(entity: str, dry_run: bool, validated: ValidatedSnapshot, counts: MergeCounts,
            unknown: int, unknown_errors: list[RecordError], max_errors: int,
            now: datetime) -> SyncReport:
    rejected = validated.rejected + unknown
    errors = list(islice(merge_sorted(validated.errors, unknown_errors,
                                      key=lambda error: error.index), max_errors))
    accepted = len(validated.rows) - unknown
    return SyncReport(
        sync_id=0, entity=entity, dry_run=dry_run, received=validated.received,
        created=counts.created, updated=counts.updated, restored=counts.restored,
        unchanged=accepted - counts.created - counts.updated - counts.restored,
        rejected=rejected, deleted=counts.deleted,
        errors=errors, errors_truncated=rejected > len(errors),
        started_at=now, finished_at=now)


def _record(session: orm.Session, report: SyncReport) -> SyncReport:
    """Store the report in sync_runs and give it the run's id."""
    run = SyncRun(entity=report.entity, dry_run=report.dry_run,
                  started_at=report.started_at, finished_at=utcnow(), report={})
    session.add(run)
    session.flush()
    report = replace(report, sync_id=run.id, finished_at=run.finished_at)
    run.report = report.to_json()
    return report


def _counts_only(report: SyncReport) -> dict[str, Any]:
    data = report.to_json()
    data.pop("errors")
    return data
