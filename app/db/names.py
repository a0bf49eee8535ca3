"""Names folded for search: lower case, no accents, so "ANGS" finds "Ångström" (console search).

On PostgreSQL the fold is the SQL function ``pp_fold`` (migration
d0f2a4c6e8b1: ``lower(unaccent(...))``, declared IMMUTABLE so that a stored
generated column, ``patients.name_search``, can hold each patient's folded
"first last" under a trigram index). On SQLite the same name is a Python
function registered on every connection (``fold`` below, close to
``unaccent``'s rules), so one query text serves both.

``name_search`` and its index live only in PostgreSQL, outside the models
(SQLite has neither): ``include_object`` keeps Alembic's comparison of the
models with the schema from reporting them.
"""

from __future__ import annotations

import unicodedata
from typing import Any

FOLD_FUNCTION = "pp_fold"
NAME_SEARCH_COLUMN = "name_search"
NAME_SEARCH_INDEX = "ix_patients_name_search_trgm"

# Letters unaccent maps that Unicode does not decompose (a stroke, a ligature).
_NOT_DECOMPOSED = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ħ": "h",
        "Ħ": "H",
        "\u0131": "i",  # dotless i
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ß": "ss",
        "þ": "th",
        "Þ": "TH",
    }
)


def fold(text: str | None) -> str | None:
    """``text`` in lower case without accents: "Zoë Ångström" -> "zoe angstrom"."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text.translate(_NOT_DECOMPOSED))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def register_fold(dbapi_connection: Any) -> None:
    """Give a SQLite connection the ``pp_fold`` function PostgreSQL has from its migration."""
    dbapi_connection.create_function(FOLD_FUNCTION, 1, fold, deterministic=True)


def include_object(
    item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: leave out the search column and index the models do not declare."""
    if type_ == "column" and name == NAME_SEARCH_COLUMN:
        return False
    return not (type_ == "index" and name == NAME_SEARCH_INDEX)
