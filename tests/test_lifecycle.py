"""Graceful shutdown of `union-gateway serve`: SIGTERM mid-request drains, says 1001 to subscribers, exits 0."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gql import builder, make_key  # noqa: F401 - builder is a fixture
from tests.running_gateway import start_serve

COVERAGE = "query Coverage { member(id: \"m1\") { name medicalInsurance { insured } } }"
SUBSCRIBE = "subscription Watch { claimUpdated { id status } }"


async def test_sigterm_finishes_the_slow_request_closes_subscriptions_with_1001_and_exits_0(
        builder, simulator, database_url, tmp_path) -> None:
    await builder.employer("e1", "g1")
    await builder.member("m1", "g1", "e1")
    national_id = await builder.conn.fetchval("SELECT national_id FROM members.members WHERE id = 'm1'")
    key = await make_key(builder.conn, org="c", scopes=["members:read", "claims:read"])
    async with simulator.admin() as admin:
        await admin.add(coverage=[{"national_id": national_id, "insured": True, "scheme": "城镇职工基本医疗保险",
                                   "since": "2010-01-01"}])
        # Every insurance answer takes 1.5 s: the request below is in flight when SIGTERM comes.
        await admin.set_faults(latency_ms=1500)

    gateway = await start_serve(database_url, tmp_path / "serve.log", env={
        "UNION_GATEWAY_INSURANCE_URL": simulator.url,
        "UNION_GATEWAY_INSURANCE_TIMEOUT_SECONDS": "5",
        "UNION_GATEWAY_PENDING_RETRY_SECONDS": "0",
        "UNION_GATEWAY_DRAIN_SECONDS": "10",
    })
    try:
        ws_url = gateway.url.replace("http://", "ws://") + "/graphql"
        async with connect(ws_url, subprotocols=["graphql-transport-ws"],
                           additional_headers={"Authorization": f"Bearer {key}"}) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))

            async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
                started = time.monotonic()
                slow = asyncio.create_task(http.post(
                    "/graphql", json={"query": COVERAGE}, headers={"Authorization": f"Bearer {key}",
                                                                  "X-Request-ID": "drain-test-1"}))
                await asyncio.sleep(0.5)
                assert not slow.done()
                gateway.terminate()

                # Subscribers hear "going away" at once, so they reconnect elsewhere.
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(5):
                        while True:
                            await socket.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

                response = await slow
                assert time.monotonic() - started >= 1.5
        assert response.status_code == 200
        assert response.json()["data"]["member"] == {"name": "王芳", "medicalInsurance": {"insured": True}}
        assert response.headers["x-request-id"] == "drain-test-1"

        # The listening socket is closed: nothing new gets in while the process winds down.
        with pytest.raises(httpx.TransportError):
            async with httpx.AsyncClient(timeout=2) as fresh:
                await fresh.get(f"{gateway.url}/healthz")

        deadline = time.monotonic() + 15
        while gateway.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert gateway.process.returncode == 0, gateway.log()
    finally:
        gateway.stop()

    # The logs are JSON lines; the slow request's lines carry its request id and a trace id.
    records = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message", "request_id", "trace_id"} <= set(r) for r in records)
    mine = [r for r in records if r["request_id"] == "drain-test-1"]
    assert mine and all(r["trace_id"] for r in mine)
    assert national_id not in gateway.log() and key not in gateway.log()
