"""URL converters: an externalId is one path segment, percent-decoded, byte-exact (SPEC §3).

The upstream system's ids may hold anything the sync accepts: ``/``, ``//``,
``%``, ``?``, ``#``, spaces, any Unicode. The WSGI server has already
percent-decoded the path, so ``%2F`` and ``/`` arrive alike: everything after
the resource's prefix is the id, slashes included, never merged or
redirected (the app turns Werkzeug's slash merging off). An id the sync could
never have stored (too long, a NUL byte) matches no route: 404, not a query.
"""

from __future__ import annotations

from werkzeug.routing import Map, PathConverter, ValidationError

from app.models import EXTERNAL_ID_LENGTH
from app.sync.record_schemas import storable


class ExternalIdConverter(PathConverter):
    """The rest of the path, slashes and all, if it can be a stored externalId."""

    regex = r"[\s\S]+?"  # "." would miss a newline, which an id may hold
    # Werkzeug infers part isolation from a "/" in the regex; this one spans slashes.
    part_isolating = False

    def to_python(self, value: str) -> str:
        """The id itself; no route matches an id the sync would reject."""
        if len(value) > EXTERNAL_ID_LENGTH or storable(value) is not None:
            raise ValidationError()
        return value


def configure_url_map(url_map: Map) -> None:
    """Register the converter and turn off the redirects that would change an id."""
    # Merging would answer /patients//x with a 308 to /patients/x: another patient.
    url_map.merge_slashes = False
    url_map.converters["external_id"] = ExternalIdConverter
