"""Find live patients by name: every word of the query inside the folded "first last".

Case and accents do not matter ("zoe ANGS" finds "Zoë Ångström"), nor the
order of the words ("angstrom zoe" finds her too); each word may be any part
of a name (prefix or inside). On PostgreSQL the folded names are a stored
column under a trigram index (app/db/names.py, migration d0f2a4c6e8b1); the
query's words are folded by the same SQL function, so both sides agree
letter for letter. Results come in id order, a page at a time (keyset).

The query is a bind parameter, never part of the statement's text: with the
engine's hide_parameters, a database error never writes a name to the logs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.extensions import db
from app.models import Patient
from app.reads import live
from app.reads.orderings import PATIENT_SORTS
from app.reads.paging import SortKey

# Bounds on what a search box sends (the page refuses more, politely).
MAX_QUERY_LENGTH = 200
MAX_WORDS = 8


class SearchTooLong(ValueError):
    """A query longer than MAX_QUERY_LENGTH characters or with more than MAX_WORDS words."""


def query_words(text: str) -> list[str]:
    """The words of a search query (whitespace-separated); none for a blank query."""
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchTooLong(f"at most {MAX_QUERY_LENGTH} characters")
    words = text.split()
    if len(words) > MAX_WORDS:
        raise SearchTooLong(f"at most {MAX_WORDS} words")
    return words


def patients_named(words: list[str]) -> tuple[sa.Select[Any], SortKey]:
    """Live patients whose folded "first last" contains every one of ``words``, by id."""
    key = dialect_of(db.session).patient_name_key(Patient.__table__)
    query = live.live_patients()
    for word in words:
        pattern = "%" + _escape_like(word) + "%"
        query = query.where(key.like(sa.func.pp_fold(pattern), escape="\\"))
    return query, PATIENT_SORTS["id"]


def _escape_like(word: str) -> str:
    """``word`` matched literally by LIKE: its wildcards and the escape character escaped.

    Folding leaves these three characters alone, so escaping before it holds.
    """
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
