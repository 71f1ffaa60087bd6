"""Graceful shutdown: on SIGTERM stop accepting, report not ready, close subscriptions with 1001, finish, exit 0.

The order, when the orchestrator sends SIGTERM:
1. /readyz answers 503 "draining", so load balancers stop routing here;
2. every GraphQL WebSocket is closed with 1001 (going away), so clients
   reconnect to another replica at once instead of seeing uvicorn's 1012;
3. uvicorn closes the listening socket and waits for in-flight requests, at
   most `drain_seconds` (then cancels what is left);
4. the app's lifespan ends: pools are closed and spans flushed;
5. the process exits with status 0: a drained stop is a normal stop.
"""
from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("union_gateway.lifecycle")

GOING_AWAY = 1001


class Drain:
    """The process's shutdown state and the WebSockets open in it."""

    def __init__(self) -> None:
        self.draining = False
        self._sockets: dict[int, Send] = {}
        self._closed: set[int] = set()

    @property
    def open_websockets(self) -> int:
        return len(self._sockets)

    async def begin(self) -> None:
        """Stop being ready and close every WebSocket with 1001."""
        self.draining = True
        log.info("draining: closing %d websocket(s)", len(self._sockets))
        for key, send in list(self._sockets.items()):
            self._closed.add(key)
            try:
                await send({"type": "websocket.close", "code": GOING_AWAY, "reason": "server shutting down"})
            except Exception:  # noqa: BLE001 - the client may already be gone
                pass

    def _track(self, key: int, send: Send) -> None:
        self._sockets[key] = send

    def _forget(self, key: int) -> None:
        self._sockets.pop(key, None)
        self._closed.discard(key)

    def _was_closed(self, key: int) -> bool:
        return key in self._closed


class WebSocketTracker:
    """Registers each open WebSocket with the Drain; after the drain closed one, the app's sends are dropped."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        key = id(scope)
        drain = self.drain

        async def guarded_send(message: Message) -> None:
            if drain._was_closed(key):
                return  # we already said goodbye; the app will see the disconnect next
            if message["type"] == "websocket.accept":
                drain._track(key, send)
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        finally:
            drain._forget(key)


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain step before its own shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.drain.begin()
        await super().shutdown(sockets)


def make_server(app: Any, *, drain: Drain, host: str, port: int, drain_seconds: float,
                log_level: str = "info") -> DrainingServer:
    """A uvicorn server for `app` that drains for at most `drain_seconds` on SIGTERM.

    Run it with `await server.serve()`. uvicorn re-raises the signal it caught
    once it has shut down; the caller gives SIGTERM a handler that exits with
    status 0 (gateway.serve), since a drained stop is a normal one.
    """
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level=log_level,
        # Our JSON handler (web.logging) formats uvicorn's records too.
        log_config=None,
        timeout_graceful_shutdown=max(1, round(drain_seconds)),
    )
    return DrainingServer(config, drain)
