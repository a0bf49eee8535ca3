"""as_of stops at the history horizon: before it, the versions that would answer are pruned."""

from __future__ import annotations

from datetime import datetime

from app.errors import APIError
from app.extensions import db
from app.reads.as_of import pruned_horizon


def require_history_at(as_of: datetime | None) -> None:
    """422 history_pruned when ``as_of`` lies before the horizon of a prune."""
    if as_of is None:
        return
    horizon = pruned_horizon(db.session, as_of)
    if horizon is not None:
        raise APIError(
            422,
            "history_pruned",
            f"History before {horizon.isoformat()} was pruned; ask for a later as_of.",
            {"parameter": "as_of", "horizon": horizon.isoformat()},
        )
