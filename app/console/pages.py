"""What each console page shows, read through the API's queries and the console's own few.

Each function returns the values one template renders; views only parse
arguments and pick the template. Statement counts are fixed per page
(tests/test_console_statements.py holds them).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.console import charts, formatting
from app.console import queries as console_queries
from app.console.errors import ConsoleError
from app.console.paging import first_page_pinning, position
from app.console.timeline import Timeline, patient_timeline, payments_timeline
from app.console.versions import (
    VersionsPage,
    newest_first,
    newest_first_by_record,
    read_versions,
)
from app.db.clock import database_now
from app.entities import ENTITIES
from app.events.status import relay_status
from app.extensions import db
from app.instants import parse_instant
from app.reads import live
from app.reads.as_of import live_patient_at, live_patients_at, live_payments_at, pruned_horizon
from app.reads.changes import sync_changes
from app.reads.orderings import (
    PATIENT_SORTS,
    PAYMENTS_BY_ID,
    SYNCS_NEWEST_FIRST,
    by_record,
    patient_sorts,
    payments_by_id,
)
from app.reads.paging import Page, read_page
from app.reads.search import SearchTooLong, patients_named, query_words
from app.reads.serializers import change_json
from app.reads.syncs import summary_json, sync_report, sync_runs
from app.sync.queue import UNFINISHED
from app.sync.report import COUNTED_OUTCOMES

SYNCS_PER_PAGE = 50
CHANGES_PER_PAGE = 100
PATIENTS_PER_PAGE = 50
TOP_PAYERS = 10
# A patient's payments on its page; more than this are counted, not listed.
PAYMENTS_SHOWN = 200
# Versions per page of a timeline (a patient's own, and its payments').
VERSIONS_PER_PAGE = 50
HISTOGRAM_BUCKETS = 20
# The per-sync chart's series, in stacking order (bottom first).
CHART_OUTCOMES = ("created", "updated", "deleted", "restored", "rejected")


def _parse_time(value: str | None) -> datetime | None:
    """An instant of a stored sync report (RFC 3339, as the service writes them)."""
    return None if value is None else parse_instant(value)


def overview() -> dict[str, Any]:
    """Live figures, the last applied sync of each entity, staleness and the relay's lag."""
    session = db.session
    stale_after = timedelta(hours=current_app.config["CONSOLE_STALE_AFTER_HOURS"])
    reports = {report["entity"]: report for report in console_queries.last_syncs(session)}
    figures = console_queries.figures(session)
    now = figures.now  # the database's clock: what the page says is now, on every node
    last = []
    for entity in ENTITIES:
        report = reports.get(entity)
        started = _parse_time(report["startedAt"]) if report else None
        last.append(
            {
                "entity": entity,
                "report": report,
                "started": started,
                "duration": _duration(report) if report else None,
                "stale": started is None or now - started > stale_after,
            }
        )
    relay = relay_status(session, configured=bool(current_app.config["EVENTS_BROKER_URL"]))
    return {
        "figures": figures,
        "last": last,
        "relay": relay,
        "stale_after": stale_after,
        "now": now,
    }


def _duration(report: dict[str, Any]) -> float:
    """Seconds from a report's start to its finish (0 for a sync not finished yet)."""
    started = _parse_time(report.get("startedAt"))
    finished = _parse_time(report.get("finishedAt"))
    return (finished - started).total_seconds() if started and finished else 0.0


def _waiting(report: dict[str, Any], now: datetime) -> str | None:
    """How long an unfinished asynchronous sync has waited since it was accepted, or None."""
    if report["state"] not in UNFINISHED:
        return None
    accepted = _parse_time(report.get("acceptedAt"))
    return None if accepted is None else formatting.age(now - accepted)


def syncs(cursor: str | None) -> dict[str, Any]:
    """A page of recorded syncs, newest first, and charts of the same syncs over time."""
    page = read_page(
        sync_runs(db.session),
        SYNCS_NEWEST_FIRST,
        position(SYNCS_NEWEST_FIRST, cursor),
        SYNCS_PER_PAGE,
    )
    reports = [summary_json(row) for row in page.rows]
    # The database's clock: a queued sync's age is the same on every node. Read
    # only when the page shows one (one statement more).
    if any(report["state"] in UNFINISHED for report in reports):
        now = database_now(db.session.connection())
        for report in reports:
            report["waiting"] = _waiting(report, now)
    for report in reports:
        report["duration"] = _duration(report)
    # Only finished syncs have counts to chart (refused and failed ones have none).
    counted = [report for report in reports if "received" in report]
    return {
        "reports": reports,
        "next_cursor": page.next_cursor,
        "first": cursor is None,
        "charts": _sync_charts(list(reversed(counted))),
    }


def _sync_charts(reports: list[dict[str, Any]]) -> list[charts.Chart]:
    """Records per outcome and duration, per sync, oldest on the left."""
    if not reports:
        return []
    labels = [f"#{r['syncId']}" for r in reports]
    hover = [
        f"Sync {r['syncId']} ({r['entity']}{', dry run' if r['dryRun'] else ''}), "
        f"{r['startedAt'][:16].replace('T', ' ')} UTC: "
        + ", ".join(f"{name} {r[name]:,}" for name in CHART_OUTCOMES)
        for r in reports
    ]
    outcomes = charts.stacked_bars(
        "Records changed or rejected per sync",
        labels,
        CHART_OUTCOMES,
        [[r[name] for name in CHART_OUTCOMES] for r in reports],
        x_label="Sync (oldest left)",
        y_label="Records",
        hover=hover,
        counts=True,
    )
    durations = charts.points(
        "Sync duration",
        labels,
        [r["duration"] for r in reports],
        x_label="Sync (oldest left)",
        y_label="Seconds",
        hover=[f"Sync {r['syncId']} ({r['entity']}): {r['duration']:.3f} s" for r in reports],
    )
    return [outcomes, durations]


def sync(sync_id: int, cursor: str | None) -> dict[str, Any]:
    """One sync's report, its rejected records, and a page of the changes it made."""
    report = sync_report(db.session, sync_id)
    if report is None:
        raise ConsoleError.not_found(f"There is no sync {sync_id} (it may have been pruned).")
    if "received" not in report:
        # Queued, running, refused or failed: no counts, no changes.
        now = database_now(db.session.connection())
        return {"report": report, "waiting": _waiting(report, now), "unfinished": True}
    after = position(by_record(), cursor)
    changes, parameters = sync_changes(
        report["entity"],
        sync_id,
        limit=CHANGES_PER_PAGE + 1,
        after_record_id=None if after is None else after[0],
    )
    page = read_page(
        sa.select(changes), by_record(changes), after, CHANGES_PER_PAGE, parameters=parameters
    )
    return {
        "report": report,
        "duration": _duration(report),
        "outcomes": COUNTED_OUTCOMES,
        "changes": [change_json(row) for row in page.rows],
        # Each change names its record; a record with a page of its own links to it.
        "linked": ENTITIES[report["entity"]].own_page,
        "next_cursor": page.next_cursor,
        "first": cursor is None,
    }


@dataclass(frozen=True)
class PatientView:
    """A patient as shown: the row (None if not live then), payments, and a page of each
    timeline (the patient's versions, and those of the payments it held)."""

    external_id: str
    row: Any
    payments: list[Any]
    more_payments: bool
    timeline: Timeline
    history: VersionsPage
    payments_timeline: Timeline
    payments_history: VersionsPage
    as_of: datetime | None


@dataclass(frozen=True)
class TimelineCursors:
    """Where each of a patient page's timelines is: cursors from its older/newer links."""

    older: str | None = None
    newer: str | None = None
    payments_older: str | None = None
    payments_newer: str | None = None


def patient(
    external_id: str, as_of: datetime | None, cursors: TimelineCursors = TimelineCursors()
) -> PatientView:
    """A patient now or as of an instant (SPEC §5 semantics), with a page of its history.

    Its own versions and those of the payments it held are each read
    VERSIONS_PER_PAGE at a time, newest first, whatever the history's length.
    """
    session = db.session
    require_history(as_of)
    if as_of is not None:
        row = live_patient_at(session, external_id, as_of)
    else:
        row = live.live_patient(session, external_id)
    record_id = row.id if row is not None else live.stored_patient_id(session, external_id)
    if record_id is None:
        raise ConsoleError.not_found(f"No patient was ever stored under the id '{external_id}'.")
    own = read_versions(
        console_queries.patient_versions(record_id),
        console_queries.with_patient_before,
        newest_first,
        cursors.older,
        cursors.newer,
        VERSIONS_PER_PAGE,
    )
    payments: list[Any] = []
    if row is not None:
        if as_of is None:
            listed, key = live.live_payments(external_id), PAYMENTS_BY_ID
        else:
            listed, columns = live_payments_at(as_of, external_id)
            key = payments_by_id(columns.c)
        payments = session.execute(listed.order_by(*key.order_by()).limit(PAYMENTS_SHOWN + 1)).all()
    held = read_versions(
        console_queries.payment_versions(record_id),
        console_queries.with_payment_neighbours,
        newest_first_by_record,
        cursors.payments_older,
        cursors.payments_newer,
        VERSIONS_PER_PAGE,
    )
    return PatientView(
        external_id,
        row,
        payments[:PAYMENTS_SHOWN],
        len(payments) > PAYMENTS_SHOWN,
        patient_timeline(own.rows),
        own,
        payments_timeline(held.rows, record_id, external_id),
        held,
        as_of,
    )


def require_history(as_of: datetime | None) -> None:
    """A 400 page when ``as_of`` lies before the history horizon (its versions are pruned)."""
    if as_of is None:
        return
    horizon = pruned_horizon(db.session, as_of)
    if horizon is not None:
        raise ConsoleError.bad_input(
            f"History before {horizon:%Y-%m-%d %H:%M} UTC was pruned; pick a later time."
        )


def analytics(
    payment_min: Decimal | None, payment_max: Decimal | None, sort: str, cursor: str | None
) -> dict[str, Any]:
    """The histogram of totals, the top payers, and a page of the range query."""
    session = db.session
    version = live.data_version(session)
    top = session.execute(
        live.live_patients().order_by(*PATIENT_SORTS["-paymentsTotal"].order_by()).limit(TOP_PAYERS)
    ).all()
    histogram = _histogram() if version is None else _histogram_of(version)
    return {
        "histogram": histogram,
        "top": top,
        "range": _range_page(payment_min, payment_max, sort, cursor, version),
        "first": cursor is None,
    }


def _range_page(
    payment_min: Decimal | None,
    payment_max: Decimal | None,
    sort: str,
    cursor: str | None,
    version: str | None,
) -> Page:
    """GET /patients?payment_min&payment_max&sort, one page, pinned like the API's pages."""
    read = first_page_pinning(cursor, version)
    if read.as_of is None:
        query, key = live.live_patients(payment_min, payment_max), PATIENT_SORTS[sort]
    else:
        query, listed = live_patients_at(read.as_of, payment_min, payment_max)
        key = patient_sorts(listed.c)[sort]
    return read_page(query, key, position(key, cursor), PATIENTS_PER_PAGE, pin=lambda: read.pin)


@dataclass(frozen=True)
class PatientSearch:
    """A name search: its words (none: nothing asked yet) and a page of the patients found."""

    words: list[str]
    page: Page | None


def patient_search(text: str, cursor: str | None) -> PatientSearch:
    """Live patients whose first or last name contains each word of ``text``, by id."""
    try:
        words = query_words(text)
    except SearchTooLong as error:
        raise ConsoleError.bad_input(f"That search is too long: {error}.") from None
    if not words:
        return PatientSearch([], None)
    query, key = patients_named(words)
    return PatientSearch(words, read_page(query, key, position(key, cursor), PATIENTS_PER_PAGE))


@dataclass(frozen=True)
class Histogram:
    """The chart and its data table: (from, to, patients) per bucket."""

    chart: charts.Chart
    buckets: list[tuple[Decimal, Decimal, int]]
    patients: int


@functools.lru_cache(maxsize=8)
def _histogram_of(version: str) -> Histogram | None:
    """The histogram of the data ``version`` names: it groups every live patient,
    the dearest statement of the console, and changes only with the data."""
    return _histogram()


def _histogram() -> Histogram | None:
    """Live patients by total, in about HISTOGRAM_BUCKETS buckets of a round width."""
    session = db.session
    spread = console_queries.totals_spread(session)
    if spread.patients == 0 or spread.low is None or spread.high is None:
        return None
    width = bucket_width(spread.low, spread.high)
    counts = console_queries.totals_histogram(session, width)
    first, last = min(counts), max(counts)
    buckets = [
        (index * width, (index + 1) * width, counts.get(index, 0))
        for index in range(first, last + 1)
    ]
    labels = [formatting.money(low) for low, _, _ in buckets]
    hover = [
        f"{formatting.money(low)} to {formatting.money(high)}: {n:,} patient{'s' * (n != 1)}"
        for low, high, n in buckets
    ]
    chart = charts.stacked_bars(
        "Patients by total of live payments",
        labels,
        ("patients",),
        [[n] for _, _, n in buckets],
        x_label=f"Total of live payments (bucket start; buckets of {formatting.money(width)})",
        y_label="Patients",
        hover=hover,
        counts=True,
    )
    return Histogram(chart, buckets, spread.patients)


def bucket_width(low: Decimal, high: Decimal) -> Decimal:
    """A round bucket width (1, 2 or 5 times a power of ten, at least a cent) for [low, high]."""
    span = float(high - low)
    # Every total alike: one bucket, wide enough to hold it.
    step = (
        charts.nice_step(span, HISTOGRAM_BUCKETS)
        if span > 0
        else charts.nice_step(abs(float(high)) or 1.0, 1)
    )
    exponent = math.floor(math.log10(step))
    width = Decimal(round(step / 10**exponent)).scaleb(exponent)
    return max(width, Decimal("0.01"))
