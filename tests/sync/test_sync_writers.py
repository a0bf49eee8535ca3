"""A sync that meets another writer of the database waits for it instead of failing (SPEC §2).

On SQLite the event relay writes its position between syncs; a sync that had
read before its first write could not wait for that writer (SQLite refuses to
turn a read transaction into a write one while another connection writes) and
answered 503. The sync takes the write lock before it reads (begin_writing).
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from tests.support.helpers import patient_record, sync


def test_a_sync_waits_for_another_writer_instead_of_failing(committed_app: Flask) -> None:
    client = committed_app.test_client()
    sync(client, "patients", [patient_record("p1")])
    with committed_app.app_context():
        engine = db.engine
        writer = engine.connect()
    try:
        # Another connection in the middle of a write (as the relay storing its position).
        writer.execute(sa.text("DELETE FROM console_sessions WHERE 1 = 0"))
        threading.Timer(0.5, writer.commit).start()
        report = sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    finally:
        writer.close()
    assert (report["created"], report["unchanged"]) == (1, 1)
