"""Behind a real router: the served subgraph composes with @apollo/composition and answers through @apollo/gateway.

`union-gateway serve` runs as a child process; a second, independent
subgraph (tests/federation/badges.mjs) adds Member.badgeColor; the supergraph
is composed from both `_service { sdl }` answers; the router forwards the
caller's Authorization header, so each caller sees what its own key allows.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.gql import builder, make_key  # noqa: F401 - builder is a fixture
from tests.running_gateway import free_port, start_serve

FEDERATION = Path(__file__).resolve().parent / "federation"
#: The router and the subgraph talk to loopback only: no Apollo telemetry, no cloud metadata probes.
NODE_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("APOLLO_")},
            "APOLLO_TELEMETRY_DISABLED": "true", "NODE_ENV": "test"}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """tests/federation's pinned packages, installed with `npm ci` unless already matching the lock file."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20 and npm are needed for the federation router test")
    stamp = FEDERATION / "node_modules" / ".lock-sha256"
    want = hashlib.sha256((FEDERATION / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=FEDERATION, check=True, timeout=300)
        stamp.write_text(want + "\n")
    return FEDERATION / "node_modules"


class NodeProcess:
    """A node script started in the background, stopped by its PID."""

    def __init__(self, script: str, *args: str, log: Path) -> None:
        self.log_path = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(["node", script, *args], cwd=FEDERATION, env=NODE_ENV, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, marker: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.process.args} did not start:\n{self.log()}")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def processes() -> Iterator[list]:
    started: list = []
    yield started
    for process in reversed(started):
        process.stop()


async def sdl_of(url: str, headers: dict[str, str] | None = None) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(url, json={"query": "{ _service { sdl } }"}, headers=headers or {})
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["_service"]["sdl"]


@pytest_asyncio.fixture
async def union(builder) -> dict[str, str]:
    await builder.employer("e1", "g1")
    await builder.employer("e2", "g2")
    await builder.member("m1", "g1", "e1", name="王芳")
    await builder.member("m2", "g2", "e2", name="李娜")
    return {
        "city": await make_key(builder.conn, org="c", scopes=["members:read", "introspection"], name="city app"),
        "d1": await make_key(builder.conn, org="d1", scopes=["members:read"], name="梁溪区 app"),
    }


async def test_nested_query_and_entity_look_up_through_a_real_router(
        node_modules, processes, union, database_url, tmp_path) -> None:
    gateway = await start_serve(database_url, tmp_path / "gateway.log",
                                env={"UNION_GATEWAY_PENDING_RETRY_SECONDS": "0"})
    processes.append(gateway)
    badges_port = free_port()
    badges = NodeProcess("badges.mjs", str(badges_port), "m1,m2", log=tmp_path / "badges.log")
    processes.append(badges)
    await badges.ready("ready at")

    subgraphs = [
        {"name": "union", "url": f"{gateway.url}/graphql",
         "sdl": await sdl_of(f"{gateway.url}/graphql", {"Authorization": f"Bearer {union['city']}"})},
        {"name": "badges", "url": f"http://127.0.0.1:{badges_port}/", "sdl": await sdl_of(f"http://127.0.0.1:{badges_port}/")},
    ]
    composed = subprocess.run(["node", "compose.mjs"], cwd=FEDERATION, env=NODE_ENV, input=json.dumps(subgraphs),
                              capture_output=True, text=True, timeout=60)
    assert composed.returncode == 0, composed.stderr
    supergraph = tmp_path / "supergraph.graphql"
    supergraph.write_text(composed.stdout)
    assert "join__Graph" in composed.stdout and "badgeColor" in composed.stdout

    router_port = free_port()
    router = NodeProcess("router.mjs", str(supergraph), str(router_port), log=tmp_path / "router.log")
    processes.append(router)
    await router.ready("ready at")

    async def through_router(query: str, key: str | None) -> dict:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(timeout=15) as http:
            response = await http.post(f"http://127.0.0.1:{router_port}/", json={"query": query}, headers=headers)
        return response.json()

    # Nested: members and their organizations from union-gateway, badgeColor from the other subgraph.
    nested = await through_router(
        "{ members(first: 10) { edges { node { id name organization { name } badgeColor } } } }", union["city"])
    assert "errors" not in nested, nested
    assert [e["node"] for e in nested["data"]["members"]["edges"]] == [
        {"id": "m1", "name": "王芳", "organization": {"name": "梁溪一厂工会"}, "badgeColor": "badge-m1"},
        {"id": "m2", "name": "李娜", "organization": {"name": "滨湖二厂工会"}, "badgeColor": "badge-m2"},
    ]

    # Entity look-up into union-gateway: the other subgraph knows ids only; _entities gives the rest.
    holders = await through_router("{ badgeHolders { id name badgeColor } }", union["city"])
    assert "errors" not in holders, holders
    assert holders["data"]["badgeHolders"] == [{"id": "m1", "name": "王芳", "badgeColor": "badge-m1"},
                                               {"id": "m2", "name": "李娜", "badgeColor": "badge-m2"}]

    # The router forwards each caller's own key: a district's key sees its district only ...
    district = await through_router("{ members(first: 10) { edges { node { id badgeColor } } } }", union["d1"])
    assert [e["node"] for e in district["data"]["members"]["edges"]] == [{"id": "m1", "badgeColor": "badge-m1"}]
    # ... and no key gets nothing from union-gateway.
    anonymous = await through_router("{ members(first: 10) { edges { node { id } } } }", None)
    assert anonymous.get("data") is None and anonymous["errors"]

    assert "MetadataLookupWarning" not in router.log()
