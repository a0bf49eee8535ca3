"""`flask sync patients|payments FILE` (the engine of the POST endpoints); `flask history prune`."""

from __future__ import annotations

import json
import logging
import signal
import sys
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup

from app.events import position
from app.extensions import db
from app.instants import InvalidInstant, parse_instant
from app.snapshot import SnapshotBody, SnapshotError
from app.sync import SyncRefused, SyncSettings, run_sync
from app.sync.prune import prune

log = logging.getLogger(__name__)
sync_cli = AppGroup("sync", help="Apply a full snapshot file to the replica.")

EXIT_OK, EXIT_REJECTED, EXIT_REFUSED = 0, 1, 2


def _sync_command(entity: str) -> click.Command:
    @click.argument("file", type=click.File("rb"))
    @click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
    @click.option("--force", is_flag=True, help="Apply even if the mass-delete guard trips.")
    def command(file: click.utils.LazyFile, dry_run: bool, force: bool) -> None:
        def progress(message: str) -> None:
            click.echo(message, err=True)

        progress(f"reading {getattr(file, 'name', '-')}")
        try:
            records = SnapshotBody(
                file, max_record_bytes=current_app.config["SYNC_MAX_RECORD_BYTES"]
            )
            report = run_sync(
                db.session,
                entity,
                records,
                dry_run=dry_run,
                force=force,
                settings=SyncSettings.from_config(current_app.config),
                progress=progress,
            )
        except SnapshotError as error:
            click.echo(f"error: {error.code}: {error.message}", err=True)
            sys.exit(EXIT_REFUSED)
        except SyncRefused as error:
            click.echo(f"refused: {error.code}: {error.message}", err=True)
            sys.exit(EXIT_REFUSED)
        except Exception:
            log.exception("sync of %s failed; nothing was changed", entity)
            sys.exit(EXIT_REFUSED)
        click.echo(json.dumps(report.to_json(), indent=2))
        sys.exit(EXIT_REJECTED if report.rejected else EXIT_OK)

    command.__doc__ = (
        f"Sync {entity} from FILE, a JSON array of the complete current set "
        f"('-' reads stdin). Prints the report as JSON; exits 0 if nothing was "
        f"rejected, 1 if some records were, 2 if the sync was refused or failed."
    )
    return sync_cli.command(entity)(command)


sync_patients = _sync_command("patients")
sync_payments = _sync_command("payments")


history_cli = AppGroup("history", help="Manage the replica's history of versions (SPEC §5).")


@history_cli.command("prune")
@click.option(
    "--before",
    "before",
    required=True,
    help="An RFC 3339 timestamp with an offset, as as_of takes, or a date "
    "(YYYY-MM-DD: midnight, UTC unless an offset follows).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Prune even syncs whose change events the relay has not published yet.",
)
def prune_history(before: str, force: bool) -> None:
    """Drop versions that ended, and sync records that began, before an instant.

    That instant becomes the horizon: as_of before it is refused with
    history_pruned. Prints what was dropped as JSON; exits 2 on a bad
    instant, and when the event relay has yet to publish a sync it would drop.
    """
    try:
        instant = parse_instant(before, allow_date=True)
    except InvalidInstant as error:
        click.echo(f"error: invalid --before {before!r}: {error}", err=True)
        sys.exit(EXIT_REFUSED)
    try:
        report = prune(
            db.session,
            instant,
            current_app.config["SYNC_LOCK_TIMEOUT"],
            unpublished_before=None if force else position.unpublished_before,
        )
    except SyncRefused as error:
        click.echo(f"refused: {error.code}: {error.message}", err=True)
        sys.exit(EXIT_REFUSED)
    click.echo(json.dumps(report.to_json(), indent=2))


syncs_cli = AppGroup("syncs", help="Asynchronous syncs (SPEC §2): the worker that applies them.")


@syncs_cli.command("worker")
@click.option(
    "--exit-when-idle",
    is_flag=True,
    help="Exit once no sync is queued, instead of waiting for more.",
)
def syncs_worker(exit_when_idle: bool) -> None:
    """Apply syncs accepted with `Prefer: respond-async`, one at a time, oldest first.

    Runs until SIGTERM or SIGINT, which let the sync in flight finish (killed
    outright, it is rolled back and the next worker applies it), then exits 0.
    Any number may run on any hosts: one works, the others wait for its lock.
    Retries an unreachable database with backoff.
    """
    from app.loops import StopFlag
    from app.sync.worker import Worker, WorkerSettings

    stop = StopFlag()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.request()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    settings = WorkerSettings.from_config(current_app.config, exit_when_idle)
    Worker(db.engine, settings, stop).run()
