"""The floor: a hand-written Starlette + asyncpg + orjson endpoint for W1 and W2.

It returns the same JSON as the gateway's W1/W2 operations, with the
fewest statements we know how to write and no GraphQL at all: what no
GraphQL layer can beat. It keeps the same source boundaries (no SQL across
sources) and checks the same API key, so the comparison is honest.

    python -m bench.floor --port 8101 [--workers N]   (UNION_GATEWAY_DATABASE_URL, UNION_GATEWAY_INSURANCE_URL)
"""
from __future__ import annotations

import argparse
import mmap
import os
import tempfile
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sources.api_keys import KeyAuthenticator
from sources.member_page_shape import PageShape, cheapest  # the gateway's own choice

TWO_PLACES = Decimal("0.01")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _money(value: Decimal) -> str:
    return str(value.quantize(TWO_PLACES))


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return _money(value)
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).isoformat()  # as the gateway's DateTime serializes
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value))


def _dumps(payload: object) -> bytes:
    return orjson.dumps(payload, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _status(start: date, end: date, cancelled: bool, today: date) -> str:
    if cancelled:
        return "CANCELLED"
    return "EXPIRED" if today > end else "ACTIVE"


class StatementCounter:
    """Statements this process ran, readable by every worker of the floor.

    With --workers, several floor processes serve the port and /stats is
    answered by any one of them: each keeps its count in its own small
    memory-mapped file in a shared directory (a memory write per statement,
    no system call), and /stats adds them all up.
    """

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.local = 0
        self._map = None
        if directory:
            path = os.path.join(directory, f"{os.getpid()}.count")
            with open(path, "wb") as fh:
                fh.write(bytes(8))
            with open(path, "r+b") as fh:
                self._map = mmap.mmap(fh.fileno(), 8)

    def add(self) -> None:
        self.local += 1
        if self._map is not None:
            self._map[:8] = self.local.to_bytes(8, "little")

    def total(self) -> int:
        if not self.directory:
            return self.local
        total = 0
        for name in os.listdir(self.directory):
            with open(os.path.join(self.directory, name), "rb") as fh:
                total += int.from_bytes(fh.read(8) or bytes(8), "little")
        return total


class Floor:
    def __init__(self, url: str, insurance_url: str | None) -> None:
        self.url = url
        self.insurance_url = insurance_url
        self.counter = StatementCounter(os.environ.get("FLOOR_STATS_DIR"))
        self.page_shapes: dict[str, PageShape] = {}

    @property
    def statements(self) -> int:
        return self.counter.total()

    async def open(self) -> None:
        # Every floor statement has one best plan for any values (LIMITs are in the
        # text), so each is planned once, as the gateway's look-ups and pages are:
        # the floor must not pay for planning the gateway no longer does.
        self.pool = await asyncpg.create_pool(self.url, min_size=2, max_size=10,
                                              server_settings={"plan_cache_mode": "force_generic_plan"})
        self.authenticator = KeyAuthenticator(self.pool, ttl=30)
        self.http = httpx.AsyncClient(base_url=self.insurance_url or "http://127.0.0.1:1", timeout=5)

    async def close(self) -> None:
        await self.pool.close()
        await self.http.aclose()

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        self.counter.add()
        return await self.pool.fetch(sql, *args)

    async def enrollments(self, member_ids: list[str], *, detailed: bool) -> dict[str, list[dict]]:
        rows = await self.fetch(
            """SELECT e.id, e.member_id, e.coverage_start, e.coverage_end, e.premium_paid, e.cancelled,
                      p.code, p.name
               FROM claims.enrollments e JOIN claims.plans p ON p.code = e.plan_code
               WHERE e.member_id = ANY($1) ORDER BY e.member_id, e.coverage_start, e.id""",
            member_ids,
        )
        today = date.today()
        out: dict[str, list[dict]] = {m: [] for m in member_ids}
        for r in rows:
            if detailed:
                out[r["member_id"]].append({
                    "id": str(r["id"]), "coverageStart": r["coverage_start"], "coverageEnd": r["coverage_end"],
                    "premiumPaid": r["premium_paid"],
                    "status": _status(r["coverage_start"], r["coverage_end"], r["cancelled"], today),
                    "plan": {"code": r["code"], "name": r["name"]},
                })
            else:
                out[r["member_id"]].append({"id": str(r["id"]), "coverageStart": r["coverage_start"],
                                            "plan": {"code": r["code"]}})
        return out

    async def claims_page(self, member_ids: list[str], first: int) -> tuple[dict[str, list[asyncpg.Record]], dict[str, int]]:
        rows = await self.fetch(
            """SELECT * FROM (
                 SELECT c.*, row_number() OVER (PARTITION BY member_id ORDER BY id DESC) AS rn,
                        count(*) OVER (PARTITION BY member_id) AS total
                 FROM claims.claims c WHERE member_id = ANY($1)) t
               WHERE rn <= $2 ORDER BY member_id, id DESC""",
            member_ids, first,
        )
        pages: dict[str, list[asyncpg.Record]] = {m: [] for m in member_ids}
        totals: dict[str, int] = {m: 0 for m in member_ids}
        for r in rows:
            pages[r["member_id"]].append(r)
            totals[r["member_id"]] = r["total"]
        return pages, totals

    async def lines(self, claim_ids: list[int]) -> dict[int, list[asyncpg.Record]]:
        rows = await self.fetch(
            "SELECT claim_id, benefit, plan_code, amount FROM claims.claim_lines WHERE claim_id = ANY($1)"
            " ORDER BY claim_id, line_no", claim_ids)
        out: dict[int, list[asyncpg.Record]] = {c: [] for c in claim_ids}
        for r in rows:
            out[r["claim_id"]].append(r)
        return out

    async def settlements(self, ids: list[str]) -> dict[str, dict]:
        if not ids:
            return {}
        response = await self.http.post("/v1/settlements/batch-get", json={"ids": sorted(set(ids))})
        response.raise_for_status()
        return {r["settlement_id"]: r for r in response.json()["records"]}

    async def member_page(self, member_id: str) -> dict | None:
        rows = await self.fetch(
            """SELECT m.id, m.name, m.gender, m.birth_date, m.employment_type, m.joined_on,
                      e.id AS employer_id, e.name AS employer_name, e.industry,
                      o.id AS org_id, o.name AS org_name, o.level
               FROM members.members m JOIN members.employers e ON e.id = m.employer_id
               JOIN members.organizations o ON o.id = m.organization_id WHERE m.id = $1""", member_id)
        if not rows:
            return None
        m = rows[0]
        enrollments = (await self.enrollments([member_id], detailed=True))[member_id]
        pages, totals = await self.claims_page([member_id], 20)
        claims = pages[member_id]
        lines = await self.lines([c["id"] for c in claims])
        settlements = await self.settlements([c["settlement_id"] for c in claims if c["settlement_id"]])
        edges = []
        for c in claims:
            s = settlements.get(c["settlement_id"]) if c["settlement_id"] else None
            edges.append({"node": {
                "id": str(c["id"]), "kind": c["kind"], "status": c["status"], "totalPayout": c["total_payout"],
                "submittedAt": c["submitted_at"],
                "lines": [{"benefit": l["benefit"], "planCode": l["plan_code"], "amount": l["amount"]} for l in lines[c["id"]]],
                "settlement": None if s is None else {
                    "id": s["settlement_id"], "hospitalName": s["hospital_name"], "admissionDate": s["admission_date"],
                    "dischargeDate": s["discharge_date"], "totalCost": _money(Decimal(s["total_cost"]))},
            }})
        return {
            "id": m["id"], "name": m["name"], "gender": m["gender"], "birthDate": m["birth_date"],
            "employmentType": m["employment_type"], "joinedOn": m["joined_on"],
            "employer": {"id": m["employer_id"], "name": m["employer_name"], "industry": m["industry"]},
            "organization": {"id": m["org_id"], "name": m["org_name"], "level": m["level"]},
            "enrollments": enrollments,
            "claims": {"totalCount": totals[member_id], "edges": edges},
        }

    async def staff_list(self, district: str) -> dict:
        if district not in self.page_shapes:  # once per district and process, as the gateway reads it at start-up
            self.page_shapes[district] = await self.fetch_shape(district)
        shape = self.page_shapes[district]
        if shape is PageShape.BY_ORGANIZATION:
            # The gateway's shape for a small subtree (sources/members.py): each
            # organization's first members on (organization_id, id), merged.
            rows = await self.fetch(
                """SELECT m.id, m.name, e.id AS employer_id, e.name AS employer_name, o.id AS org_id,
                          o.name AS org_name, t.total
                   FROM (SELECT coalesce((SELECT c.subtree_members FROM members.organization_member_counts c
                                          WHERE c.organization_id = $1), 0) AS total) t
                   CROSS JOIN LATERAL (
                       SELECT m.* FROM members.organizations so CROSS JOIN LATERAL (
                           SELECT id, name, employer_id, organization_id FROM members.members m
                           WHERE m.organization_id = so.id ORDER BY m.id LIMIT 50) m
                       WHERE so.path ~>=~ (SELECT path FROM members.organizations WHERE id = $1)
                         AND so.path ~<~ (SELECT left(path, -1) || '0' FROM members.organizations WHERE id = $1)
                       ORDER BY m.id LIMIT 50) m
                   JOIN members.employers e ON e.id = m.employer_id
                   JOIN members.organizations o ON o.id = m.organization_id
                   ORDER BY m.id""", district)
        else:
            rows = await self.walked_page(district, hashed=shape is PageShape.WALK_HASHED)
        return await self.staff_page(rows)

    async def fetch_shape(self, district: str) -> PageShape:
        row = (await self.fetch(
            """SELECT coalesce((SELECT subtree_members FROM members.organization_member_counts
                                WHERE organization_id = $1), 0) AS members,
                      (SELECT count(*) FROM members.organizations s, members.organizations d
                       WHERE d.id = $1 AND s.path ~>=~ d.path AND s.path ~<~ (left(d.path, -1) || '0'))
                          AS organizations,
                      (SELECT coalesce(sum(c.subtree_members), 0)::bigint FROM members.organization_member_counts c
                       JOIN members.organizations o ON o.id = c.organization_id WHERE o.parent_id IS NULL) AS total
            """, district))[0]
        return cheapest(members=row["members"], organizations=row["organizations"], total=row["total"], limit=51)

    async def walked_page(self, district: str, *, hashed: bool) -> list[asyncpg.Record]:
        # The gateway's walks in id order until the page is full, links joined after
        # the LIMIT, the total from the counters (counting a district's rows took
        # seconds at 1 000 000 members). Hashed: the subtree's organizations kept in
        # a hash (sources/members.py says why IS TRUE); else each member's probed.
        if hashed:
            subtree = """(m.organization_id IN (
                       SELECT id FROM members.organizations
                       WHERE path ~>=~ (SELECT path FROM members.organizations WHERE id = $1)
                         AND path ~<~ (SELECT left(path, -1) || '0' FROM members.organizations WHERE id = $1)
                   )) IS TRUE"""
        else:
            subtree = """m.organization_id IN (
                       SELECT id FROM members.organizations
                       WHERE path ~>=~ (SELECT path FROM members.organizations WHERE id = $1)
                         AND path ~<~ (SELECT left(path, -1) || '0' FROM members.organizations WHERE id = $1))"""
        return await self.fetch(
            f"""SELECT m.id, m.name, e.id AS employer_id, e.name AS employer_name, o.id AS org_id,
                      o.name AS org_name, t.total
               FROM (SELECT coalesce((SELECT c.subtree_members FROM members.organization_member_counts c
                                      WHERE c.organization_id = $1), 0) AS total) t
               CROSS JOIN LATERAL (
                   SELECT m.id, m.name, m.employer_id, m.organization_id FROM members.members m
                   WHERE {subtree}
                   ORDER BY m.id LIMIT 50) m
               JOIN members.employers e ON e.id = m.employer_id
               JOIN members.organizations o ON o.id = m.organization_id
               ORDER BY m.id""", district)

    async def staff_page(self, rows: list[asyncpg.Record]) -> dict:
        ids = [r["id"] for r in rows]
        enrollments = await self.enrollments(ids, detailed=False)
        pages, _ = await self.claims_page(ids, 5)
        lines = await self.lines([c["id"] for p in pages.values() for c in p])
        edges = [{"node": {
            "id": r["id"], "name": r["name"],
            "employer": {"id": r["employer_id"], "name": r["employer_name"]},
            "organization": {"id": r["org_id"], "name": r["org_name"]},
            "enrollments": enrollments[r["id"]],
            "claims": {"edges": [{"node": {
                "id": str(c["id"]), "status": c["status"], "totalPayout": c["total_payout"],
                "lines": [{"benefit": l["benefit"], "amount": l["amount"]} for l in lines[c["id"]]],
            }} for c in pages[r["id"]]]},
        }} for r in rows]
        return {"totalCount": rows[0]["total"] if rows else 0, "edges": edges}


def create_floor_app(url: str, insurance_url: str | None) -> Starlette:
    floor = Floor(url, insurance_url)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await floor.open()
        yield
        await floor.close()

    async def endpoint(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        key = await floor.authenticator.authenticate(auth.removeprefix("Bearer ").strip())
        if key is None:
            return Response(_dumps({"errors": [{"message": "unauthenticated"}]}), status_code=401,
                            media_type="application/json")
        body = orjson.loads(await request.body())
        variables = body.get("variables") or {}
        if request.path_params["workload"] == "w1":
            data = {"member": await floor.member_page(variables["id"])}
        else:
            data = {"members": await floor.staff_list(variables["district"])}
        return Response(_dumps({"data": data}), media_type="application/json")

    async def stats(request: Request) -> Response:
        return Response(_dumps({"statements": floor.statements}), media_type="application/json")

    return Starlette(routes=[Route("/floor/{workload}", endpoint, methods=["POST"]), Route("/stats", stats)],
                     lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=1, help="server processes on SO_REUSEPORT sockets, as the gateway's")
    args = parser.parse_args()
    if args.workers > 1:
        serve_workers(args.host, args.port, args.workers)
        return
    uvicorn.run(app_from_environment(), host=args.host, port=args.port, log_level="warning", access_log=False)


def serve_workers(host: str, port: int, workers: int) -> None:
    """N floor processes on the port, each with its own SO_REUSEPORT socket: the same process model
    as `union-gateway serve --workers N` (web.workers), so neither system gets a different spread of
    connections over its processes."""
    import multiprocessing
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # through the finally below: the workers stop too

    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="floor-stats-") as stats_dir:
        os.environ["FLOOR_STATS_DIR"] = stats_dir  # the workers inherit it
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_serve_one, args=(host, port)) for _ in range(workers)]
        for process in processes:
            process.start()
        try:
            for process in processes:
                process.join()
        finally:
            for process in processes:
                process.terminate()
                process.join()


def _serve_one(host: str, port: int) -> None:
    from web.workers import reuse_port_socket

    sock = reuse_port_socket(host, port)
    config = uvicorn.Config(app_from_environment(), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def app_from_environment() -> Starlette:
    return create_floor_app(os.environ["UNION_GATEWAY_DATABASE_URL"], os.environ.get("UNION_GATEWAY_INSURANCE_URL"))


if __name__ == "__main__":
    main()
