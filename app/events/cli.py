"""`flask events relay`: publish every committed change to the message broker (SPEC §6)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup

from app.extensions import db

events_cli = AppGroup("events", help="Change events to the message broker (SPEC §6).")

EXIT_NOT_CONFIGURED = 2


@events_cli.command("relay")
@click.option(
    "--exit-when-idle",
    is_flag=True,
    help="Exit once every committed event is confirmed, instead of waiting for more.",
)
def relay(exit_when_idle: bool) -> None:
    """Publish each committed change to EVENTS_EXCHANGE at EVENTS_BROKER_URL, at least once.

    Runs until SIGTERM or SIGINT, which let the window in flight be confirmed
    and its position stored, then exit 0. Retries an unreachable broker or
    database with backoff; a second relay waits for the first. Exits 2 when
    EVENTS_BROKER_URL is not set.
    """
    config = current_app.config
    if not config["EVENTS_BROKER_URL"]:
        click.echo(
            "error: EVENTS_BROKER_URL is not set; the relay needs a broker "
            "(amqp://user:password@host:5672/vhost)",
            err=True,
        )
        sys.exit(EXIT_NOT_CONFIGURED)
    # Imported here rather than at the top: this module is loaded whenever the
    # app registers its commands, and the API and `flask sync` must never load
    # the broker client (SPEC §6: the sync path never talks to the broker).
    from app.events.relay import Relay, RelaySettings, StopFlag

    # pika logs every connection step, and each failed attempt over six lines;
    # the relay logs one line per failure itself.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    stop = StopFlag()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.request()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    Relay(db.engine, RelaySettings.from_config(config, exit_when_idle), stop).run()
