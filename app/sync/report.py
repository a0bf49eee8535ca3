"""The outcome of one sync, serialized the same way for HTTP, the CLI and sync_runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Where each received element lands: these add up to ``received`` (SPEC §2).
RECORD_OUTCOMES = ("created", "updated", "restored", "unchanged", "rejected")
# Every count a report carries per outcome; ``deleted`` counts stored rows.
COUNTED_OUTCOMES = (*RECORD_OUTCOMES, "deleted")


@dataclass(frozen=True)
class RecordError:
    """Why the element at ``index`` of the upload was rejected."""

    index: int
    external_id: str | None
    messages: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        """The camelCase form used in reports."""
        return {"index": self.index, "externalId": self.external_id, "messages": self.messages}


@dataclass(frozen=True)
class SyncSettings:
    """The SYNC_* knobs of SPEC §2, as config.py reads them (their defaults live there only)."""

    lock_timeout: float
    max_delete_ratio: float
    guard_min_rows: int
    max_errors: int
    # PostgreSQL's work_mem inside a sync: its hash joins and aggregates hold one
    # entry per staged row, and spill to disk beyond it.
    work_mem: str
    # Rule 1's INSERT defers the table's indexes and keys (app/db/deferred_indexes.py)
    # when it creates at least this many rows and more than the table holds; 0: never.
    bulk_load_min_rows: int
    # Processes that decode and validate a large upload's blocks (app/sync/parallel_parse.py);
    # 0: the sync's own process does it all.
    parse_processes: int

    @classmethod
    def from_config(cls, config: Any) -> SyncSettings:
        """Read the knobs from a Flask config mapping."""
        return cls(
            lock_timeout=config["SYNC_LOCK_TIMEOUT"],
            max_delete_ratio=config["SYNC_MAX_DELETE_RATIO"],
            guard_min_rows=config["SYNC_GUARD_MIN_ROWS"],
            max_errors=config["SYNC_MAX_ERRORS"],
            work_mem=config["SYNC_WORK_MEM"],
            bulk_load_min_rows=config["SYNC_BULK_LOAD_MIN_ROWS"],
            parse_processes=config["SYNC_PARSE_PROCESSES"],
        )


@dataclass(frozen=True)
class MergeCounts:
    """Rows written by the merge, per rule."""

    created: int = 0
    updated: int = 0
    restored: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class SyncReport:
    """Counts per outcome plus the first errors, in upload order (SPEC §2)."""

    sync_id: int
    entity: str
    dry_run: bool
    received: int
    created: int
    updated: int
    restored: int
    unchanged: int
    rejected: int
    deleted: int
    errors: list[RecordError] = field(default_factory=list)
    errors_truncated: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The data position from which a reader sees this sync (SPEC §8): stored
    # with the report, so GET /syncs/<id> gives the one the POST answered.
    data_position: str | None = None

    def counts(self) -> dict[str, int]:
        """The count of each outcome, by name: what logs and metrics may carry."""
        return {name: getattr(self, name) for name in COUNTED_OUTCOMES}

    def to_json(self) -> dict[str, Any]:
        """The report as SPEC §2 prints it."""
        return {
            "syncId": self.sync_id,
            "entity": self.entity,
            "dryRun": self.dry_run,
            # A report is made only by a sync that was applied (or a dry run,
            # "applied" with dryRun true); /syncs shows every sync's state.
            "state": "applied",
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "restored": self.restored,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "deleted": self.deleted,
            "errors": [error.to_json() for error in self.errors],
            "errorsTruncated": self.errors_truncated,
            "startedAt": _iso(self.started_at),
            "finishedAt": _iso(self.finished_at),
            "dataPosition": self.data_position,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="microseconds")
