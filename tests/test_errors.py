"""Every error carries a code; unexpected ones are INTERNAL without SQL or stack; an unreachable upstream nulls one field."""
from __future__ import annotations

import logging
import socket
from datetime import datetime, timezone
from decimal import Decimal

import asyncpg

from tests.gql import ALL_READ, Builder, builder, gateway, make_key  # noqa: F401 - fixtures


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _world(builder: Builder) -> int:
    await builder.employer("e1", "g1")
    await builder.member("m1", "g1", "e1")
    await builder.enrollment("m1")
    return await builder.claim("m1", submitted_at=datetime(2026, 5, 1, tzinfo=timezone.utc),
                               lines=[("HCA", "MEDICAL", Decimal("10.00"))])


async def test_an_unexpected_failure_is_internal_with_the_request_id_only(builder, settings, urls, caplog) -> None:
    await _world(builder)
    caplog.set_level(logging.ERROR)
    async with gateway(settings, urls) as gql:
        key = await make_key(gql.state.databases.members, org="c", scopes=ALL_READ)
        # A real fault: the contracts source lost its table.
        conn = await asyncpg.connect(urls["contracts"])
        await conn.execute("ALTER TABLE contracts.contracts RENAME TO contracts_moved")
        await conn.close()
        response = await gql.post('{ member(id: "m1") { id } contracts { totalCount } }', key=key,
                                  headers={"X-Request-ID": "req-42"})
    body = response.json()
    assert response.headers["x-request-id"] == "req-42"
    assert body["data"] is None or body["data"].get("contracts") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] == "req-42" and "req-42" in error["message"]
    text = response.text.lower()
    assert "contracts_moved" not in text and "select" not in text and "traceback" not in text
    assert "relation" not in text
    # The log keeps the cause, under the same request id.
    assert any("req-42" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_syntax_and_validation_errors_are_bad_user_input(builder, settings, urls) -> None:
    async with gateway(settings, urls) as gql:
        key = await make_key(gql.state.databases.members, org="c", scopes=ALL_READ)
        for query, variables in [("{ member(id: ", {}), ("{ nosuchfield }", {}),
                                 ("query($d: Date!) { claimStats(from: $d, to: $d, groupBy: []) { claims } }",
                                  {"d": "31/01/2026"}),
                                 ('{ claims(filter: {status: LOST}) { totalCount } }', {})]:
            body = (await gql.post(query, variables, key=key)).json()
            assert body["errors"] and all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in body["errors"]), body


async def test_an_unreachable_insurance_system_nulls_only_its_fields(builder, settings, urls) -> None:
    claim_id = await _world(builder)
    down = settings.model_copy(update={"insurance_url": f"http://127.0.0.1:{closed_port()}",
                                       "insurance_max_attempts": 1, "insurance_timeout_seconds": 0.5})
    async with gateway(down, urls) as gql:
        key = await make_key(gql.state.databases.members, org="c", scopes=ALL_READ)
        body = (await gql.post(
            'query($c: ID!) { member(id: "m1") { name medicalInsurance { insured } } '
            "claim(id: $c) { status totalPayout settlement { hospitalName } } }", {"c": str(claim_id)}, key=key)).json()
    assert body["data"] == {"member": {"name": "王芳", "medicalInsurance": None},
                            "claim": {"status": "APPROVED", "totalPayout": "10.00", "settlement": None}}
    assert sorted((e["path"][-1], e["extensions"]["code"]) for e in body["errors"]) == [
        ("medicalInsurance", "UPSTREAM_UNAVAILABLE"), ("settlement", "UPSTREAM_UNAVAILABLE")]
