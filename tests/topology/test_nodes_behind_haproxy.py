"""Two gunicorn app nodes behind a real HAProxy, reading from the session's standby (SPEC §8).

A console session signed in on one node opens pages on the other, and a
sign-out on one ends it on both; a paged walk alternating between the nodes
visits every row exactly once. The nodes share SECRET_KEY, as `make cluster`'s do.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.console_support import AUTH_ON, READ_TOKEN, WRITE_TOKEN
from tests.support.helpers import patient_record, to_json
from tests.support.topology import Topology, free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
READY_TIMEOUT = 30


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url} exited"
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} never became ready")


@pytest.fixture(scope="module")
def nodes(
    topology: Topology, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    """(HAProxy's URL, node 1's, node 2's): two gunicorn nodes over the topology, one balancer;
    started once for this module's tests."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    topology.heal()
    healthy = topology
    ports = [free_port(), free_port()]
    front = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": healthy.primary.url,
        "DATABASE_REPLICA_URLS": healthy.standby.url,
        "API_READ_TOKENS": ",".join(AUTH_ON["API_READ_TOKENS"]),
        "API_WRITE_TOKENS": ",".join(AUTH_ON["API_WRITE_TOKENS"]),
        "SECRET_KEY": AUTH_ON["SECRET_KEY"],
        "RATELIMIT_ENABLED": "false",
        "GUNICORN_WORKERS": "1",
        "LOG_LEVEL": "WARNING",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            processes.append(
                subprocess.Popen(
                    [str(GUNICORN), "--config", "gunicorn.conf.py", "wsgi:app"],
                    cwd=ROOT,
                    env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        config = tmp_path_factory.mktemp("haproxy") / "haproxy.cfg"
        config.write_text(
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n"
            "  timeout server 60s\n"
            f"frontend api\n  bind 127.0.0.1:{front}\n  default_backend nodes\n"
            "backend nodes\n  balance roundrobin\n"
            + "".join(f"  server n{i} 127.0.0.1:{port}\n" for i, port in enumerate(ports))
        )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            _wait_ready(url, process)
        processes.append(subprocess.Popen(["haproxy", "-db", "-f", str(config)]))
        balancer = f"http://127.0.0.1:{front}"
        _wait_ready(balancer, processes[-1])
        yield balancer, urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_a_paged_walk_alternating_between_nodes_is_exact(nodes: tuple[str, str, str]):
    balancer, *members = nodes
    records = [patient_record(f"p{n:02}") for n in range(9)]
    sync = requests.post(
        f"{balancer}/patients",
        data=to_json(records),
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert sync.status_code == 200
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    # The first page asks for the sync's state; the cursors carry it on.
    first = {**headers, "X-Data-Position": sync.json()["dataPosition"]}
    path: str | None = "/patients?limit=2"
    walked: list[str] = []
    turn = 0
    while path is not None:
        sent = first if turn == 0 else headers
        page = requests.get(f"{members[turn % 2]}{path}", headers=sent, timeout=10)
        assert page.status_code == 200
        walked += [patient["externalId"] for patient in page.json()]
        following = page.links.get("next", {}).get("url")
        path = None if following is None else re.sub(r"^https?://[^/]+", "", following)
        turn += 1
    assert walked == [record["externalId"] for record in records]
    assert turn == 5


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_a_console_session_holds_on_both_nodes_and_its_sign_out_too(
    nodes: tuple[str, str, str],
):
    _, first, second = nodes
    browser = requests.Session()  # cookies go by host, not port: one browser, two nodes
    form = browser.get(f"{first}/console/sign-in", timeout=10)
    signed = browser.post(
        f"{first}/console/sign-in",
        data={"csrf": _csrf(form.text), "token": READ_TOKEN},
        allow_redirects=False,
        timeout=10,
    )
    assert signed.status_code == 303
    copy = dict(browser.cookies)  # a copy of the cookie, taken while signed in
    page = browser.get(f"{second}/console/", timeout=10)
    assert page.status_code == 200
    out = browser.post(f"{second}/console/sign-out", data={"csrf": _csrf(page.text)}, timeout=10)
    assert out.status_code == 200  # the sign-in form, after the redirect
    stale = requests.get(f"{first}/console/", cookies=copy, allow_redirects=False, timeout=10)
    assert stale.status_code == 401
