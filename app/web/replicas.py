"""Reads on replicas, for both faces (SPEC §8): route a GET's reads, retry them, say the position.

Every response that read the data says the position it reflects
(``X-Data-Position``, from ``g.data_position``); that costs nothing without
replicas. With DATABASE_REPLICA_URLS set, a GET (or HEAD) is routed after
authentication and rate limits: the position it presents, if any (the
``X-Data-Position`` header, a cursor's pin, an ``If-None-Match`` tag: the
newest of them), goes to the Router (app/db/replicas.py), and the request's
session reads from the database it picks. A replica that fails during the
view (stopped, vanished, a query cancelled by replay) is taken out of
service and the view runs again on another replica or the primary (a
primary that fails a read leaves it to the replicas), so a client never
sees a replica's failure. Anything else (a sync, a sign-in)
reads and writes the primary.

A position that is not ours (malformed, forged, a token from before
positions) names no state: it is ignored, never refused.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, current_app, g, request

from app.db.positions import counter_of, parse_position, position_of
from app.db.replicas import Database, Router, bind_reads, reading_from, unbind
from app.errors import DATABASE_UNAVAILABLE
from app.extensions import db
from app.reads.paging import CursorError, cursor_pin
from app.web import metrics

POSITION_HEADER = "X-Data-Position"
REPLICAS = "replicas"
_READ_METHODS = frozenset({"GET", "HEAD"})


def init_replicas(app: Flask) -> None:
    """Say every read's position; with replicas configured, route GETs' reads to them.

    Call after the access-control and rate-limit hooks, so that a request is
    identified and counted before it may wait for a replica.
    """
    app.after_request(_add_position_header)
    urls = app.config["DATABASE_REPLICA_URLS"]
    if not urls:
        return
    with app.app_context():
        primary = db.engine
    app.extensions[REPLICAS] = Router(
        primary,
        urls,
        dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"]),
        max_lag=app.config["REPLICA_MAX_LAG"],
        wait=app.config["REPLICA_WAIT"],
        interval=app.config["REPLICA_CHECK_SECONDS"],
    )
    app.before_request(_route_read)
    app.teardown_request(_unroute)


def retry_reads_elsewhere(app: Flask) -> None:
    """Let every view run again elsewhere when the replica reading it fails.

    Call once the views are registered; without replicas it changes nothing.
    """
    if router_of(app) is None:
        return
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _retried(view)


def router_of(app: Flask) -> Router | None:
    """The app's Router, or None without replicas."""
    router: Router | None = app.extensions.get(REPLICAS)
    return router


def note_position(version: str | None) -> None:
    """Record that this response reflects the data version ``version``."""
    g.data_position = position_of(version)


@contextmanager
def reading_sessions() -> Iterator[None]:
    """Read console sessions where they are current: on the primary, while it answers."""
    router = router_of(current_app)
    if router is None:
        yield
        return
    database = router.for_sessions()
    with reading_from(None if database.is_primary else database.engine):
        yield


def _add_position_header(response: Response) -> Response:
    position = g.get("data_position")
    if position is not None:
        response.headers[POSITION_HEADER] = position
    return response


def _route_read() -> None:
    if request.method not in _READ_METHODS:
        return
    router = router_of(current_app)
    assert router is not None
    required = presented_position()
    g.read_required = required
    _bind(router.choose(required))


def _bind(database: Database) -> None:
    previous = g.pop("read_binding", None)
    if previous is not None:
        unbind(previous)
    g.read_database = database
    g.read_binding = bind_reads(None if database.is_primary else database.engine)


def _unroute(error: BaseException | None) -> None:
    binding = g.pop("read_binding", None)
    if binding is not None:
        unbind(binding)
    database = g.pop("read_database", None)
    if database is not None:
        metrics.DATABASE_READS.labels(database.role).inc()


def presented_position() -> int | None:
    """The newest position the request presents: its header, cursors and If-None-Match tags."""
    positions = [parse_position(request.headers.get(POSITION_HEADER))]
    for name, value in request.args.items(multi=True):
        if "cursor" in name or name in ("older", "newer"):
            positions.append(_cursor_position(value))
    for tag in request.if_none_match.as_set(include_weak=True):
        head, dot, _ = tag.partition(".")
        positions.append(parse_position(head) if dot else None)
    known = [position for position in positions if position is not None]
    return max(known) if known else None


def _cursor_position(cursor: str) -> int | None:
    try:
        pin = cursor_pin(cursor)
    except CursorError:
        return None  # the view refuses it with its own answer
    return None if pin is None else counter_of(pin.version)


def _retried(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        failed: tuple[Database, ...] = ()
        while True:
            try:
                return view(*args, **kwargs)
            except DATABASE_UNAVAILABLE:
                database = g.get("read_database")
                router = router_of(current_app)
                if database is None or router is None:
                    raise
                # Out of service until its next check answers; a lost primary
                # leaves the reads to the replicas.
                router.mark_down(database)
                failed = (*failed, database)
                elsewhere = router.choose(g.get("read_required"), exclude=failed)
                if elsewhere in failed:
                    raise
                with contextlib.suppress(*DATABASE_UNAVAILABLE):
                    db.session.rollback()
                db.session.close()
                _bind(elsewhere)

    return wrapper
