"""The console's pages: parse the query string, read through pages.py, render. Read-only."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import PathConverter

from app.console import args, pages, versions
from app.console.blueprint import bp
from app.console.errors import ConsoleError
from app.db.engine import read_snapshot
from app.extensions import db
from app.reads import live
from app.reads.exports import Export, patients_export, payments_export
from app.reads.listings import patients_listing, payments_listing
from app.web.csv_stream import csv_response
from app.web.replicas import note_position, router_of

SYNC_ID_MAX = 2**31 - 1
# The patient page's timeline cursors, in pages.TimelineCursors' order.
TIMELINE_CURSORS = ("older", "newer", "payments_older", "payments_newer")


class RestOfPath(PathConverter):
    """Whatever follows /console/, newlines and NUL bytes included ("path" stops at a newline)."""

    regex = r"[\s\S]+"
    part_isolating = False


def one_snapshot(view: Callable[..., Any]) -> Callable[..., Any]:
    """Read the page in one snapshot of the data (SPEC §3): its figures, lists and pins agree."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = db.session()
        # The sign-in check may have begun a transaction of its own; it only read.
        session.rollback()
        with read_snapshot(session):
            if router_of(current_app) is not None:
                # Which state the page shows, so a reload can ask for it or later
                # (SPEC §8); one statement, paid only where replicas answer.
                note_position(live.data_version(session))
            return view(*args, **kwargs)

    return wrapper


@bp.route("", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def bare_console() -> Response:
    """/console, without the slash: on to /console/ (behind the sign-in, like every page).

    Without it the address matches no console rule, and the API's rules (a
    bearer token, a JSON 401) would answer it, even with a session cookie.
    """
    if request.method != "GET":
        raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
    query = request.query_string.decode("latin-1")
    return redirect(url_for("console.show_overview") + (f"?{query}" if query else ""), 308)


@bp.get("/")
@one_snapshot
def show_overview() -> str:
    """Live figures, the last sync of each entity, staleness and the event relay's lag."""
    return render_template("console/overview.html", **pages.overview())


@bp.get("/syncs")
@one_snapshot
def list_syncs() -> str:
    """Recorded syncs, newest first, with charts of their outcomes and durations."""
    return render_template("console/syncs.html", **pages.syncs(args.cursor()))


@bp.get("/syncs/<sync_id>")
@one_snapshot
def show_sync(sync_id: str) -> str:
    """One sync: its report, rejected records and changes."""
    # Checked here, not by an int converter: a value a converter refuses would
    # skip the console's own 404 page. sync_runs.id is 32-bit.
    if not (
        sync_id.isascii()
        and sync_id.isdigit()
        and len(sync_id) <= 10
        and int(sync_id) <= SYNC_ID_MAX
    ):
        raise ConsoleError.not_found("There is no sync with this id.")
    return render_template("console/sync.html", **pages.sync(int(sync_id), args.cursor()))


@bp.get("/patient")
@one_snapshot
def show_patient() -> str:
    """Look a patient up by externalId (a query parameter: any id works); optionally as of."""
    external_id, as_of = args.external_id(), args.instant()
    if external_id is None:
        return render_template("console/patient.html", view=None, as_of=as_of)
    cursors = pages.TimelineCursors(*(args.cursor(name) for name in TIMELINE_CURSORS))
    view = pages.patient(external_id, as_of, cursors)
    return render_template(
        "console/patient.html",
        view=view,
        as_of=as_of,
        per_page=pages.VERSIONS_PER_PAGE,
        history_links=versions.links(view.history, "older", "newer"),
        payments_links=versions.links(view.payments_history, "payments_older", "payments_newer"),
    )


@bp.get("/patients")
@one_snapshot
def find_patients() -> str:
    """Find live patients by name (``q``: words of the first or last name, any case or accent).

    The query string is never logged (app/web/request_log.py logs the path only).
    """
    query = request.args.get("q", "")
    search = pages.patient_search(query, args.cursor())
    return render_template(
        "console/patients.html", q=query, search=search, first=args.cursor() is None
    )


@bp.get("/analytics")
@one_snapshot
def show_analytics() -> str:
    """The distribution of totals, the top payers, and the range query with keyset paging."""
    payment_min, payment_max = args.bounds()
    sort = args.sort()
    return render_template(
        "console/analytics.html",
        payment_min=payment_min,
        payment_max=payment_max,
        sort=sort,
        **pages.analytics(payment_min, payment_max, sort, args.cursor()),
    )


@bp.get("/analytics.csv")
def download_range() -> Response:
    """The range query's whole listing as CSV: GET /patients?payment_min&payment_max&sort."""
    payment_min, payment_max = args.bounds()
    sort = args.sort()
    return csv_response(
        lambda: patients_export(*patients_listing(payment_min, payment_max, sort, None)),
        "patients.csv",
    )


@bp.get("/patient/payments.csv")
def download_payments() -> Response:
    """A patient's live payments (now or as of) as CSV: GET /payments?external_id&as_of."""
    external_id, as_of = args.external_id(), args.instant()
    if external_id is None:
        raise ConsoleError.bad_input("Say whose payments: the patient's externalId is missing.")

    def read() -> Export:
        pages.require_history(as_of)
        return payments_export(*payments_listing(external_id, as_of))

    return csv_response(read, "payments.csv")


@bp.route("/<console_rest:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_page(anything: str) -> str:
    """Any other console address or method: the console's own 404 or 405, behind its sign-in.

    Without it such requests match no console route, and the API's rules
    (a bearer token, a JSON error) would answer them.
    """
    if request.method != "GET":
        raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
    raise ConsoleError.not_found("There is no console page at this address.")
