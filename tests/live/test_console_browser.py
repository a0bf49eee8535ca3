"""The console in a real browser: Debian's Chromium, driven by Playwright, on gunicorn + PostgreSQL.

One server and one browser for the module: a tour signs in with a read
token and visits every page at desktop and phone widths, saving screenshots
under tests/artifacts/console/, while every request, response and console
message is recorded; the tests then check what the tour saw. Without
/usr/bin/chromium (or Playwright) the module skips, except under
TEST_REQUIRE_POSTGRES=1 (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.live_server import REQUIRE_POSTGRES, LiveServer, require_postgres

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
READ_TOKEN = "browser-read-token-0123456789abcdef"
WRITE_TOKEN = "browser-write-token-0123456789abcdef"
SLASHED_ID = "ward/7 né"
WIDTHS = {"desktop": 1280, "phone": 390}
RANGE_PAGE = 50

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - requirements-dev.txt pins it
    sync_playwright = None


def _require_browser() -> None:
    """Skip without Chromium or Playwright; fail instead where CI requires every test to run."""
    missing = (
        "Playwright is not installed"
        if sync_playwright is None
        else None
        if CHROMIUM.exists()
        else f"{CHROMIUM} is missing (apt-get install -y chromium)"
    )
    if missing:
        if REQUIRE_POSTGRES:
            pytest.fail(missing)
        pytest.skip(missing)


def _post(server: LiveServer, entity: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    result = server.request(
        "POST",
        f"/{entity}",
        json.dumps(records).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {WRITE_TOKEN}"},
    )
    assert result.status == 200, result.body[:500]
    report: dict[str, Any] = result.json()
    return report


@dataclass
class Seed:
    """What the server holds: the sync reports, in order."""

    reports: list[dict[str, Any]]

    @property
    def rejected_sync(self) -> dict[str, Any]:
        """The payments sync that rejected a record."""
        return self.reports[1]


def _seed(server: LiveServer) -> Seed:
    """Sixty patients and one with a slashed id; payments; then one amount changes."""
    patients = [
        {"externalId": f"p{n:03}", "firstName": "Ada", "lastName": f"Patient{n}"} for n in range(60)
    ]
    patients.append({"externalId": SLASHED_ID, "firstName": "Zoë", "lastName": "Ørsted"})
    payments = [
        {"externalId": f"m{n}", "patientId": f"p{n:03}", "amount": f"{n * 3}.25"} for n in range(60)
    ]
    payments.append({"externalId": "w1", "patientId": SLASHED_ID, "amount": "10.00"})
    reports = [_post(server, "patients", [*patients, {"externalId": "bad", "firstName": ""}])]
    reports.append(
        _post(
            server,
            "payments",
            [*payments, {"externalId": "orphan", "patientId": "nobody", "amount": "1.00"}],
        )
    )
    payments[-1] = {**payments[-1], "amount": "12.50"}
    reports.append(_post(server, "payments", payments))
    return Seed(reports)


@dataclass
class Traffic:
    """Everything the browser exchanged and reported during the tour."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    bodies: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        """Record ``context``'s requests, responses, console errors and page errors."""
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("response", lambda response: self.responses.append(response))

        def on_page(page: Page) -> None:
            page.on(
                "console",
                lambda message: (
                    self.console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: self.console_errors.append(str(error)))

        context.on("page", on_page)

    def read_bodies(self) -> None:
        """Keep the body and headers of each response so far (before its context closes)."""
        for response in self.responses:
            try:
                body = response.body()
            except Exception:  # redirects have no body to read
                body = b""
            self.bodies.append((response.url, body, response.all_headers()))
        self.responses.clear()


@dataclass
class Tour:
    """What the signed-in tour saw: page texts by name, and its traffic."""

    texts: dict[str, str]
    html: dict[str, str]
    range_ids: list[str]
    traffic: Traffic
    # Per page at the phone width: the right edge (px) of each money cell of its tables.
    phone_amount_edges: dict[str, list[float]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """gunicorn on a fresh PostgreSQL database with auth on."""
    _require_browser()
    require_postgres()
    live = LiveServer(
        tmp_path_factory.mktemp("console") / "gunicorn.log",
        {
            "API_READ_TOKENS": READ_TOKEN,
            "API_WRITE_TOKENS": WRITE_TOKEN,
            "SECRET_KEY": "browser-test-secret-0123456789abcdef",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "2",
        },
    )
    try:
        live.start()
        yield live
    finally:
        live.close()


@pytest.fixture(scope="module")
def seed(server: LiveServer) -> Seed:
    """The data the tour looks at."""
    return _seed(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    _require_browser()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _sign_in(page: Page, base_url: str, token: str = READ_TOKEN) -> None:
    # The sign-in page itself (200): a console page would answer 401 with the same form,
    # and Chromium logs every 401 as a console error.
    page.goto(f"{base_url}/console/sign-in")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/console/")


def _shoot(page: Page, name: str, width: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    if name == "overview" and width == "desktop" and os.environ.get("CONSOLE_DOCS_SCREENSHOT"):
        page.screenshot(path=str(ROOT / "docs" / "console-overview.png"))


def _range_ids(page: Page, base_url: str) -> list[str]:
    """Every patient id the range query lists, following "Next page" to the end."""
    page.goto(f"{base_url}/console/analytics")
    page.get_by_label("Minimum total").fill("10")
    page.get_by_label("Order").select_option("-paymentsTotal")
    page.get_by_role("button", name="Show patients").click()
    ids: list[str] = []
    while True:
        page.wait_for_load_state()
        ids += page.locator("#range tbody th").all_inner_texts()
        following = page.locator('a[rel="next"]')
        if following.count() == 0:
            return ids
        following.click()


@pytest.fixture(scope="module")
def tour(server: LiveServer, seed: Seed, browser: Browser) -> Tour:
    """Sign in and visit every page at both widths; look a patient up; page the range query."""
    base = server.base_url
    traffic = Traffic(base)
    pages = {
        "overview": "/console/",
        "syncs": "/console/syncs",
        "sync": f"/console/syncs/{seed.rejected_sync['syncId']}",
        "analytics": "/console/analytics",
    }
    texts: dict[str, str] = {}
    html: dict[str, str] = {}
    range_ids: list[str] = []
    edges: dict[str, list[float]] = {}
    for width, pixels in WIDTHS.items():
        context = browser.new_context(viewport={"width": pixels, "height": 900})
        traffic.watch(context)
        page = context.new_page()
        page.goto(f"{base}/console/sign-in")
        _shoot(page, "sign-in", width)
        _sign_in(page, base)
        for name, path in pages.items():
            page.goto(base + path)
            texts[name], html[name] = page.inner_text("main"), page.content()
            _shoot(page, name, width)
            if width == "phone":
                edges[name] = page.eval_on_selector_all(
                    "table tbody td.num:last-child",
                    "cells => cells.map(cell => cell.getBoundingClientRect().right)",
                )
        # The patient with a slash in its id, found through the lookup form.
        page.goto(f"{base}/console/patient")
        page.get_by_label("Patient externalId").fill(SLASHED_ID)
        page.get_by_role("button", name="Show patient").click()
        page.wait_for_load_state()
        texts["patient"], html["patient"] = page.inner_text("main"), page.content()
        _shoot(page, "patient", width)
        if width == "desktop":
            range_ids = _range_ids(page, base)
        traffic.read_bodies()
        context.close()
    return Tour(texts, html, range_ids, traffic, edges)


def test_overview_shows_the_live_numbers(tour: Tour) -> None:
    text = tour.texts["overview"]
    amount = sum(n * 3 + 0.25 for n in range(60)) + 12.50
    assert re.search(r"Patients\s+61\b", text)
    assert re.search(r"Payments\s+61\b", text)
    assert f"{amount:,.2f}" in text


def test_sync_page_lists_its_rejected_records(tour: Tour) -> None:
    text = tour.texts["sync"]
    assert re.search(r"61\s+orphan\s+patientId\s+No live patient with externalId 'nobody'.", text)


def test_patient_with_a_slash_in_its_id_shows_its_amount_change(tour: Tour) -> None:
    text = tour.texts["patient"]
    assert "Zoë Ørsted" in text
    assert re.search(r"Amount\s+10\.00\s+→\s+12\.50", text)


def test_charts_draw_a_bar_and_a_point_per_sync(tour: Tour, seed: Seed) -> None:
    page = tour.html["syncs"]
    assert page.count('<g class="bar">') == len(seed.reports)
    assert page.count('<g class="point">') == len(seed.reports)


def test_top_payers_amounts_are_on_screen_at_phone_width(tour: Tour) -> None:
    edges = tour.phone_amount_edges["analytics"]
    assert len(edges) >= 10
    assert max(edges) <= WIDTHS["phone"]


def test_histogram_draws_a_bar_per_bucket(tour: Tour) -> None:
    page = tour.html["analytics"]
    histogram = page[page.index('id="histogram-title"') : page.index('id="top-heading"')]
    buckets = re.findall(r'<tr><td class="num">', histogram)
    assert histogram.count('<g class="bar">') == len(buckets) > 1


def test_range_query_pages_through_every_row_exactly_once(tour: Tour, server: LiveServer) -> None:
    expected = [
        patient["externalId"]
        for patient in _api_all(server, "/patients?payment_min=10&sort=-paymentsTotal&limit=7")
    ]
    assert len(tour.range_ids) == len(expected) > RANGE_PAGE
    assert tour.range_ids == expected


def _api_all(server: LiveServer, url: str) -> list[dict[str, Any]]:
    """Every item of an API listing, following Link rel="next"."""
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        result = server.request("GET", next_url, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        items += result.json()
        match = re.fullmatch(r'<([^>]+)>; rel="next"', result.headers.get("Link", ""))
        next_url = match.group(1).removeprefix(server.base_url) if match else None
    return items


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/syncs",
        "/console/syncs/1",
        f"/console/patient?id={quote(SLASHED_ID)}",
        "/console/analytics",
    ],
)
def test_no_request_without_a_token_gets_data(server: LiveServer, seed: Seed, path: str) -> None:
    result = server.request("GET", path)
    assert result.status == 401
    assert 'name="token"' in result.body.decode()
    assert "Ørsted" not in result.body.decode() and "Patient1" not in result.body.decode()


def test_a_browser_that_is_not_signed_in_sees_only_the_sign_in_form(
    server: LiveServer, seed: Seed, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.base_url}/console/analytics")
    text = page.inner_text("body")
    page.get_by_label("API token").fill(READ_TOKEN)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    after_sign_in = page.url
    signed_in_text = page.inner_text("body")
    context.close()
    assert "Patient1" not in text and "Sign in" in text
    # Signing in from there comes back to the page asked for.
    assert after_sign_in == f"{server.base_url}/console/analytics"
    assert "Top payers" in signed_in_text


def test_console_without_the_slash_opens_the_overview_when_signed_in(
    server: LiveServer, seed: Seed, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, server.base_url)
    page.goto(f"{server.base_url}/console")
    landed, text = page.url, page.inner_text("main")
    context.close()
    assert landed == f"{server.base_url}/console/"
    assert re.search(r"Patients\s+61\b", text)


def test_a_copy_of_the_cookie_opens_nothing_after_sign_out(
    server: LiveServer, seed: Seed, browser: Browser
) -> None:
    signed_in = browser.new_context()
    page = signed_in.new_page()
    _sign_in(page, server.base_url)
    copied = signed_in.cookies()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.base_url}/console/sign-in")
    signed_in.close()
    # Another browser with the copy, asking several times: each gunicorn worker refuses it.
    replay = browser.new_context()
    replay.add_cookies(copied)
    page = replay.new_page()
    texts = []
    for _ in range(4):
        page.goto(f"{server.base_url}/console/patient?id={quote(SLASHED_ID)}")
        texts.append(page.inner_text("body"))
    replay.close()
    assert copied
    assert all("Sign in" in text and "Ørsted" not in text for text in texts)


def test_no_console_response_contains_a_token(tour: Tour) -> None:
    for url, body, headers in tour.traffic.bodies:
        for token in (READ_TOKEN, WRITE_TOKEN):
            assert token.encode() not in body, url
            assert token not in json.dumps(headers), url


def test_no_token_is_ever_in_a_url(tour: Tour) -> None:
    assert not [url for url in tour.traffic.requests if READ_TOKEN in url]


def test_pages_log_no_console_errors(tour: Tour) -> None:
    assert tour.traffic.console_errors == []


def test_no_request_leaves_the_origin(tour: Tour) -> None:
    # data: URLs (the empty favicon) are not requests to anywhere.
    assert [
        url
        for url in tour.traffic.requests
        if not url.startswith((tour.traffic.base_url + "/", "data:"))
    ] == []


def test_the_search_box_finds_a_patient_by_name_in_any_case_without_accents(
    server: LiveServer, seed: Seed, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": WIDTHS["phone"], "height": 900})
    page = context.new_page()
    _sign_in(page, server.base_url)
    # The overview's box, typed as a hurried person would: no accents, any case.
    page.get_by_label("Patient name").fill("zoe ORSTED")
    page.get_by_role("button", name="Find").click()
    page.wait_for_load_state()
    found = page.locator("#found tbody th").all_inner_texts()
    _shoot(page, "search", "phone")
    if os.environ.get("CONSOLE_DOCS_SCREENSHOT"):
        page.set_viewport_size({"width": 1280, "height": 560})
        page.screenshot(path=str(ROOT / "docs" / "console-search.png"))
    page.locator("#found tbody a").first.click()
    page.wait_for_load_state()
    heading = page.inner_text("#patient-heading")
    many = page.goto(f"{server.base_url}/console/patients?q=ada")
    assert many is not None
    listed = page.locator("#found tbody th").all_inner_texts()
    has_next = page.locator('a[rel="next"]').count() == 1
    context.close()
    assert found == [SLASHED_ID]
    assert heading == "Zoë Ørsted"
    assert len(listed) == RANGE_PAGE and has_next


def _download(page: Page, link: str) -> bytes:
    """Click the download ``link`` (a CSS selector) and return the file's bytes."""
    with page.expect_download() as started:
        page.locator(link).click()
    download = started.value
    assert READ_TOKEN not in download.url
    path = download.path()
    assert path is not None
    return Path(path).read_bytes()


def test_download_csv_gives_the_apis_csv_for_the_range_and_a_patients_payments(
    server: LiveServer, seed: Seed, browser: Browser
) -> None:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    _sign_in(page, server.base_url)
    page.goto(f"{server.base_url}/console/analytics?payment_min=10&sort=-paymentsTotal")
    range_file = _download(page, "#download-range")
    page.goto(f"{server.base_url}/console/patient?id={quote(SLASHED_ID)}")
    payments_file = _download(page, "#download-payments")
    context.close()
    api = {"Authorization": f"Bearer {READ_TOKEN}", "Accept": "text/csv"}
    expected_range = server.request(
        "GET", "/patients?payment_min=10&sort=-paymentsTotal", headers=api
    ).body
    expected_payments = server.request(
        "GET", f"/payments?external_id={quote(SLASHED_ID)}", headers=api
    ).body
    assert range_file == expected_range
    assert range_file.count(b"\r\n") == 1 + len(
        _api_all(server, "/patients?payment_min=10&sort=-paymentsTotal&limit=100")
    )
    assert payments_file == expected_payments
    assert b",w1," in payments_file and b",12.50," in payments_file
