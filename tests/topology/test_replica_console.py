"""The console over a replica (SPEC §7, §8): sessions hold on every node, pages say their position.

Sessions are written on the primary at sign-in and sign-out; a page checks
them there, so a replica that has not replayed a sign-in (or a sign-out)
never decides. Two in-process apps over the same topology stand for two
app nodes behind a load balancer.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.support.console_support import AUTH_ON, csrf_of, sign_in
from tests.support.topology import Topology

Build = Callable[..., Flask]
COOKIE = "console_session"


def carry_session(source: FlaskClient, target: FlaskClient) -> None:
    """Give ``target`` the console cookie ``source`` holds (the same browser, another node)."""
    cookie = source.get_cookie(COOKIE)
    assert cookie is not None
    target.set_cookie(COOKIE, cookie.value)


def test_a_sign_in_opens_pages_on_another_node_while_replay_is_paused(
    make_app: Build, healthy: Topology
):
    node_a, node_b = make_app(**AUTH_ON).test_client(), make_app(**AUTH_ON).test_client()
    healthy.pause_replay()
    assert sign_in(node_a).status_code == 303
    carry_session(node_a, node_b)
    page = node_b.get("/console/")
    assert page.status_code == 200
    assert page.headers["X-Data-Position"]


def test_a_sign_out_on_one_node_ends_the_session_on_the_other(make_app: Build, healthy: Topology):
    node_a, node_b = make_app(**AUTH_ON).test_client(), make_app(**AUTH_ON).test_client()
    assert sign_in(node_a).status_code == 303
    carry_session(node_a, node_b)
    assert node_b.get("/console/").status_code == 200
    healthy.pause_replay()
    page = node_a.get("/console/").get_data(as_text=True)
    assert node_a.post("/console/sign-out", data={"csrf": csrf_of(page)}).status_code == 303
    assert node_b.get("/console/").status_code == 401
