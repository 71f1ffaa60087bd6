"""The in-browser GraphQL IDE (GraphiQL), served with its assets by the gateway itself.

Union networks are often offline, so nothing here may come from a CDN: the
page names only paths under ASSETS_PATH, and the Content-Security-Policy it
is served with makes the browser refuse anything else.
"""
from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

#: Where the vendored GraphiQL, React and our boot script live on disk.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The URL prefix they are served under.
ASSETS_PATH = "/ide-assets"
#: What the headers editor shows on first load: the key goes where a user sees it.
DEFAULT_HEADERS = {"Authorization": "Bearer <paste your key>"}

# 'unsafe-inline' styles: React and CodeMirror set style attributes; fonts are
# data: URIs inside graphiql.min.css. 'self' in connect-src covers ws(s) on the
# same host, which the subscription fetcher uses.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self' data:",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
])

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>union-gateway · GraphQL IDE</title>
  <link rel="stylesheet" href="{assets}/vendor/graphiql.min.css">
  <link rel="stylesheet" href="{assets}/ide.css">
</head>
<body>
  <div id="graphiql">Loading the GraphQL IDE…</div>
  <script type="application/json" id="ide-config">{config}</script>
  <script src="{assets}/vendor/react.production.min.js"></script>
  <script src="{assets}/vendor/react-dom.production.min.js"></script>
  <script src="{assets}/vendor/graphiql.min.js"></script>
  <script src="{assets}/ide.js"></script>
</body>
</html>
"""


def _json_for_script(value: object) -> str:
    # Inside <script>, "</script" or "<!--" in the data would end or confuse
    # the element; escaping "<" keeps it inert and the JSON still parses.
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def render_page(*, endpoint: str) -> str:
    """The IDE's HTML, configured to POST to `endpoint` (a same-origin path)."""
    config = {
        "endpoint": endpoint,
        "defaultHeaders": json.dumps(DEFAULT_HEADERS, indent=2),
    }
    return _PAGE.format(assets=ASSETS_PATH, config=_json_for_script(config))


async def ide_page(request: Request) -> HTMLResponse:
    """GraphiQL pointed at the path it was requested on (normally /graphql)."""
    html = render_page(endpoint=request.url.path)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            # The page itself is tiny and may change with the gateway; assets are cached.
            "Cache-Control": "no-cache",
            "Vary": "Accept",
        },
    )


def _quality(accept: str, media_type: str) -> float:
    """The q-value `accept` gives `media_type`, using the most specific matching range."""
    major = media_type.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        pattern = fields[0].lower()
        if not pattern:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if pattern == media_type:
            specificity = 2
        elif pattern == f"{major}/*":
            specificity = 1
        elif pattern == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def wants_ide(request: Request) -> bool:
    """True for a browser's GET: Accept prefers text/html to JSON and no query is given."""
    if request.method not in ("GET", "HEAD") or "query" in request.query_params:
        return False
    accept = request.headers.get("accept", "")
    html = _quality(accept, "text/html")
    data = max(
        _quality(accept, "application/json"),
        _quality(accept, "application/graphql-response+json"),
    )
    # A bare */* (curl, fetch) ties and so gets GraphQL, not a page.
    return html > 0 and html > data


def ide_routes() -> list[BaseRoute]:
    """The static assets the IDE page references; mount beside the GraphQL route."""
    return [Mount(ASSETS_PATH, app=StaticFiles(directory=STATIC_DIR), name="ide-assets")]
