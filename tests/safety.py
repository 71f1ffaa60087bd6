"""Helpers for the limits, trusted-documents, rate-limit and hostile-input tests: real sockets, real keys."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import asyncpg
import httpx

from sources.api_keys import create_key
from tests.running_gateway import in_process_gateway

READ_SCOPES = ["members:read", "claims:read", "contracts:read", "recruitment:read", "stats:read"]
NORMAL_QUERY = "{ viewer { keyId } members(first: 5) { totalCount edges { node { id name } } } }"


async def key_with(pool: asyncpg.Pool | asyncpg.Connection, *, org: str = "c", scopes: list[str] | None = None,
                   **limits: Any) -> str:
    """A new key's secret, with per-key limit columns (migration 004) set as given."""
    key, secret = await create_key(pool, name="safety test", organization_id=org,
                                   scopes=scopes if scopes is not None else READ_SCOPES)
    for column, value in limits.items():
        await pool.execute(f"UPDATE gateway.api_keys SET {column} = $2 WHERE id = $1", key.id, value)
    return secret


@asynccontextmanager
async def served(settings: Any, urls: dict[str, str], **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app on a loopback socket, a client on it, and the app's state."""
    async with in_process_gateway(settings.model_copy(update=overrides), urls) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            yield client, gateway.app.state.gateway


async def post(client: httpx.AsyncClient, key: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    if body is not None:
        kwargs["json"] = body
    return await client.post("/graphql", headers=headers, **kwargs)


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def still_serves(client: httpx.AsyncClient, key: str) -> None:
    """The gateway answers a normal query fully after whatever came before."""
    response = await post(client, key, {"query": NORMAL_QUERY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["viewer"]["keyId"].startswith("key_")
