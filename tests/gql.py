"""Test helpers: the real app over httpx's ASGI transport, API keys, and a small data builder."""
from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, AsyncIterator

import asyncpg
import httpx

from domain.national_id import check_digit
from gateway import AppState, Runtime, create_app
from sources.api_keys import create_key
from sources.settings import Settings

ALL_READ = ["members:read", "pii:read", "medical:read", "claims:read", "contracts:read", "recruitment:read",
            "stats:read", "introspection"]


@dataclass
class Gql:
    """A client of the running app."""

    http: httpx.AsyncClient
    state: AppState

    async def post(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=sent)

    async def query(self, query: str, variables: dict[str, Any] | None = None, *, key: str) -> dict[str, Any]:
        """The JSON body of a 200 answer (data and maybe errors)."""
        response = await self.post(query, variables, key=key)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, *, key: str) -> dict[str, Any]:
        """`data` of an answer that must have no errors."""
        body = await self.query(query, variables, key=key)
        assert not body.get("errors"), body["errors"]
        return body["data"]


@asynccontextmanager
async def gateway(settings: Settings, urls: dict[str, str]) -> AsyncIterator[Gql]:
    """The real ASGI app inside its lifespan, with an httpx client on it."""
    app = create_app(Runtime(settings=settings, urls=urls))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
            yield Gql(http=http, state=app.state.gateway)


async def make_key(pool: asyncpg.Pool, *, org: str, scopes: list[str], name: str = "test key",
                   expires_at: datetime | None = None) -> str:
    """A new API key's secret."""
    _, secret = await create_key(pool, name=name, organization_id=org, scopes=scopes, expires_at=expires_at)
    return secret


def national_id(birth: date, seq: int, female: bool) -> str:
    """A valid GB 11643 id (sequence digit parity follows gender)."""
    third = (seq % 50) * 2 + (0 if female else 1)
    first17 = f"320211{birth:%Y%m%d}{seq // 50 % 10}{third:02d}"[:17]
    return first17 + check_digit(first17)


@dataclass
class Builder:
    """Inserts rows straight into the sources' tables (all on the test's one database)."""

    conn: asyncpg.Connection
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    _org_of_member: dict[str, str] = field(default_factory=dict)

    async def tree(self) -> None:
        """City c; districts d1, d2; grassroots g1 under d1, g2 under d2."""
        for oid, name, level, parent in [("c", "无锡市总工会", "CITY", None), ("d1", "梁溪区总工会", "DISTRICT", "c"),
                                         ("d2", "滨湖区总工会", "DISTRICT", "c"), ("g1", "梁溪一厂工会", "GRASSROOTS", "d1"),
                                         ("g2", "滨湖二厂工会", "GRASSROOTS", "d2")]:
            await self.conn.execute("INSERT INTO members.organizations (id, name, level, parent_id) VALUES ($1,$2,$3,$4)",
                                    oid, name, level, parent)
        await self.conn.execute("SELECT members.refresh_organization_paths()")

    async def employer(self, eid: str, org: str | None, name: str = "无锡某某有限公司") -> str:
        credit = f"91320200{eid:>10}"[:18].replace(" ", "0")
        await self.conn.execute(
            "INSERT INTO members.employers (id, name, credit_code, industry, organization_id) VALUES ($1,$2,$3,$4,$5)",
            eid, name, credit, "制造业", org)
        return eid

    async def member(self, mid: str, org: str, employer: str, *, name: str = "王芳", female: bool = True,
                     phone: str | None = "13912345678") -> str:
        birth = date(1985, 3, 14)
        await self.conn.execute(
            """INSERT INTO members.members (id, name, gender, birth_date, national_id, phone, employment_type,
                                            employer_id, organization_id, joined_on)
               VALUES ($1,$2,$3,$4,$5,$6,'REGULAR',$7,$8,'2020-01-01')""",
            mid, name, "FEMALE" if female else "MALE", birth, national_id(birth, next(self._seq), female), phone,
            employer, org)
        self._org_of_member[mid] = org
        return mid

    async def enrollment(self, member: str, plan: str = "HCA", start: date = date(2026, 1, 1)) -> int:
        end = {"HCA": date(start.year + 1, start.month, start.day), "SI5": date(start.year + 5, start.month, start.day),
               "FW3": date(start.year + 3, start.month, start.day)}[plan]
        premium = {"HCA": Decimal("120.00"), "SI5": Decimal("250.00"), "FW3": Decimal("90.00")}[plan]
        return await self.conn.fetchval(
            """INSERT INTO claims.enrollments (member_id, organization_id, plan_code, coverage_start, coverage_end,
                                               premium_paid)
               VALUES ($1,$2,$3,$4,$5::date - 1,$6) RETURNING id""",
            member, self._org_of_member[member], plan, start, end, premium)

    async def claim(self, member: str, *, submitted_at: datetime, status: str = "APPROVED",
                    lines: list[tuple[str, str, Decimal]] = (), enrollment: int | None = None) -> int:
        """A hospitalization claim with lines (plan, benefit, amount)."""
        total = sum((a for _, _, a in lines), Decimal("0"))
        seq = next(self._seq)
        claim_id = await self.conn.fetchval(
            """INSERT INTO claims.claims (member_id, organization_id, kind, status, rejection_reason, settlement_id,
                                          total_payout, submitted_at, decided_at, paid_at, payment_ref)
               VALUES ($1,$2,'HOSPITALIZATION',$3,$4,$5,$6,$7,$7,$8,$9) RETURNING id""",
            member, self._org_of_member[member], status, "NOT_ENROLLED" if status == "REJECTED" else None,
            f"S{seq:08d}", total, submitted_at, submitted_at if status == "PAID" else None,
            f"PAY{seq:08d}" if status == "PAID" else None)
        if lines and enrollment is None:
            enrollment = await self.conn.fetchval(
                "SELECT id FROM claims.enrollments WHERE member_id = $1 ORDER BY id LIMIT 1", member)
        for n, (plan, benefit, amount) in enumerate(lines, 1):
            await self.conn.execute(
                """INSERT INTO claims.claim_lines (claim_id, line_no, enrollment_id, plan_code, benefit, amount)
                   VALUES ($1,$2,$3,$4,$5,$6)""", claim_id, n, enrollment, plan, benefit, amount)
        return claim_id

    async def contract(self, cid: str, org: str, employer: str) -> str:
        await self.conn.execute(
            """INSERT INTO contracts.contracts (id, title, kind, status, employer_id, organization_id, campaign,
                                                covered_workers, wage_increase_percent)
               VALUES ($1, $2, 'WAGE', 'SIGNED', $3, $4, '2021春季要约行动', 120, 5.50)""",
            cid, f"{cid} 工资集体协议", employer, org)
        return cid

    async def event(self, eid: str, org: str, starts_at: datetime, *, postings: list[tuple[str, str, int]] = ()) -> str:
        """An event with postings (id, employer, headcount); posting employers take part."""
        await self.conn.execute(
            "INSERT INTO recruitment.events (id, title, format, organizer_id, starts_at) VALUES ($1,$2,'ONSITE',$3,$4)",
            eid, f"{eid} 春风行动招聘会", org, starts_at)
        for pid, employer, headcount in postings:
            await self.conn.execute(
                """INSERT INTO recruitment.postings (id, event_id, employer_id, title, sector, headcount, salary_min,
                                                     salary_max) VALUES ($1,$2,$3,'操作工','制造业',$4,4000,6000)""",
                pid, eid, employer, headcount)
            await self.conn.execute(
                "INSERT INTO recruitment.event_employers VALUES ($1,$2) ON CONFLICT DO NOTHING", eid, employer)
        return eid


# --------------------------------------------------------------------------- fixtures (import them in a test module)

import pytest_asyncio  # noqa: E402


@pytest_asyncio.fixture
async def client(settings: Settings, urls: dict[str, str]) -> AsyncIterator[Gql]:
    """The gateway app, in its lifespan."""
    async with gateway(settings.model_copy(update={"api_key_cache_seconds": 60.0}), urls) as gql:
        yield gql


@pytest_asyncio.fixture
async def builder(urls: dict[str, str]) -> AsyncIterator[Builder]:
    """A data builder with the organization tree (c; d1 > g1; d2 > g2) in place."""
    conn = await asyncpg.connect(urls["members"])
    try:
        b = Builder(conn)
        await b.tree()
        yield b
    finally:
        await conn.close()
