"""Data positions (SPEC §8): which state of the data an answer reflects, comparable anywhere.

The data version token (live.data_version) is ``<counter>.<random>``: the
triggers raise the counter on every change, in commit order, and it
replicates with the data (migration e1a3c5e7f9b2). So the counter orders
states on the primary and on every streaming replica alike, and a replica
has replayed a state once its counter reaches that state's. A position is
that counter, written as an opaque token (``X-Data-Position``,
``dataPosition``); cursors and ETags carry it through the token they are
built from.

A value that is not a position (malformed, or a token from before the
counter) names no state: it is ignored, never an error.
"""

from __future__ import annotations

import re

_POSITION = re.compile(r"[0-9]{1,18}")


def counter_of(version: str | None) -> int | None:
    """The position of the data version token ``version`` (None if it carries none)."""
    if version is None:
        return None
    head, dot, _ = version.partition(".")
    return int(head) if dot and _POSITION.fullmatch(head) else None


def position_text(counter: int) -> str:
    """The opaque token of position ``counter``."""
    return str(counter)


def position_of(version: str | None) -> str | None:
    """The opaque position token of the data version ``version`` (None if it carries none)."""
    counter = counter_of(version)
    return None if counter is None else position_text(counter)


def parse_position(text: str | None) -> int | None:
    """The position an opaque token names, or None if it is not one of ours."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if _POSITION.fullmatch(text) else None
