"""Stable paging while syncs commit (SPEC §3): a page and the version it reports are one snapshot.

Dashboards page through GET /patients?sort=-paymentsTotal during the daily
sync. Here one thread applies payments syncs back to back, each turning the
totals around, while walkers follow Link from first page to last through a
real gunicorn on PostgreSQL. Every walk must list every patient exactly
once: the listing as it stood when its first page was served.

What this catches: a page read that checked the data version in one
statement and read the page in another (reads run outside a transaction,
one snapshot per statement). A sync committing between the two made that
page a page of the new state while its neighbours were read as of the pin:
patients went missing and others came twice (8 of 37 walks, issue 17).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.support.live_server import LiveServer, LiveServerFactory

pytestmark = pytest.mark.postgresql_only

TOKEN = "live-paging-write-token-0123456789"
PATIENTS = 500
PAGE = 10
WALKERS = 3
# Walks that saw a sync commit between their first and last page: enough
# that a page read across a commit would have shown (it did in most runs of
# 10 before the fix).
CROSSED_WALKS = 15
DEADLINE_SECONDS = 40.0


def payments_snapshot(rng: random.Random) -> bytes:
    """One payment per patient, amounts shuffled: each sync reorders the totals."""
    amounts = [f"{cents // 100}.{cents % 100:02d}" for cents in range(100, 100 + PATIENTS)]
    rng.shuffle(amounts)
    return json.dumps(
        [
            {"externalId": f"m{n}", "patientId": f"p{n}", "amount": amount}
            for n, amount in enumerate(amounts)
        ]
    ).encode()


def walk(server: LiveServer) -> tuple[list[str], int, int]:
    """Every externalId of one walk, and the syncs recorded at its start and at its end."""
    before = syncs_recorded(server)
    seen: list[str] = []
    path: str | None = f"/patients?sort=-paymentsTotal&limit={PAGE}"
    while path is not None:
        result = server.request("GET", path)
        assert result.status == 200, result.body[:300]
        seen += [patient["externalId"] for patient in result.json()]
        link = result.headers.get("Link")
        path = None if link is None else _path(link)
    return seen, before, syncs_recorded(server)


def syncs_recorded(server: LiveServer) -> int:
    return int(server.get_json("/syncs?limit=1")[0]["syncId"])


def _path(link: str) -> str:
    url = urlsplit(link[link.index("<") + 1 : link.index(">")])
    return f"{url.path}?{url.query}"


def test_every_walk_lists_each_patient_once_while_syncs_commit(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(
        env={
            "GUNICORN_WORKERS": "2",
            "API_WRITE_TOKENS": TOKEN,
            "RATELIMIT_ENABLED": "false",
            "SYNC_GUARD_MIN_ROWS": str(10**6),
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    patients = [{"externalId": f"p{n}", "firstName": "F", "lastName": "L"} for n in range(PATIENTS)]
    assert server.post_snapshot("patients", json.dumps(patients).encode()).status == 200
    rng = random.Random(17)
    assert server.post_snapshot("payments", payments_snapshot(rng)).status == 200

    stop = threading.Event()

    def keep_syncing() -> int:
        applied = 0
        while not stop.is_set():
            result = server.post_snapshot("payments", payments_snapshot(rng))
            assert result.status == 200, result.body[:300]
            applied += 1
        return applied

    crossed = exact = 0
    wrong: list[str] = []
    with ThreadPoolExecutor(WALKERS + 1) as pool:
        syncing = pool.submit(keep_syncing)
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while crossed < CROSSED_WALKS and time.monotonic() < deadline:
                for seen, first, last in pool.map(lambda _: walk(server), range(WALKERS)):
                    counts = Counter(seen)
                    if len(seen) == PATIENTS and len(counts) == PATIENTS:
                        exact += 1
                    else:
                        wrong.append(
                            f"{len(seen)} rows, {len(counts)} distinct, "
                            f"{sum(1 for n in counts.values() if n > 1)} twice"
                        )
                    crossed += last != first
        finally:
            stop.set()
        applied = syncing.result()
    assert not wrong, f"{len(wrong)} of {len(wrong) + exact} walks were not exact: {wrong[:5]}"
    assert crossed >= CROSSED_WALKS, f"only {crossed} walks crossed one of {applied} syncs"
