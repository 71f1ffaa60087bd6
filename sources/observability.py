"""Process-wide metrics (Prometheus) and the dataloader batch span, reported to from every layer.

Everything here is cheap enough to call on every statement and batch. Label
values come from small fixed sets (sources, loader class names, error codes,
claim statuses, allow-listed operation names) so that no client can grow the
number of series: an operation name is a label only once it is registered.
"""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

#: Spans made by our own code (loaders, settlement steps) come from this tracer.
tracer = trace.get_tracer("union_gateway")

#: The error codes of OPERATOR.md; anything else is counted as "OTHER".
ERROR_CODES = frozenset({
    "UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT", "NOT_FOUND", "QUERY_TOO_COMPLEX", "RATE_LIMITED",
    "UPSTREAM_UNAVAILABLE", "INTERNAL",
})
CLAIM_STATUSES = frozenset({"SUBMITTED", "PENDING_REVIEW", "APPROVED", "REJECTED", "PAID"})
INSURANCE_PATHS = frozenset({"/v1/settlements/batch-get", "/v1/settlements/search", "/v1/coverage/batch-get"})
OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})

#: Bounds the label set even if a caller registers names in a loop.
MAX_OPERATION_NAMES = 500
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COUNT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class Metrics:
    """Every metric the gateway exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        p = "union_gateway_"
        self.operations = Counter(p + "graphql_operations", "GraphQL operations executed.",
                                  ["operation", "type", "outcome"], registry=registry)
        self.operation_seconds = Histogram(p + "graphql_operation_duration_seconds",
                                           "Time to execute a GraphQL operation (parse to result).",
                                           ["operation", "type", "outcome"], buckets=_LATENCY_BUCKETS,
                                           registry=registry)
        self.errors = Counter(p + "graphql_errors", "GraphQL errors returned, by extensions.code.", ["code"],
                              registry=registry)
        self.statements_per_operation = Histogram(p + "sql_statements_per_operation",
                                                  "SQL statements one GraphQL operation ran (N+1 shows here).",
                                                  ["operation", "type"], buckets=_COUNT_BUCKETS, registry=registry)
        self.statements = Counter(p + "sql_statements", "SQL statements run, by source.", ["source"],
                                  registry=registry)
        self.batch_size = Histogram(p + "dataloader_batch_size", "Keys per dataloader batch, by loader.",
                                    ["loader"], buckets=_BATCH_BUCKETS, registry=registry)
        self.insurance_seconds = Histogram(p + "insurance_call_duration_seconds",
                                           "Medical-insurance calls (with retries), by path and outcome.",
                                           ["path", "outcome"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.insurance_attempts = Counter(p + "insurance_attempts", "HTTP requests sent to the insurance system.",
                                          ["path"], registry=registry)
        self.claims_decided = Counter(p + "claims_decided", "Claims decided, by resulting status.", ["status"],
                                      registry=registry)
        self.http_responses = Counter(p + "http_responses", "HTTP responses, by route and status code.",
                                      ["route", "status"], registry=registry)


metrics = Metrics(REGISTRY)

_known_operations: set[str] = set()
# Pre-bound children: `labels()` is a dict look-up plus a lock; statements are hot.
_statement_children: dict[str, Any] = {}

#: Statements run by the current GraphQL operation (a one-item list shared with its tasks).
_operation_statements: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "operation_statements", default=None
)


# --------------------------------------------------------------------------- SQL

def statement_ran(source: str) -> None:
    """One SQL statement ran against `source`."""
    child = _statement_children.get(source)
    if child is None:
        child = _statement_children[source] = metrics.statements.labels(source)
    child.inc()
    counter = _operation_statements.get()
    if counter is not None:
        counter[0] += 1


def start_counting_statements() -> tuple[list[int], contextvars.Token]:
    """Count the statements of the current operation (tasks it starts share the count)."""
    counter = [0]
    return counter, _operation_statements.set(counter)


def stop_counting_statements(token: contextvars.Token) -> None:
    """End the count started by `start_counting_statements`."""
    try:
        _operation_statements.reset(token)
    except ValueError:
        # Reset from another context (a subscription's generator closed elsewhere): nothing to undo.
        pass


# --------------------------------------------------------------------------- GraphQL operations

def register_operation_names(names: Iterable[str]) -> None:
    """Let these operation names (trusted clients' documents) appear as metric labels."""
    for name in names:
        name = name.strip()
        if not _OPERATION_NAME.fullmatch(name):
            raise ValueError(f"not a GraphQL operation name: {name!r}")
        if name not in _known_operations and len(_known_operations) >= MAX_OPERATION_NAMES:
            raise ValueError(f"more than {MAX_OPERATION_NAMES} operation names registered")
        _known_operations.add(name)


def operation_label(name: str | None) -> str:
    """The metric label for an operation: its name if registered, else "anonymous" or "other"."""
    if not name:
        return "anonymous"
    return name if name in _known_operations else "other"


def operation_finished(*, name: str | None, operation_type: str | None, outcome: str, seconds: float,
                       statements: int | None, error_codes: Sequence[str] = ()) -> None:
    """Record one executed GraphQL operation; outcome is "ok", "partial" or "error"."""
    label = operation_label(name)
    kind = operation_type if operation_type in OPERATION_TYPES else "unknown"
    metrics.operations.labels(label, kind, outcome).inc()
    if kind != "subscription":
        # A subscription's lifetime is not a latency, nor are its statements one request's.
        metrics.operation_seconds.labels(label, kind, outcome).observe(seconds)
        if statements is not None:
            metrics.statements_per_operation.labels(label, kind).observe(statements)
    for code in error_codes:
        error_returned(code)


def error_returned(code: str | None) -> None:
    """One error with this extensions.code went back to a client."""
    metrics.errors.labels(code if code in ERROR_CODES else "OTHER").inc()


# --------------------------------------------------------------------------- insurance, claims, HTTP

def insurance_call_finished(*, path: str, ok: bool, seconds: float, attempts: int, refused: bool = False) -> None:
    """One logical insurance call ended (all its attempts), or the open breaker refused it."""
    label = path if path in INSURANCE_PATHS else "other"
    outcome = "refused" if refused else ("ok" if ok else "failed")
    metrics.insurance_seconds.labels(label, outcome).observe(seconds)
    if attempts:
        metrics.insurance_attempts.labels(label).inc(attempts)


def insurance_call_hook(record: Any) -> None:
    """Adapter for InsuranceClient(on_call=...): takes its CallRecord."""
    insurance_call_finished(path=record.path, ok=record.ok, seconds=record.seconds, attempts=record.attempts,
                            refused=record.attempts == 0)


def claim_decided(status: str) -> None:
    """A claim was decided (or re-decided) and now has `status`."""
    metrics.claims_decided.labels(status if status in CLAIM_STATUSES else "OTHER").inc()


def http_response(*, route: str, status: int) -> None:
    """One HTTP response went out (route from a fixed set)."""
    metrics.http_responses.labels(route, str(status)).inc()


# --------------------------------------------------------------------------- dataloaders

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def traced_batch(loader: str) -> Callable[[F], F]:
    """Wrap a batch function: one span per batch (loader name, batch size) and the batch-size histogram."""

    def wrap(fn: F) -> F:
        histogram = metrics.batch_size.labels(loader)
        span_name = f"dataloader {loader}"

        @functools.wraps(fn)
        async def batch(*args: Any) -> Any:
            keys = args[-1]  # batch_load_fn(keys) or a method's (self, keys)
            size = len(keys)
            histogram.observe(size)
            current = trace.get_current_span()
            if not current.is_recording() and current.get_span_context().is_valid:
                # The request's trace is not recorded (no exporter, or sampled out): neither
                # would this span be, and making one costs a few per cent of a list page.
                return await fn(*args)
            with tracer.start_as_current_span(
                span_name, attributes={"dataloader.name": loader, "dataloader.batch_size": size}
            ):
                return await fn(*args)

        return batch  # type: ignore[return-value]

    return wrap


class TracedLoader:
    """Mixin for aiodataloader DataLoader subclasses: their `batch_load_fn` is traced under the class name.

        class MemberByIdLoader(TracedLoader, DataLoader[str, Member | None]): ...
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("batch_load_fn")
        if fn is not None and not getattr(fn, "_traced", False):
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"{cls.__name__}.batch_load_fn must be a coroutine function")
            wrapped = traced_batch(cls.__name__)(fn)
            wrapped._traced = True  # type: ignore[attr-defined]
            cls.batch_load_fn = wrapped  # type: ignore[attr-defined]

    def __init__(self) -> None:
        # What aiodataloader's DataLoader.__init__ sets up for a loader with no
        # options, without its per-instance checks: inspect's look at
        # batch_load_fn (checked once per class above) and the option
        # handling cost ~4 µs, and a request makes ~8 loaders (~1 % of a
        # staff list's CPU). Options are class attributes (batch, cache).
        self.loop = asyncio.get_event_loop()
        self._cache: dict[Any, Any] = {}
        self._queue: list[Any] = []

    @staticmethod
    def get_cache_key(key: Any) -> Any:
        return key



# --------------------------------------------------------------------------- start-up

async def register_trusted_operation_names(pool: Any, *, extra: str = "") -> int:
    """Register the operation names of the operator's trusted documents, plus `extra` (comma-separated).

    Returns how many names are registered now. A missing table (an older
    database) or a malformed name is skipped: metrics must not stop a start.
    """
    import asyncpg

    names = [n for n in re.split(r"[,\s]+", extra) if n]
    try:
        rows = await pool.fetch(
            "SELECT DISTINCT name FROM gateway.trusted_documents WHERE origin = 'manifest' AND name IS NOT NULL"
            " LIMIT $1", MAX_OPERATION_NAMES)
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        rows = []
    for row in rows:
        names.extend(n for n in re.split(r"[,\s]+", row["name"]) if n)
    for name in names:
        try:
            register_operation_names([name])
        except ValueError:
            continue
    return len(_known_operations)
