"""OpenTelemetry: the SDK set up from the standard OTEL_* variables, and the spans the gateway makes.

One trace per request: the ASGI server span (W3C trace context taken from
the caller), under it one GraphQL operation span with parse and validate
children, one span per dataloader batch (sources.observability), one per SQL
statement (asyncpg instrumentation, statement text only, never parameters)
and one per insurance call (httpx instrumentation, which also sends
`traceparent` on to the insurance system). There are deliberately no
per-field spans: any schema extension with an async `resolve` makes
execution about ten times slower (DESIGN.md).

Exporters: OTEL_TRACES_EXPORTER (otlp, console, none; comma-separated).
Unset, it is "otlp" when OTEL_EXPORTER_OTLP_ENDPOINT (or the _TRACES_
variant) is set and "none" otherwise: tracing stays on, so trace ids reach
the logs and the insurance system, but nothing is sent anywhere.
OTEL_EXPORTER_OTLP_PROTOCOL picks http/protobuf (default) or grpc.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBasedTraceIdRatio, Sampler, SamplingResult
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Status, StatusCode
from starlette.middleware import Middleware
from strawberry.extensions import SchemaExtension

from web.metrics import describe_operation, error_codes, outcome
from web.redaction import needs_scrubbing, scrub_text, scrub_value

log = logging.getLogger("union_gateway.tracing")

#: Probes and scrapes would drown the traces that matter.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"

_provider: TracerProvider | None = None


# --------------------------------------------------------------------------- the SDK

def configure_tracing(*, environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Set the process's tracer provider and instrument asyncpg and httpx; idempotent.

    Returns None when OTEL_SDK_DISABLED=true.
    """
    global _provider
    env = os.environ if environ is None else environ
    if _provider is not None:
        return _provider
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        # Someone (opentelemetry-instrument, a test) set one already: use theirs.
        _provider = current
    else:
        # OTEL_TRACES_SAMPLER, when set, is the SDK's to honour (sampler=None reads it).
        sampler = None if env.get("OTEL_TRACES_SAMPLER") else _RecordWhileExporting()
        _provider = TracerProvider(resource=_resource(env), sampler=sampler)
        for exporter, batched in exporters_from_env(env):
            add_span_exporter(exporter, batched=batched, provider=_provider)
        trace.set_tracer_provider(_provider)
    if _exporting:
        _instrument_libraries(_provider)
    return _provider


class _RecordWhileExporting(Sampler):
    """parentbased_always_on while some exporter listens; otherwise trace ids without recorded spans.

    With no exporter (the default), a recorded span goes nowhere, yet the
    asyncpg, httpx and ASGI instrumentations made recording cost about 40 %
    of a member page's CPU. Unsampled spans still carry real trace ids, so
    logs and the insurance system's `traceparent` keep them.
    """

    def __init__(self) -> None:
        self._sampler = ParentBasedTraceIdRatio(1.0)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:  # type: ignore[no-untyped-def]
        if not _exporting:
            return SamplingResult(Decision.DROP)
        return self._sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "RecordWhileExporting"


#: How many exporters are attached to the process's provider.
_exporting = 0


def _resource(env: Mapping[str, str]) -> Resource:
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return Resource.create({} if named else {"service.name": "union-gateway"})


def exporters_from_env(env: Mapping[str, str]) -> list[tuple[SpanExporter, bool]]:
    """(exporter, batched) for each OTEL_TRACES_EXPORTER entry; raises ValueError on an unknown one."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    names = env.get("OTEL_TRACES_EXPORTER") or ("otlp" if endpoint else "none")
    exporters: list[tuple[SpanExporter, bool]] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none"):
            continue
        if name == "console":
            exporters.append((ConsoleSpanExporter(), False))
        elif name == "otlp":
            exporters.append((_otlp_exporter(env), True))
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: {name!r} is not supported; use otlp, console or none")
    return exporters


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    # The exporters read their endpoint, headers, timeout and TLS settings from the same variables.
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    elif protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    else:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; use http/protobuf or grpc")
    return OTLPSpanExporter()


def add_span_exporter(exporter: SpanExporter, *, batched: bool = False,
                      provider: TracerProvider | None = None) -> SpanProcessor:
    """Send finished spans to `exporter`, scrubbed of personal data and secrets on the way."""
    target = provider or _provider
    if target is None:
        raise RuntimeError("configure_tracing() first")
    global _exporting
    inner = BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter)
    processor = RedactingSpanProcessor(inner)
    target.add_span_processor(processor)
    _exporting += 1
    # The SQL and HTTP client instrumentations cost CPU on every statement and
    # call even when no span is recorded; they are switched on with the first
    # exporter. Trace context still reaches 医保 without them (sources/insurance.py).
    _instrument_libraries(target)
    return processor


def shutdown_tracing() -> None:
    """Flush spans still queued (at the end of a graceful shutdown)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    asyncpg_instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # parameters carry national ids
    if not asyncpg_instrumentor.is_instrumented_by_opentelemetry:
        asyncpg_instrumentor.instrument(tracer_provider=provider)
    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument(tracer_provider=provider)


def tracing_middleware() -> Middleware:
    """The ASGI server span per request, continuing the caller's W3C trace context."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # No spans for each ASGI send/receive: two extra spans per response, telling nothing.
    return Middleware(OpenTelemetryMiddleware, excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"],
                      tracer_provider=_provider)


# --------------------------------------------------------------------------- redaction

class RedactingSpanProcessor(SpanProcessor):
    """Hands `inner` a copy of each span with personal data and secrets scrubbed from every string."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span, parent_context=None) -> None:  # type: ignore[no-untyped-def]
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(redacted(span))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted(span: ReadableSpan) -> ReadableSpan:
    """`span` itself when clean, else a scrubbed copy."""
    attributes = span.attributes or {}
    dirty = (
        any(needs_scrubbing(k, v) for k, v in attributes.items())
        or any(needs_scrubbing(k, v) for event in span.events for k, v in (event.attributes or {}).items())
        or needs_scrubbing("", span.name)
        or needs_scrubbing("", span.status.description or "")
    )
    if not dirty:
        return span
    events = [
        Event(scrub_text(event.name), {k: scrub_value(k, v) for k, v in (event.attributes or {}).items()},
              event.timestamp)
        for event in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, scrub_text(status.description))
    return ReadableSpan(
        name=scrub_text(span.name), context=span.context, parent=span.parent, resource=span.resource,
        attributes={k: scrub_value(k, v) for k, v in attributes.items()}, events=events, links=span.links,
        kind=span.kind, status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# --------------------------------------------------------------------------- GraphQL

_tracer = trace.get_tracer("union_gateway.graphql")


class OperationTracing(SchemaExtension):
    """One span per GraphQL operation (name, type, sha256 of the document; never variables), parse and validate under it.

    The operation span is made current for the whole execution, so loader,
    SQL and insurance spans nest under it. Sync hooks and no `resolve`: no
    per-field cost. Put it first in the schema's extensions so that it
    encloses the others and sees the final error codes.
    """

    def on_operation(self) -> Iterator[None]:
        span = _tracer.start_span("graphql.operation")
        query = self.execution_context.query
        if query:
            span.set_attribute("graphql.document.sha256", hashlib.sha256(query.encode()).hexdigest())
        token = otel_context.attach(trace.set_span_in_context(span))
        abandoned = False
        try:
            yield
        except GeneratorExit:
            # Closed from outside, not finished (an operation still open when the
            # process exits): the context current now is not the one we attached to.
            abandoned = True
            raise
        finally:
            name, kind = describe_operation(self.execution_context)
            span.update_name(f"{kind} {name}" if kind and name else kind or "graphql.operation")
            if name:
                span.set_attribute("graphql.operation.name", name)
            if kind:
                span.set_attribute("graphql.operation.type", kind)
            codes = error_codes(self.execution_context)
            if codes:
                span.set_attribute("graphql.error.codes", codes)
            if outcome(self.execution_context) == "error":
                span.set_status(Status(StatusCode.ERROR, codes[0] if codes else "error"))
            if not abandoned:
                otel_context.detach(token)
            span.end()

    def on_parse(self) -> Iterator[None]:
        with _tracer.start_as_current_span("graphql.parse"):
            yield

    def on_validate(self) -> Iterator[None]:
        with _tracer.start_as_current_span("graphql.validate"):
            yield
