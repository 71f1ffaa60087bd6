"""The offline GraphQL IDE: a browser's GET /graphql gets GraphiQL, with every asset served locally."""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from web.ide import ide_page, ide_routes, wants_ide

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


async def graphql(request: Request) -> Response:
    # Stands in for the GraphQL route owned elsewhere: it only has to show
    # which branch content negotiation picked.
    if wants_ide(request):
        return await ide_page(request)
    return JSONResponse({"data": None, "negotiated": "graphql"})


def make_app() -> Starlette:
    return Starlette(routes=[Route("/graphql", graphql, methods=["GET", "POST"]), *ide_routes()])


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []  # (tag, url)
        self.config: str | None = None
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.refs.append((tag, values[name] or ""))
        self._in_config = tag == "script" and values.get("id") == "ide-config"

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config = (self.config or "") + data

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False


def page(client: TestClient) -> tuple[str, _Refs]:
    response = client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Refs()
    parser.feed(response.text)
    return response.text, parser


def test_a_browser_gets_the_ide_and_an_api_client_gets_graphql(client: TestClient) -> None:
    html, _ = page(client)
    assert "graphiql" in html.lower()
    for accept in ("application/json", "*/*", "application/graphql-response+json", ""):
        response = client.get("/graphql", headers={"Accept": accept})
        assert response.json()["negotiated"] == "graphql", accept
    # A GET carrying a query is GraphQL over HTTP even from a browser.
    assert client.get("/graphql?query={__typename}", headers={"Accept": BROWSER_ACCEPT}).json()["negotiated"] == "graphql"
    assert client.post("/graphql", headers={"Accept": BROWSER_ACCEPT}, json={"query": "{__typename}"}).json()["negotiated"] == "graphql"
    # text/html listed but ranked below JSON: the client wants data.
    ranked = "application/json, text/html;q=0.5"
    assert client.get("/graphql", headers={"Accept": ranked}).json()["negotiated"] == "graphql"


def test_the_page_names_no_remote_url(client: TestClient) -> None:
    html, parser = page(client)
    assert not re.search(r"https?://", html), "the IDE must work offline: no CDN or remote URL"
    assert not re.search(r"(?:src|href)\s*=\s*[\"']//", html), "no protocol-relative URL either"
    assert parser.refs, "the page references its assets"
    for _, url in parser.refs:
        assert url.startswith("/ide-assets/"), url


def test_every_asset_the_page_references_is_served_with_its_type(client: TestClient) -> None:
    _, parser = page(client)
    expected = {"script": ("text/javascript", "application/javascript"), "link": ("text/css",)}
    served = set()
    for tag, url in parser.refs:
        response = client.get(url)
        assert response.status_code == 200, url
        content_type = response.headers["content-type"].split(";")[0]
        assert content_type in expected[tag], (url, content_type)
        assert len(response.content) > 0
        served.add(url.rsplit("/", 1)[-1])
    assert {"graphiql.min.js", "graphiql.min.css", "react.production.min.js",
            "react-dom.production.min.js", "ide.js"} <= served


def test_the_assets_themselves_fetch_nothing_remote(client: TestClient) -> None:
    # The stylesheet's fonts are data: URIs; a url(http...) would need the internet.
    css = client.get("/ide-assets/vendor/graphiql.min.css").text
    assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", css)
    boot = client.get("/ide-assets/ide.js").text
    assert not re.search(r"https?://", boot)


def test_the_headers_editor_starts_with_an_authorization_header(client: TestClient) -> None:
    _, parser = page(client)
    assert parser.config is not None
    config = json.loads(parser.config)
    assert config["endpoint"] == "/graphql"
    headers = json.loads(config["defaultHeaders"])
    assert headers == {"Authorization": "Bearer <paste your key>"}
    boot = client.get("/ide-assets/ide.js").text
    assert "defaultHeaders: config.defaultHeaders" in boot
    assert "isHeadersEditorEnabled: true" in boot


def test_the_browser_is_told_to_load_nothing_from_elsewhere(client: TestClient) -> None:
    response = client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "http" not in policy


def test_a_missing_asset_is_404(client: TestClient) -> None:
    assert client.get("/ide-assets/vendor/nope.js").status_code == 404
    assert client.get("/ide-assets/../ide.py").status_code == 404


# --------------------------------------------------------------------------- a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`)")
def test_graphiql_renders_in_a_headless_browser(tmp_path: Path) -> None:
    with serving(make_app()) as base:
        # --dump-dom prints the DOM after scripts ran: GraphiQL's editors exist
        # only if React, GraphiQL and our boot script all loaded and ran.
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}",
             "--dump-dom", f"{base}/graphql"],
            capture_output=True, text=True, timeout=90,
        )
        dom = result.stdout
        assert 'class="graphiql-container"' in dom, result.stderr[-2000:]
        assert "Loading the GraphQL IDE" not in dom
        # The headers editor holds the prefilled Authorization header.
        assert "Authorization" in dom
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile2'}",
             "--window-size=1280,800", f"--screenshot={tmp_path / 'ide.png'}", f"{base}/graphql"],
            capture_output=True, text=True, timeout=90,
        )
        assert (tmp_path / "ide.png").stat().st_size > 10_000
