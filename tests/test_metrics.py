"""/metrics: Prometheus text that moves with real requests, with labels from small fixed sets."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sources import observability
from tests.gql import Builder, builder, make_key  # noqa: F401 - builder is a fixture
from tests.running_gateway import in_process_gateway

Samples = dict[tuple[str, frozenset], float]

MEMBERS_PAGE = """
query MetricsMembersPage {
  members(first: 10) { edges { node { name organization { name parent { name } } medicalInsurance { insured } } } }
}"""


async def scrape(http: httpx.AsyncClient) -> Samples:
    """Every sample of GET /metrics (no key), parsed by prometheus_client's own parser."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def label_values(samples: Mapping[tuple[str, frozenset], float], label: str) -> set[str]:
    return {v for (_, labels) in samples for k, v in labels if k == label}


async def test_metrics_parse_and_move_with_requests(settings, urls, builder: Builder, simulator) -> None:
    await builder.employer("e1", "g1")
    await builder.employer("e2", "g2")
    wang = await builder.member("m1", "g1", "e1")
    await builder.member("m2", "g2", "e2", phone=None)
    national_id = await builder.conn.fetchval("SELECT national_id FROM members.members WHERE id = $1", wang)
    async with simulator.admin() as admin:
        await admin.add(coverage=[{"national_id": national_id, "insured": True, "scheme": "城镇职工基本医疗保险",
                                   "since": "2010-01-01"}])
    key = await make_key(builder.conn, org="c", scopes=["members:read", "claims:read"])
    auth = {"Authorization": f"Bearer {key}"}
    # A trusted document's operation name becomes a label when the gateway starts.
    await builder.conn.execute(
        "INSERT INTO gateway.trusted_documents (hash, document, origin, name) VALUES ($1, $2, 'manifest', $3)",
        hashlib.sha256(MEMBERS_PAGE.encode()).hexdigest(), MEMBERS_PAGE, "MetricsMembersPage")

    gateway_settings = settings.model_copy(update={"insurance_url": simulator.url, "pending_retry_seconds": 0})
    async with in_process_gateway(gateway_settings, urls) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            before = await scrape(http)
            ok = await http.post("/graphql", json={"query": MEMBERS_PAGE}, headers=auth)
            assert ok.status_code == 200 and "errors" not in ok.json(), ok.text
            sneaky = await http.post("/graphql", json={"query": "query Sneaky12345 { viewer { name } }"}, headers=auth)
            assert sneaky.status_code == 200
            invalid = await http.post("/graphql", json={"query": "{ nope }"}, headers=auth)
            assert invalid.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            unauthenticated = await http.post("/graphql", json={"query": "{ viewer { name } }"})
            assert unauthenticated.status_code == 401
            after = await scrape(http)

    ops = "union_gateway_graphql_operations_total"
    assert moved(before, after, ops, operation="MetricsMembersPage", type="query", outcome="ok") == 1
    # An operation name nobody registered never becomes a label.
    assert moved(before, after, ops, operation="other", type="query", outcome="ok") == 1
    assert "Sneaky12345" not in label_values(after, "operation")
    assert moved(before, after, ops, operation="anonymous", type="query", outcome="error") == 1
    assert moved(before, after, "union_gateway_graphql_errors_total", code="BAD_USER_INPUT") == 1
    assert moved(before, after, "union_gateway_http_responses_total", route="/graphql", status="401") == 1
    assert moved(before, after, "union_gateway_http_responses_total", route="/graphql", status="200") == 3

    # Latency and SQL statements per operation: one observation for the one MetricsMembersPage run, and
    # a statement count that does not grow with the page (two members, a handful of statements).
    seconds = "union_gateway_graphql_operation_duration_seconds"
    assert moved(before, after, seconds + "_count", operation="MetricsMembersPage", type="query", outcome="ok") == 1
    statements = "union_gateway_sql_statements_per_operation"
    assert moved(before, after, statements + "_count", operation="MetricsMembersPage", type="query") == 1
    ran = moved(before, after, statements + "_sum", operation="MetricsMembersPage", type="query")
    assert 1 <= ran <= 8
    assert moved(before, after, "union_gateway_sql_statements_total", source="members") >= ran

    # The parents (d1, d2) of the two members' organizations came in one batch of two keys
    # (the organizations themselves come with the members' page).
    batch = "union_gateway_dataloader_batch_size"
    assert moved(before, after, batch + "_count", loader="OrganizationByIdLoader") == 1
    assert moved(before, after, batch + "_sum", loader="OrganizationByIdLoader") == 2

    # The coverage look-up: one insurance call, answered.
    insurance = "union_gateway_insurance_call_duration_seconds_count"
    assert moved(before, after, insurance, path="/v1/coverage/batch-get", outcome="ok") == 1

    # State read at scrape time.
    assert value(after, "union_gateway_insurance_breaker_state", state="closed") == 1
    assert value(after, "union_gateway_insurance_breaker_state", state="open") == 0
    assert value(after, "union_gateway_db_pool_max_connections", source="members") == settings.pool_max_size
    assert value(after, "union_gateway_db_pool_connections", source="claims") >= 1
    assert ("union_gateway_db_pool_connections_in_use", frozenset({("source", "members")})) in after
    # The process collector: Prometheus's standard process metrics come along.
    assert value(after, "process_cpu_seconds_total") > 0


async def test_readyz_reports_the_insurance_breaker_without_failing_on_it(settings, urls) -> None:
    # An insurance URL nothing listens on: ready all the same, breaker reported.
    down = settings.model_copy(update={"insurance_url": "http://127.0.0.1:9", "pending_retry_seconds": 0})
    async with in_process_gateway(down, urls) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["insurance"] == {"breaker": "closed"}
            assert set(ready.json()["sources"].values()) == {"ok"}
            assert len(ready.headers["x-request-id"]) == 32
            echoed = await http.get("/healthz", headers={"X-Request-ID": "lb-7f3a:2"})
            assert echoed.headers.get_list("x-request-id") == ["lb-7f3a:2"]
            replaced = await http.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
            assert replaced.headers["x-request-id"] != "<script>alert(1)</script>"
            assert len(replaced.headers["x-request-id"]) == 32


def test_operation_labels_stay_a_small_fixed_set() -> None:
    observability.register_operation_names(["LabelledOnce"])
    assert observability.operation_label("LabelledOnce") == "LabelledOnce"
    assert observability.operation_label("NeverRegistered") == "other"
    assert observability.operation_label(None) == "anonymous"
    with pytest.raises(ValueError):
        observability.register_operation_names(['Bad"Name'])


async def test_a_traced_loader_batches_and_counts_without_aiodataloaders_init() -> None:
    # TracedLoader sets up what DataLoader.__init__ would (sources/observability.py says why it skips it).
    from aiodataloader import DataLoader

    class Doubler(observability.TracedLoader, DataLoader):
        calls: list[list[int]] = []

        async def batch_load_fn(self, keys: list[int]) -> list[int]:
            self.calls.append(list(keys))
            return [2 * k for k in keys]

    before = observability.metrics.batch_size.labels("Doubler")._sum.get()
    loader = Doubler()
    assert await loader.load_many([1, 2, 1]) == [2, 4, 2]
    assert await loader.load(2) == 4  # cached: no second batch
    assert Doubler.calls == [[1, 2]]
    assert observability.metrics.batch_size.labels("Doubler")._sum.get() == before + 2
    with pytest.raises(TypeError, match="coroutine"):
        class Blocking(observability.TracedLoader, DataLoader):
            def batch_load_fn(self, keys: list[int]) -> list[int]:
                return keys
