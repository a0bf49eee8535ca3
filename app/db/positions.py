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

import sqlalchemy as sa

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


_TOKEN = sa.text("SELECT token FROM data_version WHERE id = 1")


def transaction_position(connection: sa.Connection) -> str | None:
    """The position a writing transaction's changes will be visible from, read inside it.

    Every change this transaction made has raised the counter (under the
    data version's row lock, so no other writer's count is in between), so
    the value read here is above that of every state committed before it;
    the committed states that reach it are this commit and later ones. The
    transaction's own later writes (its report) raise it further: its commit
    has a position at least this one, which is all a reader needs to wait for.
    """
    return position_of(connection.scalar(_TOKEN))
