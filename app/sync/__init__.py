"""The sync engine: full snapshots in, a faithful replica out (SPEC §2)."""

from app.sync.engine import run_sync
from app.sync.errors import SyncRefused
from app.sync.report import SyncReport, SyncSettings

__all__ = [
    "SyncRefused",
    "SyncReport",
    "SyncSettings",
    "run_sync",
]
