"""Tracing: exporters chosen by OTEL_* variables, redaction, and the span tree of real requests."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from io import StringIO

import httpx
import pytest
import pytest_asyncio
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web import tracing
from web.logging import JsonFormatter
from web.redaction import REDACTED

NATIONAL_ID = "32021119880517002X"
PHONE = "13912345678"
API_KEY = "ugk_abcdefghijkl_" + "s" * 43


# --------------------------------------------------------------------------- exporters from OTEL_*

def test_no_endpoint_means_no_exporter_and_tracing_stays_on() -> None:
    assert tracing.exporters_from_env({}) == []
    assert tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "none",
                                       "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == []


def test_console_and_grpc_are_honoured_and_unknown_names_refused() -> None:
    [(console, batched)] = tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(console, ConsoleSpanExporter) and not batched
    [(grpc, _)] = tracing.exporters_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                                              "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert type(grpc).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    grpc.shutdown()
    with pytest.raises(ValueError, match="zipkin"):
        tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="http/json"):
        tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


async def test_otlp_over_http_reaches_the_collector_named_by_the_endpoint_variable(monkeypatch) -> None:
    received: list[tuple[str, bytes]] = []

    async def collector(request: Request) -> Response:
        received.append((request.url.path, await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/traces", collector, methods=["POST"])]),
                                           host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        [(exporter, batched)] = tracing.exporters_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
        assert batched
        provider = TracerProvider()
        provider.add_span_processor(tracing.RedactingSpanProcessor(SimpleSpanProcessor(exporter)))

        def trace_one() -> None:
            with provider.get_tracer("test").start_as_current_span("claim.decide") as span:
                span.set_attribute("claim.id", "c-1")
                span.set_attribute("note", f"member {NATIONAL_ID}")

        # The exporter posts synchronously: off the loop, which must serve the collector meanwhile.
        await asyncio.to_thread(trace_one)
        provider.shutdown()
    finally:
        server.should_exit = True
        await task
    [(path, body)] = received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [exported] = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert exported.name == "claim.decide"
    attributes = {a.key: a.value.string_value for a in exported.attributes}
    assert attributes["claim.id"] == "c-1"
    assert attributes["note"] == f"member {REDACTED}"
    assert NATIONAL_ID.encode() not in body


# --------------------------------------------------------------------------- redaction

def test_redaction_scrubs_every_string_on_a_span_and_drops_personal_keys() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(tracing.RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"lookup {PHONE}") as span:
        span.set_attribute("member.name", "王丽")
        span.set_attribute("http.request.header.authorization", ("Bearer " + API_KEY,))
        span.set_attribute("db.statement", "SELECT name FROM members.members WHERE national_id = $1")
        span.set_attribute("dataloader.batch_size", 3)
        span.add_event("retry", {"why": f"timeout for {NATIONAL_ID}"})
        try:
            raise ValueError(f"bad key {API_KEY}")
        except ValueError as exc:
            span.record_exception(exc)
    [finished] = exporter.get_finished_spans()
    text = _everything(finished)
    for secret in (NATIONAL_ID, PHONE, API_KEY, "王丽"):
        assert secret not in text
    assert finished.attributes["db.statement"] == "SELECT name FROM members.members WHERE national_id = $1"
    assert finished.attributes["dataloader.batch_size"] == 3
    assert finished.name == f"lookup {REDACTED}"


def _everything(span: ReadableSpan) -> str:
    """Every name and attribute of a span, as one string to search."""
    parts = [span.name, str(span.status.description)]
    parts += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        parts.append(event.name)
        parts += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
    return "\n".join(parts)


def test_log_lines_are_json_with_ids_and_without_secrets() -> None:
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("union_gateway.test_json")
    logger.addHandler(handler)
    logger.propagate = False
    provider = TracerProvider()
    try:
        with provider.get_tracer("test").start_as_current_span("request") as span:
            logger.warning("member %s called from %s with %s", NATIONAL_ID, PHONE, API_KEY)
        try:
            raise RuntimeError(f"Bearer {API_KEY}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert set(first) >= {"time", "level", "logger", "message", "request_id", "trace_id"}
    assert first["level"] == "WARNING" and first["logger"] == "union_gateway.test_json"
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert second["trace_id"] is None and second["request_id"] is None
    for secret in (NATIONAL_ID, PHONE, API_KEY):
        assert secret not in stream.getvalue()
    assert "RuntimeError" in second["exception"]
