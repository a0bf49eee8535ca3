"""Reads on a real streaming replica (SPEC §8): routing, positions, staleness, a lost primary.

The app runs in-process over the session's primary and hot standby
(conftest.py). Which database answered is read off the reads-per-role
counter of /metrics, and off the data itself: while the standby's replay is
paused, only the primary has a sync that just committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from app.db.replicas import Router
from tests.support.helpers import patient_record, sync
from tests.support.topology import Topology

Build = Callable[..., Flask]


def reads(role: str) -> float:
    """How many reads the database of ``role`` answered so far (this process)."""
    return REGISTRY.get_sample_value("database_reads_total", {"role": role}) or 0.0


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [patient["externalId"] for patient in response.get_json()]


def router(app: Flask) -> Router:
    found: Router = app.extensions["replicas"]
    return found


def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for ``condition`` (the monitor checks every CHECK_SECONDS)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def replica_serves(app: Flask) -> bool:
    """Whether the replica may answer reads now (its monitor runs from the first read on)."""
    router(app).start()
    return bool(router(app).readable())


def seed(client: FlaskClient, topology: Topology, *external_ids: str) -> dict[str, Any]:
    """Sync these patients and let the standby replay them; the report."""
    report = sync(client, "patients", [patient_record(e) for e in external_ids])
    topology.wait_for_replay()
    return report


def test_reads_go_to_the_replica_and_syncs_to_the_primary(make_app: Build, healthy: Topology):
    app = make_app()
    client = app.test_client()
    report = seed(client, healthy, "p1")
    assert report["dataPosition"]
    until(lambda: replica_serves(app))
    before = reads("replica")
    response = client.get("/patients")
    assert ids(response) == ["p1"]
    assert reads("replica") == before + 1
    assert int(response.headers["X-Data-Position"]) >= int(report["dataPosition"])


def test_a_read_presenting_its_syncs_position_sees_the_sync_while_replay_is_paused(
    make_app: Build, healthy: Topology
):
    app = make_app()
    client = app.test_client()
    seed(client, healthy, "p1")
    until(lambda: replica_serves(app))
    healthy.pause_replay()
    report = sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    # Without the position the replica may answer with what it has replayed.
    assert ids(client.get("/patients")) == ["p1"]
    # With it, the read is answered from the sync's state or later.
    answered = client.get("/patients", headers={"X-Data-Position": report["dataPosition"]})
    assert ids(answered) == ["p1", "p2"]
    assert int(answered.headers["X-Data-Position"]) >= int(report["dataPosition"])


def test_a_read_presenting_a_position_waits_for_the_replica_to_replay_it(
    make_app: Build, healthy: Topology
):
    app = make_app(REPLICA_WAIT=5.0)
    client = app.test_client()
    seed(client, healthy, "p1")
    healthy.pause_replay()
    report = sync(client, "patients", [patient_record("p2")])
    position = int(report["dataPosition"])
    # Once a check has seen the position on the primary, the replica is waited for.
    until(lambda: replica_serves(app) and (router(app).primary.counter or 0) >= position)
    threading.Timer(0.3, healthy.resume_replay).start()
    replica_reads, primary_reads = reads("replica"), reads("primary")
    answered = client.get("/patients", headers={"X-Data-Position": report["dataPosition"]})
    assert ids(answered) == ["p2"]
    assert (reads("replica"), reads("primary")) == (replica_reads + 1, primary_reads)


def test_a_paged_walk_never_goes_back_while_the_replica_lags(make_app: Build, healthy: Topology):
    app = make_app()
    client = app.test_client()
    seed(client, healthy, *(f"old{n}" for n in range(5)))
    until(lambda: replica_serves(app))
    healthy.pause_replay()
    report = sync(client, "patients", [patient_record(f"new{n}") for n in range(5)])
    first = client.get("/patients?limit=2", headers={"X-Data-Position": report["dataPosition"]})
    walked = ids(first)
    next_url = first.headers["Link"].split(">")[0].lstrip("<")
    while next_url:
        # No header: the cursor carries the position of the first page.
        page = client.get(next_url)
        walked += ids(page)
        link = page.headers.get("Link")
        next_url = link.split(">")[0].lstrip("<") if link else None
    assert walked == [f"new{n}" for n in range(5)]


def test_revalidation_never_goes_back_while_the_replica_lags(make_app: Build, healthy: Topology):
    app = make_app()
    client = app.test_client()
    seed(client, healthy, "p1")
    until(lambda: replica_serves(app))
    healthy.pause_replay()
    report = sync(client, "patients", [patient_record("p2")])
    fresh = client.get("/patients", headers={"X-Data-Position": report["dataPosition"]})
    assert ids(fresh) == ["p2"]
    again = client.get("/patients", headers={"If-None-Match": fresh.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["ETag"] == fresh.headers["ETag"]


def test_the_same_state_has_the_same_etag_on_the_primary_and_the_replica(
    make_app: Build, healthy: Topology
):
    on_replica = make_app().test_client()
    on_primary = make_app(replicas=False).test_client()
    seed(on_primary, healthy, "p1", "p2")
    until(lambda: replica_serves(on_replica.application))
    replica_reads = reads("replica")
    from_replica = on_replica.get("/patients?limit=1")
    assert reads("replica") == replica_reads + 1
    from_primary = on_primary.get("/patients?limit=1")
    assert from_replica.headers["ETag"] == from_primary.headers["ETag"]
    assert from_replica.headers["X-Data-Position"] == from_primary.headers["X-Data-Position"]
    assert from_replica.headers["Link"] == from_primary.headers["Link"]


def test_a_replica_lagging_beyond_the_maximum_gets_no_reads(make_app: Build, healthy: Topology):
    app = make_app(REPLICA_MAX_LAG=0.5)
    client = app.test_client()
    seed(client, healthy, "p1")
    until(lambda: replica_serves(app))
    healthy.pause_replay()
    sync(client, "patients", [patient_record("p2")])
    until(lambda: not replica_serves(app))
    replica_reads = reads("replica")
    assert ids(client.get("/patients")) == ["p2"]
    assert reads("replica") == replica_reads
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["databases"]["replicas"][0]["state"] == "lagging"
    healthy.resume_replay()
    until(lambda: replica_serves(app))
    assert ids(client.get("/patients")) == ["p2"]
    assert reads("replica") == replica_reads + 1


def test_an_idle_primary_leaves_a_caught_up_replica_at_lag_zero(make_app: Build, healthy: Topology):
    app = make_app(REPLICA_MAX_LAG=0.5)
    seed(app.test_client(), healthy, "p1")
    until(lambda: replica_serves(app))
    time.sleep(1.0)  # longer than the maximum lag since the last commit
    assert replica_serves(app)
    assert router(app).replicas[0].lag == 0


def test_a_stopped_standby_never_surfaces_as_an_error(make_app: Build, healthy: Topology):
    app = make_app()
    client = app.test_client()
    seed(client, healthy, "p1")
    until(lambda: replica_serves(app))
    assert ids(client.get("/patients")) == ["p1"]  # a pooled connection to the standby
    healthy.standby.stop("immediate")
    for _ in range(5):
        assert ids(client.get("/patients")) == ["p1"]
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["databases"]["replicas"][0]["state"] == "down"
    assert ready.get_json()["databases"]["primary"]["state"] == "up"


def test_reads_survive_the_primary_and_syncs_get_503(make_app: Build, healthy: Topology):
    app = make_app()
    client = app.test_client()
    seed(client, healthy, "p1")
    until(lambda: replica_serves(app))
    healthy.primary.stop("immediate")
    assert ids(client.get("/patients")) == ["p1"]
    failed = client.post("/patients", json=[patient_record("p2")])
    assert failed.status_code == 503
    assert failed.get_json()["error"]["code"] == "database_unavailable"
    assert failed.headers["Retry-After"]
    until(lambda: not router(app).primary.up)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    databases = ready.get_json()["databases"]
    assert databases["primary"]["state"] == "down"
    assert databases["replicas"][0]["state"] == "up"
    # A position only the lost primary had: the replica's state is the best there is.
    assert ids(client.get("/patients", headers={"X-Data-Position": "999999"})) == ["p1"]


def test_metrics_show_replica_lag_and_reads_per_role(make_app: Build, healthy: Topology):
    app = make_app()
    client = app.test_client()
    until(lambda: replica_serves(app))
    client.get("/patients")
    body = client.get("/metrics").get_data(as_text=True)
    host = f"127.0.0.1:{healthy.standby.port}"
    assert f'database_replica_lag_seconds{{host="{host}",replica="0"}} 0.0' in body
    assert 'database_reads_total{role="replica"}' in body
