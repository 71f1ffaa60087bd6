"""Tracing: exporters chosen by OTEL_* variables, redaction, and the span tree of real requests."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import date
from io import StringIO

import httpx
import pytest
import pytest_asyncio
import uvicorn
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.gql import builder, make_key  # noqa: F401 - builder is a fixture
from tests.running_gateway import in_process_gateway
from web import tracing
from web.logging import JsonFormatter
from sources.sql import inline_value
from web import redaction
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


def test_values_inlined_into_sql_text_are_scrubbed_from_statements_on_spans() -> None:
    # BEGIN with a member's lock is sent as text (sources/claims_store.member_transaction).
    statement = f"BEGIN; SELECT pg_advisory_xact_lock(hashtextextended({inline_value('M-0001')}::text, 0))"
    scrubbed = redaction.scrub_value("db.statement", statement)
    assert scrubbed == f"BEGIN; SELECT pg_advisory_xact_lock(hashtextextended({REDACTED}::text, 0))"
    assert redaction.scrub_value("db.statement", inline_value("two\nlines")) == REDACTED


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


# --------------------------------------------------------------------------- span trees of real requests

@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes, scrubbed as an exporter would get it."""
    tracing.configure_tracing()
    exporter = InMemorySpanExporter()
    tracing.add_span_exporter(exporter)
    yield exporter
    exporter.shutdown()  # later tests' spans are not kept


REMOTE_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_SPAN_ID = 0x00F067AA0BA902B7
CALLER = SpanContext(REMOTE_TRACE_ID, REMOTE_SPAN_ID, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


async def _trace_of(spans: InMemorySpanExporter, server_span_name: str) -> list[ReadableSpan]:
    """The finished spans of the request traced under REMOTE_TRACE_ID (the server span ends last)."""
    for _ in range(200):
        found = [s for s in spans.get_finished_spans() if s.context.trace_id == REMOTE_TRACE_ID]
        if any(s.name == server_span_name for s in found):
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {server_span_name} span; got {[s.name for s in spans.get_finished_spans()]}")


def _parent(span: ReadableSpan, trace: list[ReadableSpan]) -> ReadableSpan | None:
    by_id = {s.context.span_id: s for s in trace}
    return by_id.get(span.parent.span_id) if span.parent else None


def _ancestors(span: ReadableSpan, trace: list[ReadableSpan]) -> list[str]:
    names = []
    while (span := _parent(span, trace)) is not None:
        names.append(span.name)
    return names


def _assert_nothing_secret(trace: list[ReadableSpan], secrets: list[str]) -> None:
    for span in trace:
        text = _everything(span)
        for secret in secrets:
            assert secret not in text, f"{secret!r} on span {span.name}"


@pytest_asyncio.fixture
async def member_data(builder, simulator):
    await builder.employer("e1", "g1")
    await builder.employer("e2", "g2")
    await builder.member("m1", "g1", "e1", name="王芳", phone="13912345678")
    await builder.member("m2", "g2", "e2", name="李娜", phone="13812345678")
    rows = await builder.conn.fetch("SELECT national_id, phone, name FROM members.members ORDER BY id")
    async with simulator.admin() as admin:
        await admin.add(coverage=[{"national_id": r["national_id"], "insured": True, "scheme": "城镇职工基本医疗保险",
                                   "since": "2010-01-01"} for r in rows])
    return [value for r in rows for value in (r["national_id"], r["phone"], r["name"])]


QUERY = """
query MembersWithCoverage {
  members(first: 10) {
    edges { node { name nationalId phone organization { name parent { name } } medicalInsurance { insured scheme } } }
  }
}"""


async def test_span_tree_of_one_query(spans, settings, urls, builder, simulator, member_data) -> None:
    key = await make_key(builder.conn, org="c", scopes=["members:read", "pii:read", "claims:read"])
    gateway_settings = settings.model_copy(update={"insurance_url": simulator.url, "pending_retry_seconds": 0})
    async with in_process_gateway(gateway_settings, urls) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            # A caller inside its own trace: (this process's httpx is instrumented too, so the
            # traceparent it sends is its client span's, under the caller's span).
            with trace.use_span(NonRecordingSpan(CALLER)):
                response = await http.post("/graphql", headers={"Authorization": f"Bearer {key}"},
                                           json={"query": QUERY, "variables": {"unused": member_data[0]}})
            body = response.json()
            assert "errors" not in body, body
            # The response really carries the PII the spans must not.
            assert {e["node"]["nationalId"] for e in body["data"]["members"]["edges"]} == {
                member_data[0], member_data[3]}
            spans_of_request = await _trace_of(spans, "POST /graphql")

    [server] = [s for s in spans_of_request if s.name == "POST /graphql"]
    [client] = [s for s in spans_of_request if s.parent is not None and s.parent.span_id == REMOTE_SPAN_ID]
    # The caller's trace goes on: the server span continues the traceparent its client sent.
    assert server.parent.is_remote and server.parent.span_id == client.context.span_id

    [operation] = [s for s in spans_of_request if s.name == "query MembersWithCoverage"]
    assert _parent(operation, spans_of_request) is server
    assert operation.attributes["graphql.operation.name"] == "MembersWithCoverage"
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.document.sha256"] == hashlib.sha256(QUERY.encode()).hexdigest()
    assert not any(key.startswith("graphql.variables") or key == "graphql.document" for key in operation.attributes)
    for phase in ("graphql.parse", "graphql.validate"):
        [span] = [s for s in spans_of_request if s.name == phase]
        assert _parent(span, spans_of_request) is operation

    batches = {s.attributes["dataloader.name"]: s for s in spans_of_request if s.name.startswith("dataloader ")}
    assert {"OrganizationByIdLoader", "CoverageByNationalIdLoader"} <= set(batches)
    assert batches["OrganizationByIdLoader"].attributes["dataloader.batch_size"] == 2
    assert batches["CoverageByNationalIdLoader"].attributes["dataloader.batch_size"] == 2
    for batch in batches.values():
        assert "query MembersWithCoverage" in _ancestors(batch, spans_of_request)

    statements = [s for s in spans_of_request if s.attributes.get("db.system") == "postgresql"]
    assert statements, "every SQL statement is a span"
    for statement in statements:
        # The API key look-up runs before GraphQL does; everything else runs inside the operation.
        assert "POST /graphql" in _ancestors(statement, spans_of_request)
        assert "db.statement.parameters" not in statement.attributes
    # One statement per batch (asyncpg's RESET ALL on giving the connection back is a span of its own).
    organization_sql = [s.attributes["db.statement"] for s in statements
                        if _parent(s, spans_of_request) is batches["OrganizationByIdLoader"]
                        and "RESET ALL" not in s.attributes["db.statement"]]
    assert len(organization_sql) == 1 and "FROM members.organizations" in organization_sql[0]

    [insurance_call] = [s for s in spans_of_request if _parent(s, spans_of_request) is batches["CoverageByNationalIdLoader"]]
    assert insurance_call.kind == SpanKind.CLIENT and "/v1/coverage/batch-get" in str(insurance_call.attributes)

    _assert_nothing_secret(spans_of_request, [*member_data, key])


async def test_trace_context_reaches_the_insurance_system(spans) -> None:
    from sources.insurance import InsuranceClient

    seen: list[str] = []

    async def coverage(request: Request) -> Response:
        seen.append(request.headers.get("traceparent", ""))
        return Response(b'{"coverage": []}', media_type="application/json")

    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/coverage/batch-get", coverage,
                                                                   methods=["POST"])]),
                                           host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = InsuranceClient(base_url=f"http://127.0.0.1:{port}")
    try:
        with trace.get_tracer("test").start_as_current_span("caller") as caller:
            await client.get_coverage([NATIONAL_ID], date(2026, 3, 1))
    finally:
        await client.aclose()
        server.should_exit = True
        await task
    [traceparent] = seen
    assert traceparent.split("-")[1] == format(caller.get_span_context().trace_id, "032x")


SUBMIT = """
mutation SubmitStay($input: HospitalizationClaimInput!) {
  submitHospitalizationClaim(input: $input) { id status totalPayout lines { planCode benefit amount } }
}"""


async def test_span_tree_of_one_claim_submission(spans, settings, urls, builder, simulator) -> None:
    from simulator.admin import settlement_json

    await builder.employer("e1", "g1")
    await builder.member("m1", "g1", "e1", name="王芳", phone="13912345678")
    await builder.enrollment("m1", "HCA", start=date(2026, 1, 1))
    national_id = await builder.conn.fetchval("SELECT national_id FROM members.members WHERE id = 'm1'")
    async with simulator.admin() as admin:
        await admin.add(
            settlements=[settlement_json("S-2026-1", national_id, admission_date="2026-03-02",
                                         discharge_date="2026-03-06", self_pay_in_policy="3000.00")],
            coverage=[{"national_id": national_id, "insured": True, "scheme": "城镇职工基本医疗保险",
                       "since": "2010-01-01"}])
    key = await make_key(builder.conn, org="c", scopes=["claims:write", "claims:read", "members:read"])
    gateway_settings = settings.model_copy(update={"insurance_url": simulator.url, "pending_retry_seconds": 0})
    async with in_process_gateway(gateway_settings, urls) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            with trace.use_span(NonRecordingSpan(CALLER)):
                response = await http.post("/graphql", headers={"Authorization": f"Bearer {key}"}, json={
                    "query": SUBMIT, "variables": {"input": {"memberId": "m1", "settlementId": "S-2026-1"}}})
            body = response.json()
            assert "errors" not in body, body
            claim = body["data"]["submitHospitalizationClaim"]
            assert claim["status"] == "APPROVED"
            spans_of_request = await _trace_of(spans, "POST /graphql")

    [operation] = [s for s in spans_of_request if s.name == "mutation SubmitStay"]
    assert operation.attributes["graphql.operation.type"] == "mutation"
    [settlement] = [s for s in spans_of_request if s.name == "settlement.submit_hospitalization"]
    assert _parent(settlement, spans_of_request) is operation
    assert settlement.attributes["claim.id"] == int(claim["id"])
    assert settlement.attributes["claim.status"] == "APPROVED"
    assert settlement.attributes["claim.total_payout"] == claim["totalPayout"]
    assert list(settlement.attributes["claim.plans"]) == ["HCA"]
    under_settlement = [s for s in spans_of_request if "settlement.submit_hospitalization" in _ancestors(s, spans_of_request)]
    statements = [s.attributes["db.statement"] for s in under_settlement if "db.statement" in s.attributes]
    assert any("INSERT INTO claims.claims" in text for text in statements)
    insurance_calls = [s for s in under_settlement if s.kind == SpanKind.CLIENT and "db.statement" not in s.attributes]
    assert len(insurance_calls) == 1 and "/v1/settlements/batch-get" in str(insurance_calls[0].attributes)
    _assert_nothing_secret(spans_of_request, [national_id, "13912345678", "王芳", key])


def test_without_an_exporter_spans_keep_trace_ids_but_are_not_recorded() -> None:
    """Recording spans nobody exports only costs CPU; the ids must still reach logs and 医保."""
    from opentelemetry.sdk.trace import TracerProvider

    from web import tracing

    tracer = TracerProvider(sampler=tracing._RecordWhileExporting()).get_tracer("test")
    saved = tracing._exporting
    try:
        tracing._exporting = 0
        with tracer.start_as_current_span("unexported") as span:
            assert not span.is_recording()
            assert span.get_span_context().trace_id != 0
        tracing._exporting = 1
        with tracer.start_as_current_span("exported") as span:
            assert span.is_recording()
    finally:
        tracing._exporting = saved


async def test_insurance_calls_carry_the_trace_context_without_an_exporter() -> None:
    """Without an exporter nothing is recorded, yet 医保 still sees which trace a call belongs to."""
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

    from sources.insurance import InsuranceClient
    from web import tracing

    seen: list[str] = []

    def insurance_system(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent", ""))
        return httpx.Response(200, json={"records": [], "missing": ["S-1"]})

    tracer = TracerProvider(sampler=tracing._RecordWhileExporting()).get_tracer("test")
    client = InsuranceClient(base_url="http://insurance.test", transport=httpx.MockTransport(insurance_system))
    saved = tracing._exporting
    try:
        tracing._exporting = 0
        with tracer.start_as_current_span("request") as span:
            assert not span.is_recording()
            assert await client.get_settlements(["S-1"]) == {}
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        tracing._exporting = saved
        await client.aclose()
    assert len(seen) == 1 and seen[0].split("-")[1] == trace_id
