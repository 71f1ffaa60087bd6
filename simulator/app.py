"""The medical-insurance simulator: exactly medical-insurance.yaml's three calls, plus /sim/ admin.

It serves insurance_sim.* over a real socket so the gateway and its tests
talk HTTP to something with the real system's failure modes: latency,
bursts of 503/429 with Retry-After, hangs, dropped connections. The /sim/
endpoints are not part of the contract; they set faults, add records and
report what was asked.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from simulator import records
from simulator.faults import Faults, Stats

SETTLEMENTS_BATCH_GET = "/v1/settlements/batch-get"
SETTLEMENTS_SEARCH = "/v1/settlements/search"
COVERAGE_BATCH_GET = "/v1/coverage/batch-get"
#: Keys per request (medical-insurance.yaml's maxItems).
BATCH_LIMIT = 200


class SimulatedReset(Exception):
    """Raised after the status line to make uvicorn drop the connection."""


class _ConnectionReset(Response):
    """Starts an answer and dies: the client sees the peer close mid-response."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        raise SimulatedReset("simulated connection reset")


class _QuietResets(logging.Filter):
    """Keeps simulated resets out of uvicorn's error log; they are on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))


logging.getLogger("uvicorn.error").addFilter(_QuietResets())


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _bad_request(message: str) -> JSONResponse:
    return _error(400, "BAD_REQUEST", message)


class _BadRequest(Exception):
    pass


def _id_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _BadRequest(f"{name}: required, an array of strings")
    if len(value) > BATCH_LIMIT:
        raise _BadRequest(f"{name}: at most {BATCH_LIMIT} items, got {len(value)}")
    return value


def _search_digest(national_ids: list[str], since: datetime) -> str:
    # Ties a page token to its search, so a token reused with other ids is refused.
    material = json.dumps([sorted(set(national_ids)), since.isoformat()], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _encode_token(at: datetime, settlement_id: str, digest: str) -> str:
    raw = json.dumps({"at": at.isoformat(), "id": settlement_id, "q": digest}, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, digest: str) -> tuple[datetime, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        at, settlement_id, q = datetime.fromisoformat(raw["at"]), raw["id"], raw["q"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise _BadRequest("page_token: not a token this server issued") from None
    if q != digest or not isinstance(settlement_id, str):
        raise _BadRequest("page_token: belongs to another search")
    return at, settlement_id


class _Simulator:
    """The endpoints, sharing the fault settings, the counters and the token."""

    def __init__(self, *, faults: Faults, stats: Stats, token: str | None, page_size: int) -> None:
        self.faults = faults
        self.stats = stats
        self.token = token
        self.page_size = page_size

    # ------------------------------------------------------------- the interface

    async def settlements_batch_get(self, request: Request) -> Response:
        body = await self._admit(request, SETTLEMENTS_BATCH_GET, "ids")
        if isinstance(body, Response):
            return body
        try:
            ids = _id_list(body, "ids")
        except _BadRequest as exc:
            return _bad_request(str(exc))
        rows = await records.settlements_by_id(request.state.pool, ids)
        found = {row["settlement_id"] for row in rows}
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        return JSONResponse({"records": [records.encode_settlement(r) for r in rows], "missing": missing})

    async def settlements_search(self, request: Request) -> Response:
        body = await self._admit(request, SETTLEMENTS_SEARCH, "national_ids")
        if isinstance(body, Response):
            return body
        try:
            national_ids = _id_list(body, "national_ids")
            since_text = body.get("settled_since")
            try:
                since = datetime.fromisoformat(since_text) if isinstance(since_text, str) else None
            except ValueError:
                since = None
            if since is None or since.tzinfo is None:
                raise _BadRequest("settled_since: required, a date-time with a UTC offset")
            digest = _search_digest(national_ids, since)
            token = body.get("page_token")
            if token is not None and not isinstance(token, str):
                raise _BadRequest("page_token: must be a string")
            after = _decode_token(token, digest) if token else None
        except _BadRequest as exc:
            return _bad_request(str(exc))
        rows = await records.search_page(
            request.state.pool, national_ids=national_ids, since=since, after=after, limit=self.page_size + 1
        )
        page, more = rows[: self.page_size], len(rows) > self.page_size
        next_token = _encode_token(page[-1]["settled_at"], page[-1]["settlement_id"], digest) if more else None
        return JSONResponse({"records": [records.encode_settlement(r) for r in page], "next_page_token": next_token})

    async def coverage_batch_get(self, request: Request) -> Response:
        body = await self._admit(request, COVERAGE_BATCH_GET, "national_ids")
        if isinstance(body, Response):
            return body
        try:
            national_ids = _id_list(body, "national_ids")
            try:
                on = date.fromisoformat(body["on"])
            except (KeyError, TypeError, ValueError):
                raise _BadRequest("on: required, a date YYYY-MM-DD") from None
        except _BadRequest as exc:
            return _bad_request(str(exc))
        return JSONResponse({"coverage": await records.coverage_on(request.state.pool, national_ids, on)})

    async def _admit(self, request: Request, path: str, key_field: str) -> dict[str, Any] | Response:
        """Count the request, then play the faults and the token check; the parsed body if it passes."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        keys = body.get(key_field) if isinstance(body, dict) else None
        self.stats.record(path, len(keys) if isinstance(keys, list) else None)

        faults = self.faults
        if faults.down == "reset":
            return _ConnectionReset()
        if faults.down == "503":
            return _error(503, "UNAVAILABLE", "the system is down")
        while faults.hang:
            if await request.is_disconnected():
                return _error(503, "UNAVAILABLE", "client left")
            await asyncio.sleep(0.02)
        failure = faults.next_error()
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
            code = "RATE_LIMITED" if status == 429 else "UNAVAILABLE"
            return _error(status, code, "simulated failure", headers)
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)

        if not self._authorized(request):
            return _error(401, "UNAUTHENTICATED", "a valid bearer token is required",
                          {"WWW-Authenticate": "Bearer"})
        if not isinstance(body, dict):
            return _bad_request("body must be a JSON object")
        return body

    def _authorized(self, request: Request) -> bool:
        if self.token is None:
            return True
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.encode(), self.token.encode())

    # ------------------------------------------------------------- /sim/ admin

    async def add_records(self, request: Request) -> Response:
        """POST /sim/settlements {"settlements": [...], "coverage": [...]}: upsert both."""
        if not self._authorized(request):
            return _error(401, "UNAUTHENTICATED", "a valid bearer token is required")
        try:
            body = await request.json()
        except ValueError:
            return _bad_request("body must be JSON")
        if not isinstance(body, dict) or not set(body) <= {"settlements", "coverage"}:
            return _bad_request('body must be {"settlements": [...], "coverage": [...]}')
        settlements, coverage = body.get("settlements") or [], body.get("coverage") or []
        if not isinstance(settlements, list) or not isinstance(coverage, list):
            return _bad_request("settlements and coverage must be arrays")
        try:
            rows = [records.parse_settlement(s, f"settlements[{i}]") for i, s in enumerate(settlements)]
            entries = [records.parse_coverage(c, f"coverage[{i}]") for i, c in enumerate(coverage)]
        except ValueError as exc:
            return _bad_request(str(exc))
        await records.upsert(request.state.pool, settlements=rows, coverage=entries)
        return JSONResponse({"settlements": len(rows), "coverage": len(entries)}, status_code=201)

    async def set_faults(self, request: Request) -> Response:
        """POST /sim/faults replaces every fault setting (absent fields: off); GET reads them."""
        if not self._authorized(request):
            return _error(401, "UNAUTHENTICATED", "a valid bearer token is required")
        if request.method == "POST":
            try:
                self.faults.replace_with(Faults.from_json(await request.json()))
            except ValueError as exc:
                return _bad_request(str(exc))
        return JSONResponse(self.faults.to_json())

    async def read_stats(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "UNAUTHENTICATED", "a valid bearer token is required")
        return JSONResponse(self.stats.to_json())

    async def reset_stats(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "UNAUTHENTICATED", "a valid bearer token is required")
        self.stats.reset()
        return JSONResponse(self.stats.to_json())


def create_simulator_app(
    database_url: str, *, faults: Faults | None = None, token: str | None = None, page_size: int = 100,
) -> Starlette:
    """The simulator as an ASGI app; its asyncpg pool opens in the lifespan."""
    sim = _Simulator(faults=faults or Faults(), stats=Stats(), token=token, page_size=page_size)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        pool = await asyncpg.create_pool(
            database_url, min_size=1, max_size=5,
            server_settings={"application_name": "union-gateway/insurance-sim"},
        )
        try:
            yield {"pool": pool}
        finally:
            await pool.close()

    routes = [
        Route(SETTLEMENTS_BATCH_GET, sim.settlements_batch_get, methods=["POST"]),
        Route(SETTLEMENTS_SEARCH, sim.settlements_search, methods=["POST"]),
        Route(COVERAGE_BATCH_GET, sim.coverage_batch_get, methods=["POST"]),
        Route("/sim/settlements", sim.add_records, methods=["POST"]),
        Route("/sim/faults", sim.set_faults, methods=["GET", "POST"]),
        Route("/sim/stats", sim.read_stats, methods=["GET"]),
        Route("/sim/stats/reset", sim.reset_stats, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    return app
