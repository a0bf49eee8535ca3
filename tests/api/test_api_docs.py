"""GET /docs: Swagger UI rendered from /openapi.json with every file served locally (SPEC §4).

The hosts have no internet access, so a page that pulls anything from a CDN
or another site would stay blank; these tests hold the page to same-origin
URLs only. That it really renders was checked once in a headless browser;
a browser is too heavy for the suite.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

PAGE_URL = "http://localhost/docs"
SCRIPT_TYPES = {"text/javascript", "application/javascript"}


class _AssetCollector(HTMLParser):
    """Collects the URLs a browser would fetch: <script src> and <link href>."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"] or "")
        elif tag == "link" and values.get("href"):
            self.stylesheets.append(values["href"] or "")


def _assets(html: str) -> _AssetCollector:
    collector = _AssetCollector()
    collector.feed(html)
    collector.close()
    return collector


def _page(client: FlaskClient, **kwargs: str) -> str:
    response = client.get("/docs", **kwargs)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _spec_url(html: str) -> str:
    # flask-smorest's template: config = { url: "<spec url>", ... }
    match = re.search(r'\burl:\s*"([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_docs_returns_html_page(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "<html" in response.get_data(as_text=True).lower()


def test_docs_page_loads_only_same_origin_assets(client: FlaskClient) -> None:
    assets = _assets(_page(client))
    urls = assets.scripts + assets.stylesheets
    assert assets.scripts
    assert assets.stylesheets
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url


@pytest.mark.parametrize("kind", ["scripts", "stylesheets"])
def test_docs_page_assets_are_served_with_their_content_type(
    client: FlaskClient, kind: str
) -> None:
    urls = getattr(_assets(_page(client)), kind)
    expected = SCRIPT_TYPES if kind == "scripts" else {"text/css"}
    assert urls
    for url in urls:
        path = urlsplit(urljoin(PAGE_URL, url)).path
        # A file response holds the file open until it is closed.
        with client.get(path) as response:
            assert response.status_code == 200, path
            assert response.mimetype in expected, (path, response.mimetype)
            # The real Swagger UI files are 100 kB and more, not an error page.
            assert len(response.data) > 10_000, path


def test_docs_page_reads_the_openapi_document_the_app_serves(client: FlaskClient) -> None:
    spec_url = _spec_url(_page(client))
    assert spec_url == "/openapi.json"
    response = client.get(spec_url)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "/patients" in response.get_json()["paths"]


def test_docs_page_contains_no_absolute_http_url(client: FlaskClient) -> None:
    html = _page(client)
    assert "http://" not in html
    assert "https://" not in html


def test_docs_page_turns_off_the_online_validator(client: FlaskClient) -> None:
    # Swagger UI's default validatorUrl is validator.swagger.io: only an
    # explicit null stops it from sending the spec there.
    match = re.search(r"override_config = (\{.*?\});", _page(client))
    assert match
    assert json.loads(match.group(1))["validatorUrl"] is None


def test_docs_page_and_assets_work_under_a_path_prefix(client: FlaskClient) -> None:
    # Mounted at /pp (SCRIPT_NAME), e.g. behind a reverse proxy.
    html = _page(client, base_url="http://localhost/pp/")
    assert _spec_url(html) == "/pp/openapi.json"
    assets = _assets(html)
    for url in assets.scripts + assets.stylesheets:
        path = urlsplit(urljoin("http://localhost/pp/docs", url)).path
        assert path.startswith("/pp/docs/assets/"), path
        with client.get(path.removeprefix("/pp"), base_url="http://localhost/pp/") as response:
            assert response.status_code == 200, path


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/index.html",  # in the bundle, but Swagger UI's petstore demo
        "/docs/assets/..%2Fswagger-ui.css",
        "/docs/assets/..%2F..%2F__init__.py",
    ],
)
def test_docs_assets_outside_the_page_files_are_not_served(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
