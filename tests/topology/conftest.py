"""One PostgreSQL primary with a hot standby for every topology test, and apps reading from it.

Building the pair costs seconds, so it is built once per session and shared;
each test starts from a healed topology (both servers up, replay resumed and
caught up) and may stop, pause or lag it as it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.db.replicas import Router
from app.extensions import db
from tests.support import topology as topo
from tests.support.databases import base_config, migrate

# The monitor checks often, so that the tests wait little for it.
CHECK_SECONDS = 0.1


@pytest.fixture(scope="session")
def topology() -> Iterator[topo.Topology]:
    """A primary and a streaming hot standby with the app's schema, torn down at the end."""
    reason = topo.available()
    if reason is not None:
        pytest.skip(reason)
    built = topo.Topology()
    try:
        built.build()
        migrate(built.primary.url)
        built.clone_standby()
        built.wait_for_replay()
        yield built
    finally:
        built.close()


@pytest.fixture
def healthy(topology: topo.Topology) -> topo.Topology:
    """The topology as every test finds it: both up, replay caught up, no data."""
    topology.heal()
    topology.primary.execute("TRUNCATE patients, payments, sync_runs CASCADE")
    topology.wait_for_replay()
    return topology


@pytest.fixture
def make_app(healthy: topo.Topology) -> Iterator[Callable[..., Flask]]:
    """Build apps over the topology (replicas and settings per test); closed after the test."""
    apps: list[Flask] = []

    def build(replicas: bool = True, **config: Any) -> Flask:
        settings = {
            "DATABASE_REPLICA_URLS": (healthy.standby.url,) if replicas else (),
            "REPLICA_CHECK_SECONDS": CHECK_SECONDS,
            "REPLICA_MAX_LAG": 30.0,
            "REPLICA_WAIT": 2.0,
            "RATELIMIT_ENABLED": False,
            **config,
        }
        app = create_app(base_config(healthy.primary.url) | settings)
        apps.append(app)
        return app

    yield build
    for app in apps:
        router: Router | None = app.extensions.get("replicas")
        if router is not None:
            router.stop()
        with app.app_context():
            db.engine.dispose()
