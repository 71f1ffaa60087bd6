"""GET /metrics (Prometheus text format, no key), the GraphQL and HTTP measurements, and scrape-time gauges.

Counters and histograms live in sources.observability, where every layer
reports to them. What is a state rather than an event (pools in use, the
insurance breaker, open WebSockets) is read when Prometheus scrapes, from
the app states registered here, so it is never stale and costs nothing
between scrapes.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult

from sources import observability

#: Routes counted by name; anything else is "other", so scanners cannot add series.
ROUTES = frozenset({"/graphql", "/metrics", "/healthz", "/readyz"})
BREAKER_STATES = ("closed", "open", "half_open")


async def metrics_endpoint(request: Request) -> Response:
    """Every metric in the Prometheus text exposition format."""
    return Response(generate_latest(_exposed_registry()), media_type=CONTENT_TYPE_LATEST)


@functools.cache
def _exposed_registry() -> CollectorRegistry:
    """This process's registry; under `serve --workers`, every worker's counters and histograms.

    Workers write their counters to files in PROMETHEUS_MULTIPROC_DIR
    (prometheus_client's multiprocess mode, chosen when it is imported), and
    whichever worker is scraped adds them all up. The scrape-time gauges
    (pools, breaker, WebSockets) are the scraped worker's own.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(collector)
    return registry


# --------------------------------------------------------------------------- GraphQL operations

def describe_operation(execution_context: ExecutionContext) -> tuple[str | None, str | None]:
    """(operation name, "query" | "mutation" | "subscription"), None where the document does not say."""
    try:
        name = execution_context.operation_name
    except Exception:  # noqa: BLE001 - an unparsable document has neither
        return None, None
    try:
        kind = execution_context.operation_type.value
    except Exception:  # noqa: BLE001 - not parsed, or the named operation is not in the document
        kind = None
    return name, kind


def error_codes(execution_context: ExecutionContext) -> list[str]:
    """The extensions.code of every error in the result."""
    result = execution_context.result
    errors = getattr(result, "errors", None) or execution_context.pre_execution_errors or []
    return [str((error.extensions or {}).get("code")) for error in errors]


def outcome(execution_context: ExecutionContext) -> str:
    """ "ok" (no errors), "partial" (data and errors) or "error" (no data)."""
    result = execution_context.result
    if not isinstance(result, (GraphQLExecutionResult, StrawberryExecutionResult)):
        return "error"
    if not result.errors:
        return "ok"
    return "partial" if result.data else "error"


class OperationMetrics(SchemaExtension):
    """Counts each operation, its latency, its SQL statements and its error codes.

    Put it before the ErrorCodes extension in the schema's list: hooks exit in
    reverse order, so it then sees the codes ErrorCodes assigned.
    """

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        counter, token = observability.start_counting_statements()
        try:
            yield
        finally:
            observability.stop_counting_statements(token)
            name, kind = describe_operation(self.execution_context)
            observability.operation_finished(
                name=name, operation_type=kind, outcome=outcome(self.execution_context),
                seconds=time.perf_counter() - started, statements=counter[0],
                error_codes=error_codes(self.execution_context),
            )


# --------------------------------------------------------------------------- HTTP

class HttpMetricsMiddleware:
    """Counts HTTP responses by route and status, including the 401s and 429s GraphQL never sees."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                observability.http_response(route=route, status=message["status"])
            await send(message)

        await self.app(scope, receive, counted_send)


# --------------------------------------------------------------------------- scrape-time gauges

class GatewayCollector(Collector):
    """Pools in use per source, the insurance breaker's state and open WebSockets, read at scrape time."""

    def __init__(self) -> None:
        self._states: list[Any] = []
        self._lock = threading.Lock()

    def add(self, state: Any) -> None:
        """Report this app state (an AppState: .databases, .insurance, .extras["drain"])."""
        with self._lock:
            self._states.append(state)

    def remove(self, state: Any) -> None:
        with self._lock:
            if state in self._states:
                self._states.remove(state)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            states = list(self._states)
        in_use = GaugeMetricFamily("union_gateway_db_pool_connections_in_use",
                                   "Pool connections lent out right now, by source (both its pools).",
                                   labels=["source"])
        size = GaugeMetricFamily("union_gateway_db_pool_connections",
                                 "Connections the pools hold (in use and idle), by source.", labels=["source"])
        limit = GaugeMetricFamily("union_gateway_db_pool_max_connections",
                                  "Most connections the pools may open, by source.", labels=["source"])
        breaker = GaugeMetricFamily("union_gateway_insurance_breaker_state",
                                    "1 for the insurance circuit breaker's current state.", labels=["state"])
        sockets = GaugeMetricFamily("union_gateway_websocket_connections",
                                    "Open GraphQL WebSocket connections (subscriptions).")
        pools: dict[str, list[int]] = {}
        breaker_seen: dict[str, int] = {}
        open_sockets = 0
        for state in states:
            databases = getattr(state, "databases", None)
            for source, pool in (databases.all_pools() if databases is not None else ()):
                counts = pools.setdefault(source, [0, 0, 0])
                counts[0] += pool.get_size() - pool.get_idle_size()
                counts[1] += pool.get_size()
                counts[2] += pool.get_max_size()
            insurance = getattr(state, "insurance", None)
            if insurance is not None:
                current = str(insurance.breaker_state)
                for name in BREAKER_STATES:
                    breaker_seen[name] = breaker_seen.get(name, 0) + (name == current)
            drain = getattr(state, "extras", {}).get("drain")
            if drain is not None:
                open_sockets += drain.open_websockets
        for source, (used, held, most) in sorted(pools.items()):
            in_use.add_metric([source], used)
            size.add_metric([source], held)
            limit.add_metric([source], most)
        for name, value in breaker_seen.items():
            breaker.add_metric([name], value)
        sockets.add_metric([], open_sockets)
        yield from (in_use, size, limit, breaker, sockets)


collector = GatewayCollector()
REGISTRY.register(collector)
