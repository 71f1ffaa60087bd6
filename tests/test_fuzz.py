"""Property-based fuzzing: valid queries generated from the served schema never get a 500 or an INTERNAL error,
and a district key never sees anything outside its district."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from hypothesis_graphql import nodes, strategies as gql

from gateway import Runtime, create_app
from schema import build_schema
from tests.gql import builder  # noqa: F401 - fixture
from tests.safety import READ_SCOPES, key_with

#: Organizations and entities outside district d1 (the builder's tree: c > d1 > g1, c > d2 > g2).
OUTSIDE_ORGS = {"c", "d2", "g2"}
OUTSIDE_PREFIX = "out-"
SCHEMA = build_schema()._schema
ROOT_FIELDS = sorted(name for name in SCHEMA.query_type.fields if not name.startswith("_"))
CUSTOM_SCALARS = {
    "Date": st.dates().map(lambda d: nodes.String(d.isoformat())),
    "DateTime": st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: nodes.String(d.isoformat())),
    "Decimal": st.decimals(min_value=0, max_value=10**6, places=2).map(nodes.String),
}


@pytest_asyncio.fixture
async def district_key(builder, databases) -> str:  # noqa: F811
    """A d1 key with every read scope, and data inside and outside d1 (outside ids start with 'out-')."""
    await builder.employer("e1", "g1")
    await builder.employer("out-e2", "g2")
    await builder.member("m1", "g1", "e1", name="王芳")
    await builder.member("m2", "d1", "e1", name="李强", female=False)
    await builder.member("out-m3", "g2", "out-e2", name="张伟")
    for member in ("m1", "out-m3"):
        await builder.enrollment(member)
        await builder.claim(member, submitted_at=datetime(2026, 3, 1, tzinfo=timezone.utc))
    await builder.contract("k1", "g1", "e1")
    await builder.contract("out-k2", "g2", "out-e2")
    await builder.event("ev1", "d1", datetime(2026, 4, 1, tzinfo=timezone.utc), postings=[("p1", "e1", 5)])
    await builder.event("out-ev2", "d2", datetime(2026, 4, 2, tzinfo=timezone.utc), postings=[("out-p2", "out-e2", 3)])
    # Points enough that 100 generated operations never hit the rate limit; the cost limit stays.
    return await key_with(databases.members, org="d1", scopes=READ_SCOPES + ["pii:read", "medical:read"],
                          rate_points=10**9)


@pytest.fixture
def gateway_url(settings, urls, district_key) -> Iterator[str]:
    """The app served by uvicorn on a loopback port, in a thread with its own event loop."""
    server = uvicorn.Server(uvicorn.Config(create_app(Runtime(settings=settings, urls=urls)), host="127.0.0.1",
                                           port=0, lifespan="on", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="fuzzed-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def outside_ids(value: Any) -> list[str]:
    """Ids in a response that belong outside district d1."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str) and (item in OUTSIDE_ORGS or item.startswith(OUTSIDE_PREFIX)):
                found.append(item)
            found += outside_ids(item)
    elif isinstance(value, list):
        for item in value:
            found += outside_ids(item)
    return found


def test_generated_queries_never_fail_internally_or_leak(gateway_url, district_key):
    with httpx.Client(base_url=gateway_url, timeout=30,
                      headers={"Authorization": f"Bearer {district_key}"}) as client:

        @hypothesis_settings(max_examples=100, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(query=gql.queries(SCHEMA, fields=ROOT_FIELDS, custom_scalars=CUSTOM_SCALARS))
        def check(query: str) -> None:
            response = client.post("/graphql", json={"query": query})
            assert response.status_code < 500, (query, response.text)
            body = response.json()
            error_codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            assert "INTERNAL" not in error_codes, (query, body["errors"])
            assert None not in error_codes, (query, body["errors"])
            assert not outside_ids(body.get("data")), (query, body["data"])

        check()
