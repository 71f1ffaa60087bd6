"""API keys: anything but a live key is HTTP 401 UNAUTHENTICATED; the key never reaches the logs."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import pytest

from sources.api_keys import revoke_key
from tests.gql import ALL_READ, builder, gateway, make_key  # noqa: F401 - fixtures

QUERY = "{ viewer { keyId name scopes organization { id } } }"


def assert_unauthenticated(response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]


@pytest.fixture
def short_cache(settings):
    return settings.model_copy(update={"api_key_cache_seconds": 0.3})


async def test_a_live_key_in_either_header_identifies_the_viewer(builder, short_cache, urls) -> None:
    async with gateway(short_cache, urls) as gql:
        key = await make_key(gql.state.databases.members, org="d1", scopes=["members:read"], name="梁溪区 app")
        by_bearer = await gql.post(QUERY, key=key)
        by_header = await gql.post(QUERY, key=None, headers={"X-API-Key": key})
    assert by_bearer.status_code == by_header.status_code == 200
    assert by_bearer.json()["data"] == by_header.json()["data"]
    viewer = by_bearer.json()["data"]["viewer"]
    assert viewer["name"] == "梁溪区 app" and viewer["scopes"] == ["members:read"]
    assert viewer["organization"] == {"id": "d1"} and viewer["keyId"].startswith("key_")


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Bearer ugk_000000000000_" + "A" * 43},  # well-formed, unknown
    {"X-API-Key": "ugk_short_x"},
])
async def test_missing_malformed_and_unknown_keys_are_401(builder, short_cache, urls, headers) -> None:
    async with gateway(short_cache, urls) as gql:
        assert_unauthenticated(await gql.post(QUERY, key=None, headers=headers))
        # A guessed secret for a real prefix fails too.
        key = await make_key(gql.state.databases.members, org="c", scopes=ALL_READ)
        assert_unauthenticated(await gql.post(QUERY, key=key[:-4] + "AAAA"))


async def test_a_revoked_key_is_refused_once_the_cache_expires(builder, short_cache, urls) -> None:
    async with gateway(short_cache, urls) as gql:
        pool = gql.state.databases.members
        key = await make_key(pool, org="c", scopes=ALL_READ)
        assert (await gql.post(QUERY, key=key)).status_code == 200
        key_id = (await gql.post(QUERY, key=key)).json()["data"]["viewer"]["keyId"]
        assert await revoke_key(pool, key_id)
        await asyncio.sleep(short_cache.api_key_cache_seconds + 0.1)
        assert_unauthenticated(await gql.post(QUERY, key=key))


async def test_an_expired_key_is_refused(builder, short_cache, urls) -> None:
    async with gateway(short_cache, urls) as gql:
        pool = gql.state.databases.members
        expired = await make_key(pool, org="c", scopes=ALL_READ,
                                 expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        assert_unauthenticated(await gql.post(QUERY, key=expired))
        later = await make_key(pool, org="c", scopes=ALL_READ, expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
        assert (await gql.post(QUERY, key=later)).status_code == 200


async def test_probes_need_no_key(builder, short_cache, urls) -> None:
    async with gateway(short_cache, urls) as gql:
        assert (await gql.http.get("/healthz")).status_code == 200
        assert (await gql.http.get("/readyz")).status_code == 200
        # The IDE page itself needs no key; GraphQL over GET does.
        page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert_unauthenticated(await gql.http.get("/graphql", params={"query": QUERY},
                                                  headers={"Accept": "application/json"}))


async def test_the_key_never_appears_in_logs(builder, short_cache, urls, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with gateway(short_cache, urls) as gql:
        pool = gql.state.databases.members
        key = await make_key(pool, org="c", scopes=ALL_READ)
        revoked = await make_key(pool, org="c", scopes=ALL_READ)
        await gql.post(QUERY, key=key)
        await gql.post("{ member(id: 1) { id } nosuchfield }", key=key)  # an error, logged or not
        await gql.post(QUERY, key=None, headers={"X-API-Key": key[:-2]})
        key_id = (await gql.post(QUERY, key=revoked)).json()["data"]["viewer"]["keyId"]
        await revoke_key(pool, key_id)
        await asyncio.sleep(short_cache.api_key_cache_seconds + 0.1)
        await gql.post(QUERY, key=revoked)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (key, revoked):
        assert secret.split("_", 2)[2] not in logged


def _websocket_exchange(app, *, headers: dict[str, str], payload: dict) -> tuple[str, object]:
    """Connect over graphql-transport-ws, send connection_init; (outcome, detail)."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    with TestClient(app) as http:
        try:
            with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"], headers=headers) as ws:
                ws.send_json({"type": "connection_init", "payload": payload})
                return "message", ws.receive_json()
        except WebSocketDisconnect as closed:
            return "closed", closed.code


async def test_websocket_takes_the_key_from_the_handshake_or_connection_init(builder, short_cache, urls) -> None:
    from gateway import Runtime, create_app

    async with gateway(short_cache, urls) as gql:
        key = await make_key(gql.state.databases.members, org="c", scopes=ALL_READ)
    app = create_app(Runtime(settings=short_cache, urls=urls))
    # TestClient runs the app (and its lifespan) on its own loop, in a thread.
    by_payload = await asyncio.to_thread(_websocket_exchange, app, headers={},
                                         payload={"Authorization": f"Bearer {key}"})
    by_header = await asyncio.to_thread(_websocket_exchange, app, headers={"Authorization": f"Bearer {key}"},
                                        payload={})
    refused = await asyncio.to_thread(_websocket_exchange, app, headers={},
                                      payload={"Authorization": "Bearer ugk_000000000000_" + "A" * 43})
    assert by_payload == by_header == ("message", {"type": "connection_ack"})
    assert refused == ("closed", 4403)
