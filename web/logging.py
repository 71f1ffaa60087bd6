"""JSON logs, one object a line, with the request id and trace id on every line; the X-Request-ID middleware.

Every line carries time, level, logger, message, request_id and trace_id
(null outside a request), so a log search by either id finds one request's
whole story, and the trace id leads to its spans. Messages and tracebacks go
through the same scrubber as spans: a national id, phone number or API key
that slipped into a message is replaced by [REDACTED].
"""
from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.redaction import scrub_text

#: The current request's id; set by RequestIdMiddleware for the request's task and its children.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

#: What a caller-chosen id may look like: long enough for a UUID or a trace id, nothing to inject.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
HEADER = b"x-request-id"


def current_request_id() -> str | None:
    """The id of the request being served, or None."""
    return request_id_var.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        span_context = trace.get_current_span().get_span_context()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub_text(record.getMessage()),
            "request_id": request_id_var.get(),
            "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
        }
        if span_context.is_valid:
            entry["span_id"] = format(span_context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = scrub_text(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = scrub_text(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub_text(self.formatStack(record.stack_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(*, level: str | int = "INFO", stream: Any = None) -> None:
    """Send every logger (uvicorn's included) to one JSON handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        # uvicorn's own handlers print plain text; let its records reach ours instead.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID when it is sane, else makes one; echoes it on the response.

    The id is in `request_id_var` for the request's log lines and in
    `scope["state"]["request_id"]` (request.state.request_id) for handlers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope)
        if request_id is None:
            request_id = uuid.uuid4().hex
            # Handlers that read the header themselves (the GraphQL view) then see this same id.
            headers = [(k, v) for k, v in scope.get("headers", []) if k != HEADER]
            scope = {**scope, "headers": [*headers, (HEADER, request_id.encode())]}
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == HEADER for k, _ in headers):
                    headers.append((HEADER, request_id.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            request_id_var.reset(token)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == HEADER:
            text = value.decode("latin-1").strip()
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None
