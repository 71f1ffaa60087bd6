"""Request hygiene for POST /graphql: body cap, content type, JSON shape, time limit, CORS.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it must
stop reading a body at the cap (not buffer 5 MB first) and cancel the app's
task on timeout, so that the operation stops and its pooled connections go
back. Everything refused here gets a GraphQL-shaped JSON body with a code,
never a plain-text page or a stack.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.errors import BAD_USER_INPUT, QUERY_TOO_COMPLEX

log = logging.getLogger("union_gateway.hygiene")

#: Media types a GraphQL POST body may be sent as (GraphQL over HTTP).
ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/graphql-response+json"})
#: Where the parsed request body is left for the GraphQL view (scope["state"]).
PAYLOAD_STATE_KEY = "graphql_payload"

_STRING_FIELDS = ("query", "operationName", "documentId")
_OBJECT_FIELDS = ("variables", "extensions")


class RequestRefused(Exception):
    """A request answered before GraphQL runs: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extensions = extensions


def error_json(code: str, message: str, **extensions: Any) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]},
                      ensure_ascii=False).encode()


async def send_error(send: Send, status: int, code: str, message: str, *,
                     headers: Sequence[tuple[bytes, bytes]] = (), **extensions: Any) -> None:
    """Answer with a GraphQL-shaped JSON error."""
    body = error_json(code, message, **extensions)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def check_content_type(value: str | None) -> None:
    """415 unless the body is declared as JSON in UTF-8."""
    media_type, _, params = (value or "").partition(";")
    media_type = media_type.strip().lower()
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in params.split(";")
                    if p.strip().lower().startswith("charset=")), "utf-8")
    if media_type not in ACCEPTED_CONTENT_TYPES or charset not in ("utf-8", "utf8"):
        raise RequestRefused(415, BAD_USER_INPUT,
                             "POST /graphql takes a JSON body: send Content-Type: application/json "
                             "(UTF-8). Got " + (f"{value!r}." if value else "none."))


def parse_payload(body: bytes) -> dict[str, Any]:
    """The request object of a GraphQL POST body; RequestRefused (400) saying what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRefused(400, BAD_USER_INPUT, f"The body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestRefused(400, BAD_USER_INPUT,
                             f"The body is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}).") from None
    if isinstance(payload, list):
        raise RequestRefused(400, BAD_USER_INPUT,
                             "Batched requests (a JSON array) are not accepted: send one operation per request.")
    if not isinstance(payload, dict):
        raise RequestRefused(400, BAD_USER_INPUT, 'The body must be a JSON object such as {"query": "{ viewer { keyId } }"}.')
    for name in _STRING_FIELDS:
        if payload.get(name) is not None and not isinstance(payload[name], str):
            raise RequestRefused(400, BAD_USER_INPUT, f"`{name}` must be a string.")
    for name in _OBJECT_FIELDS:
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            raise RequestRefused(400, BAD_USER_INPUT, f"`{name}` must be a JSON object.")
    return payload


class RequestHygiene:
    """Guards `path`: for POST the content type, body cap and JSON shape; for every request a time limit."""

    def __init__(self, app: ASGIApp, *, path: str = "/graphql", max_body_bytes: int = 1_048_576,
                 timeout_seconds: float | None = 15.0) -> None:
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self._run(scope, receive, send)  # GET queries get the time limit too
            return
        try:
            check_content_type(_header(scope, b"content-type"))
            body = await self._read_body(scope, receive)
            payload = parse_payload(body)
        except RequestRefused as refused:
            await send_error(send, refused.status, refused.code, refused.message, **refused.extensions)
            return
        scope.setdefault("state", {})[PAYLOAD_STATE_KEY] = payload
        # Downstream (strawberry) reads any accepted JSON body as application/json.
        scope["headers"] = [(k, b"application/json" if k == b"content-type" else v) for k, v in scope["headers"]]
        await self._run(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestRefused(400, BAD_USER_INPUT, "The client went away before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> RequestRefused:
        return RequestRefused(413, BAD_USER_INPUT,
                              f"The request body is larger than the {self.max_body_bytes}-byte limit.",
                              limit="maxBodyBytes", maximum=self.max_body_bytes)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.timeout_seconds:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            # Cancels the operation's task: its resolvers stop, and asyncpg hands their
            # connections back to the pools as the cancellation unwinds them.
            async with asyncio.timeout(self.timeout_seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            log.warning("operation cancelled after %.1f s", self.timeout_seconds)
            if started:
                raise
            await send_error(send, 504, QUERY_TOO_COMPLEX,
                             f"The operation did not finish within {self.timeout_seconds:g} s and was cancelled; "
                             "ask for less (a smaller `first`, fewer fields) or try again later.",
                             limit="timeoutSeconds", maximum=self.timeout_seconds)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the already-read body once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def cors_middleware(origins: Sequence[str]) -> list[Middleware]:
    """CORSMiddleware for the configured origins; none configured: no cross-origin access at all."""
    if not origins:
        return []
    return [Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept"],
        expose_headers=["Retry-After"],
        max_age=600,
    )]


def hygiene_middleware(settings: object) -> list[Middleware]:
    """The app's middleware: CORS outermost (so refusals carry its headers too), then RequestHygiene."""
    return [
        *cors_middleware(getattr(settings, "cors_origins", None) or []),
        Middleware(RequestHygiene, max_body_bytes=getattr(settings, "max_body_bytes", 1_048_576),
                   timeout_seconds=getattr(settings, "request_timeout_seconds", 15.0)),
    ]
