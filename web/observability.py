"""The observability parts as the app takes them: middleware, the /metrics route, lifespan resources, readiness.

gateway.create_app calls these, so that the app module stays a list of what
is assembled, not how.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from sources import observability
from web.lifecycle import Drain, WebSocketTracker
from web.logging import RequestIdMiddleware
from web.metrics import HttpMetricsMiddleware, collector, metrics_endpoint
from web.tracing import configure_tracing, shutdown_tracing, tracing_middleware

log = logging.getLogger("union_gateway.observability")


def drain_of(state: Any) -> Drain:
    """The app's Drain (made on first use)."""
    drain = state.extras.get("drain")
    if drain is None:
        drain = state.extras["drain"] = Drain()
    return drain


def observability_middleware(state: Any) -> list[Middleware]:
    """Outermost first: the trace span, then the request id (so its logs carry both), HTTP metrics, WebSockets."""
    middleware = []
    if configure_tracing() is not None:
        middleware.append(tracing_middleware())
    middleware += [
        Middleware(RequestIdMiddleware),
        Middleware(HttpMetricsMiddleware),
        Middleware(WebSocketTracker, drain=drain_of(state)),
    ]
    return middleware


def observability_routes() -> list[BaseRoute]:
    """GET /metrics, no key: Prometheus scrapes it from inside the cluster."""
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]


def with_observability(lifespan: Callable[[Any], AbstractAsyncContextManager[None]],
                       state: Any) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """`lifespan` with observability_resources inside it (after its pools open, before they close)."""

    @asynccontextmanager
    async def observed(app: Any) -> AsyncIterator[None]:
        async with lifespan(app), observability_resources(state):
            yield

    return observed


@asynccontextmanager
async def observability_resources(state: Any) -> AsyncIterator[None]:
    """Within the lifespan, after the pools open: trusted operation names, scrape-time gauges; flush spans at the end."""
    settings = state.runtime.settings
    try:
        await observability.register_trusted_operation_names(
            state.databases.members, extra=getattr(settings, "metric_operation_names", ""))
    except Exception:  # noqa: BLE001 - labels are a nicety; the gateway must start
        log.exception("could not read trusted operation names for metrics")
    collector.add(state)
    try:
        yield
    finally:
        collector.remove(state)
        shutdown_tracing()


def readiness_details(state: Any) -> dict[str, Any]:
    """What /readyz reports besides the databases; none of it makes the gateway unready except draining."""
    details: dict[str, Any] = {}
    insurance = getattr(state, "insurance", None)
    if insurance is not None:
        details["insurance"] = {"breaker": str(insurance.breaker_state)}
    else:
        details["insurance"] = {"breaker": None, "configured": False}
    if drain_of(state).draining:
        details["draining"] = True
    return details
