"""URL converters: an externalId is one path segment, percent-decoded, byte-exact (SPEC §3).

The upstream system's ids may hold anything the sync accepts: ``/``, ``//``,
``%``, ``?``, ``#``, spaces, any Unicode. An id is one percent-encoded path
segment, so ``/patients/a%2Fhistory`` is the patient "a/history" and
``/patients/a/history`` the history of patient "a". WSGI servers decode
``%2F`` into PATH_INFO, where the two look alike; ``EncodedSlashes`` puts
the distinction back from the raw request URI before routing, and the
converter decodes it. Slashes are never merged or redirected (the app turns
Werkzeug's slash merging off). An id the sync could never have stored (too
long, a NUL byte) matches no route: 404, not a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import has_request_context, request
from werkzeug.routing import Map, PathConverter, ValidationError

from app.models import EXTERNAL_ID_LENGTH
from app.sync.record_schemas import storable

# Kept encoded in PATH_INFO: an escaped slash, and an escaped "%" so that the
# text "%2F" in an id ("%252F" on the wire) stays itself.
_KEPT = re.compile(r"%2[Ff]|%25")
_MARK = "patient_payments.encoded_slashes"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class EncodedSlashes:
    """WSGI middleware: PATH_INFO keeps ``%2F`` (and ``%25``) as the client sent them."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
        path = raw.split("?", 1)[0]
        # Only when the raw path is the one PATH_INFO was decoded from (not a
        # proxy-stripped prefix, not an absolute URI): then re-decode it.
        if path.startswith("/") and _decoded(path) == environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "".join(
                piece if _KEPT.fullmatch(piece) else _decoded(piece)
                for piece in re.split(f"({_KEPT.pattern})", path)
            )
            environ[_MARK] = True
        return self.app(environ, start_response)


def _decoded(text: str) -> str:
    """Percent-decoded as WSGI servers put it in PATH_INFO: bytes read as latin-1."""
    return unquote_to_bytes(text).decode("latin-1")


class ExternalIdConverter(PathConverter):
    """The rest of the path (or up to a sub-resource), if it can be a stored externalId."""

    regex = r"[\s\S]+?"  # "." would miss a newline, which an id may hold
    # Werkzeug infers part isolation from a "/" in the regex; this one spans slashes.
    part_isolating = False

    def to_python(self, value: str) -> str:
        """The id itself; no route matches an id the sync would reject."""
        if has_request_context() and request.environ.get(_MARK):
            value = _KEPT.sub(lambda match: "%" if match.group() == "%25" else "/", value)
        if len(value) > EXTERNAL_ID_LENGTH or storable(value) is not None:
            raise ValidationError()
        return value


def configure_url_map(url_map: Map) -> None:
    """Register the converter and turn off the redirects that would change an id."""
    # Merging would answer /patients//x with a 308 to /patients/x: another patient.
    url_map.merge_slashes = False
    url_map.converters["external_id"] = ExternalIdConverter
