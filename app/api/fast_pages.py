"""The first page of GET /patients in front of Flask: the read dashboards make most, made cheap.

A range query's first page (``GET /patients?payment_min=X&payment_max=Y``)
is what a dashboard with many users asks for, and each distinct range is a
cache miss. Through Flask such a page cost about 1.4 ms of Python in process
and 3.2 ms in a gunicorn worker, against 0.6 ms for the same page from a
bare WSGI app (docs/performance.md): request and app contexts, routing,
webargs, smorest and six hooks, for a page whose JSON PostgreSQL writes.

This WSGI layer answers that one request shape itself, with the same parts
Flask's path uses: the token registry, the read budget, the argument schema,
the listing's statement, the read cache, its keys and ETags, the access log
line and the latency metric. So its answers are Flask's, byte for byte
(tests/api/test_fast_pages.py compares them). It takes only the plain case:
a GET of exactly ``/patients`` on PostgreSQL without replicas or
TRUSTED_HOSTS, asking for JSON, with no If-None-Match, no cursor and no
``as_of``, its arguments each given once and valid, a known token, and the
budget not spent. A page is read in one statement with the data version it
shows (paging.read_json_page: one snapshot, SPEC §3), PostgreSQL joining its
rows into it; a page the cache holds is answered once one statement has
confirmed its version is still the current one. Anything else is left to
Flask as it came, and nothing has happened yet but, once the token is known,
the budget's charge: Flask is told of it (app/web/rate_limits.py CHARGED), so
no request is counted twice.

READ_FAST_PATH=false turns it off.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, Request

from app.api.args import PatientListArgsSchema
from app.api.cache import CachedResponse, ResponseCache, read_cache, read_key, replay_headers
from app.api.csv_export import JSON_MIMETYPE, prefers_csv
from app.api.pagination import json_listing, next_link, next_page_url
from app.db.dialect import dialect_of
from app.db.engine import connection_without_transaction
from app.db.positions import position_of
from app.errors import APIError
from app.extensions import db
from app.reads import live
from app.reads.listings import patients_page_listing
from app.reads.paging import DataMoved, first_page_pin, read_json_page
from app.reads.serializers import patient_json_sql
from app.web.auth import Principal, principal_of_authorization, token_registry
from app.web.metrics import observe_latency
from app.web.rate_limits import CHARGED, READ_BUDGET, Charge, budget_key
from app.web.replicas import POSITION_HEADER, router_of
from app.web.request_log import REQUEST_ID_HEADER, log_access, sane_request_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

PATH = "/patients"
# The route and endpoint Flask gives the same request (app/api/patients.py list_patients).
ENDPOINT = "patients.list_patients"
# The arguments of a first page it answers; any other (a cursor, as_of, one unknown) goes to Flask.
_ARGUMENTS = frozenset(
    {"payment_min", "payment_max", "payments_min", "payments_max", "limit", "sort"}
)
_VARY = ("Vary", "Accept")  # app/api/csv_export.py: the listing is negotiated on Accept
_URLS_KEPT = 64  # root and base URLs kept (PatientPagesFastPath._urls_of)


class PatientPagesFastPath:
    """WSGI middleware: answer the plain first page of GET /patients, leave the rest to
    ``wsgi_app`` (Flask's)."""

    def __init__(self, flask_app: Flask, wsgi_app: WSGIApplication) -> None:
        self._flask = flask_app
        self._next = wsgi_app
        self._schema = PatientListArgsSchema()
        self._on: bool | None = None  # decided at the first request, once the app is built
        # The newest data version this layer has read: where a cached page is likely
        # to be. Only a guess of which statement to send first, never what is answered.
        self._newest: str | None = None
        # The page's root and base URLs by what they are made of: werkzeug builds
        # them afresh for each request, a tenth of the layer's CPU (bench/read_cpu.py).
        self._urls: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._engine: sa.Engine

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "GET"
            or "HTTP_IF_NONE_MATCH" in environ
            or not self._enabled()
        ):
            return self._next(environ, start_response)
        started = time.perf_counter()
        try:
            answer = self._answer(environ, started)
        except sa.exc.DBAPIError:
            answer = None  # the database failed it: Flask's path answers and logs that
        except Exception:
            log.exception("The fast path failed a first page; Flask answers it")
            answer = None
        if answer is None:
            return self._next(environ, start_response)
        start_response("200 OK", answer[0])
        return [answer[1]]

    def _enabled(self) -> bool:
        if self._on is None:
            app = self._flask
            with app.app_context():
                self._engine = db.engine
            # Trusted hosts and replicas are Flask's to check and route.
            self._on = bool(
                app.config["READ_FAST_PATH"]
                and dialect_of(self._engine).writes_json
                and router_of(app) is None
                and app.config["TRUSTED_HOSTS"] is None
            )
        return self._on

    def _answer(
        self, environ: WSGIEnvironment, started: float
    ) -> tuple[list[tuple[str, str]], bytes] | None:
        """The headers and body of the 200, or None to leave the request to Flask."""
        app = self._flask
        request = Request(environ)
        if prefers_csv(request.accept_mimetypes):
            return None  # the CSV export
        arguments = self._arguments(request)
        if arguments is None:
            return None
        try:
            principal = _principal(app, request)
        except APIError:
            return None  # Flask answers 401 and charges the address's failure budget
        name = None if principal is None else principal.name
        budget = app.extensions.get(READ_BUDGET)
        if budget is not None:
            read, counters = budget
            refill = read.try_spend(counters, budget_key(name, request.remote_addr))
            environ[CHARGED] = Charge(refill)
            if refill is not None:
                return None
        with self._engine.connect() as connection:
            page = self._page(connection, self._urls_of(request), arguments)
        if page is None:
            return None
        headers, body = page
        request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID", "")) or uuid.uuid4().hex
        headers.append((REQUEST_ID_HEADER, request_id))
        observe_latency(PATH, "GET", 200, started)
        log_access(request_id, "GET", request.path, 200, started, principal=name)
        return headers, body

    def _arguments(self, request: Request) -> dict[str, Any] | None:
        """The parsed arguments, as @bp.arguments gives them to the view; None for Flask."""
        given = request.args
        if not given.keys() <= _ARGUMENTS or any(len(v) > 1 for v in given.listvalues()):
            return None
        try:
            arguments: dict[str, Any] = self._schema.load(given.to_dict())
        except ma.ValidationError:
            return None
        return arguments

    def _urls_of(self, request: Request) -> tuple[str, str]:
        """``request.root_url`` and ``request.base_url``, werkzeug's own, kept for the
        environ values they are a function of (the path is always PATH)."""
        environ = request.environ
        made_of = (
            environ.get("wsgi.url_scheme"),
            environ.get("HTTP_HOST"),
            environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"),
            environ.get("SCRIPT_NAME"),
        )
        urls = self._urls.get(made_of)
        if urls is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()  # the Host header is the client's: keep a few
            urls = self._urls[made_of] = (request.root_url, request.base_url)
        return urls

    def _page(
        self, connection: sa.Connection, urls: tuple[str, str], arguments: dict[str, Any]
    ) -> tuple[list[tuple[str, str]], bytes] | None:
        """The page as cached_read and paginated give it: None to leave it to Flask.

        On a pooled connection of its own, outside a transaction, as Flask's
        session reads: the same statements through SQLAlchemy Core, without
        the app context and the session. A miss is read in one statement with
        the data version it shows, and kept under that version. So a page the
        cache does not hold under the newest version seen costs that one
        statement; one it does costs one statement to confirm the version.
        """
        connection_without_transaction(connection)

        def key_of(version: str) -> tuple[Any, ...]:
            return read_key(version, ENDPOINT, urls[0], (), arguments)

        cache = read_cache(self._flask)
        version, entry = self._cached(connection, cache, key_of)
        if entry is None:
            try:
                version, entry = _first_page(connection, urls[1], arguments)
            except DataMoved:
                return None  # a sync committed before the page's pin was read: Flask reads it
            if version is None:
                return None
            self._newest = version
            if cache.enabled:
                cache.put(key_of(version), entry)
        assert version is not None
        headers = replay_headers(entry, key_of(version))
        headers += [("Content-Length", str(len(entry.body))), _VARY]
        position = position_of(version)
        if position is not None:
            headers.append((POSITION_HEADER, position))
        return headers, entry.body

    def _cached(
        self,
        connection: sa.Connection,
        cache: ResponseCache,
        key_of: Callable[[str], tuple[Any, ...]],
    ) -> tuple[str | None, CachedResponse | None]:
        """The page the cache holds for the current data version, and that version; (None,
        None) when it holds none under the newest version seen (no statement is sent then)."""
        version = self._newest
        if not cache.enabled or version is None:
            return None, None
        entry = cache.get(key_of(version))
        if entry is None:
            return None, None
        current = live.data_version(connection)
        if current == version:
            return version, entry
        if current is None:
            return None, None  # the row is gone: the page's own statement finds none either
        self._newest = current
        entry = cache.get(key_of(current))
        return (current, entry) if entry is not None else (None, None)


def _principal(app: Flask, request: Request) -> Principal | None:
    """The request's principal, None when access control is off; APIError for a bad token."""
    registry = token_registry(app)
    if not registry.enabled:
        return None
    return principal_of_authorization(registry, request.headers.get("Authorization", ""))


def _first_page(
    connection: sa.Connection, base_url: str, arguments: dict[str, Any]
) -> tuple[str | None, CachedResponse]:
    """The first page of live patients the arguments name, written by PostgreSQL, and the
    data version it shows."""
    low: Decimal | None = arguments["payment_min"]
    high: Decimal | None = arguments["payment_max"]
    limit: int = arguments["limit"]
    query, key, bound = patients_page_listing(low, high, arguments["sort"], None)
    page = read_json_page(
        json_listing(query, key, patient_json_sql, reused=True),
        key,
        limit,
        pin=lambda version: first_page_pin(version, connection),
        parameters=bound,
        connection=connection,
    )
    headers = [("Content-Type", JSON_MIMETYPE)]
    if page.next_cursor is not None:
        # As paginated's view sees them: limit and cursor are the page's own.
        listing = {k: v for k, v in arguments.items() if k not in ("limit", "cursor")}
        url = next_page_url(base_url, listing, limit, page.next_cursor, {})
        headers.append(("Link", next_link(url)))
    return page.version, CachedResponse(page.body.encode(), tuple(headers))
