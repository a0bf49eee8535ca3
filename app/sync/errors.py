"""Reasons a whole sync is refused; the HTTP layer maps them to 409, the CLI to exit 2."""

from __future__ import annotations

from typing import Any


class SyncRefused(Exception):
    """A sync that changed nothing because it was not allowed to run or to finish."""

    code = "sync_refused"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class SyncInProgress(SyncRefused):
    """Another sync held the lock for longer than SYNC_LOCK_TIMEOUT."""

    code = "sync_in_progress"


class MassDeleteRefused(SyncRefused):
    """The snapshot would delete more than SYNC_MAX_DELETE_RATIO of the live rows."""

    code = "mass_delete_refused"
