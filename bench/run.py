"""One command for the side-by-side benchmark (see README "Benchmarks").

    python -m bench.run                 # 10 000 members, every workload and peer
    python -m bench.run --members 1000000 --workloads W1,W2,W2g,W3
    python -m bench.run --smoke         # CI: tiny data, a few requests each; fails on errors or wrong data

Systems, all against the same database on this machine, interleaved per
workload: the gateway; the same gateway with dataloader batching off (the
N+1 baseline); PostGraphile v4 (W1, W2); the hand-written floor (W1, W2, W2g).
Writes bench/results/latest.{json,md} and throughput.png.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import psutil

from bench import systems
from bench.compare import normalize_postgraphile, same_data
from bench.report import write_report

RESULTS = systems.BENCH_DIR / "results"
ALL_SCOPES = ("members:read,pii:read,medical:read,claims:read,claims:write,claims:review,enrollments:write,"
              "contracts:read,recruitment:read,stats:read,introspection,audit:read")
#: W2g is W2 for grassroots unions: small subtrees, which a keyset walk in id order
#: would cross the whole city for at 1 000 000 members (sources/members.py).
WORKLOAD_FILES = {"W1": "W1_member_page", "W2": "W2_staff_list", "W2g": "W2_staff_list", "W3": "W3_reporting",
                  "W4": "W4_claim_intake", "W5": "W5_cross_source"}


class Sampler:
    """Samples a server's RSS while a load runs; CPU seconds from before/after.

    A server is a process and its children (workers, PostGraphile's cluster):
    CPU is the family's; peak_rss is the largest one process held (the
    target is per process), peak_rss_total the family's together.
    """

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak_rss = 0
        self.peak_rss_total = 0
        self._stop = threading.Event()

    def _family(self) -> list[psutil.Process]:
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return [self.process]

    def cpu(self) -> float:
        total = 0.0
        for p in self._family():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def rss(self) -> tuple[int, int]:
        """(largest process, all together)."""
        largest = total = 0
        for p in self._family():
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            largest = max(largest, rss)
            total += rss
        return largest, total

    def _sample(self) -> None:
        largest, total = self.rss()
        self.peak_rss = max(self.peak_rss, largest)
        self.peak_rss_total = max(self.peak_rss_total, total)

    def __enter__(self) -> "Sampler":
        self.cpu_before = self.cpu()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self._sample()
        self.cpu_seconds = self.cpu() - self.cpu_before


def load(url: str, bodies: list[bytes], *, headers: dict[str, str], args: argparse.Namespace,
         max_requests: int | None = None) -> dict:
    """Run bench.load in its own process (so its CPU is not the server's)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as fh:
        fh.write(b"\n".join(bodies) + b"\n")
        path = fh.name
    cmd = [sys.executable, "-m", "bench.load", url, path, "--concurrency", str(args.concurrency),
           "--warmup", str(0 if max_requests else args.warmup), "--duration", str(args.duration)]
    if max_requests:
        cmd += ["--max-requests", str(max_requests)]
    for k, v in headers.items():
        cmd += ["--header", f"{k}:{v}"]
    out = subprocess.run(cmd, cwd=systems.REPO, capture_output=True, text=True, check=False)
    os.unlink(path)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def measure_page_load(servers: dict[str, systems.Server], data: dict, headers: dict[str, str],
                      args: argparse.Namespace, workloads: list[str]) -> dict[str, dict[str, dict]]:
    """W1 and W2 one request at a time: how fast a page loads when the server is not queueing.

    At the run's concurrency, p50 is mostly queueing (close to concurrency
    over throughput); one request at a time it is the page's own latency.
    """
    quiet = argparse.Namespace(**{**vars(args), "concurrency": 1, "warmup": 1.0, "duration": args.page_load_seconds})
    out: dict[str, dict[str, dict]] = {}
    for workload in ("W1", "W2"):
        if workload not in workloads:
            continue
        for name in PEERS[workload]:
            if name in servers:
                path, bodies = bodies_for(workload, name, data)
                result = load(servers[name].base_url + path, bodies, headers=headers, args=quiet)
                out.setdefault(workload, {})[name] = {k: result[k] for k in ("requests", "errors", "p50_ms",
                                                                             "p99_ms", "mean_ms")}
                print(f"{workload} {name} one at a time: p50 {result['p50_ms']} ms", flush=True)
    return out


def sql_statements(server: systems.Server) -> float | None:
    """Statements the server ran so far, from its own counters."""
    try:
        if server.name == "floor":
            return httpx.get(server.base_url + "/stats", timeout=5).json()["statements"]
        if server.name.startswith("gateway"):
            text = httpx.get(server.base_url + "/metrics", timeout=5).text
            total = 0.0
            found = False
            for line in text.splitlines():
                if line.startswith("union_gateway_sql_statements_total"):
                    total += float(line.rsplit(" ", 1)[1])
                    found = True
            return total if found else None
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    return None


async def prepare_data(url: str, args: argparse.Namespace) -> dict:
    """Pick ids the workloads use, and make W4's fresh settlements."""
    conn = await asyncpg.connect(url)
    try:
        members = [r["member_id"] for r in await conn.fetch(
            "SELECT member_id FROM claims.claims GROUP BY member_id ORDER BY count(*) DESC, member_id LIMIT 200")]
        districts = [r["id"] for r in await conn.fetch(
            "SELECT id FROM members.organizations WHERE level = 'DISTRICT' ORDER BY id")]
        # Spread over the city, the same ones every run of a seed.
        unions = [r["id"] for r in await conn.fetch(
            "SELECT id FROM members.organizations WHERE level = 'GRASSROOTS' ORDER BY md5(id) LIMIT 7")]
        # W4: members whose current HCA enrolment has paid nothing yet and is past
        # its waiting period, so each fresh stay's payout is known exactly. Claims an
        # earlier run made (its settlements are BENCH-...) go first: the seeded
        # database is kept between runs, and they would use every such member up.
        async with conn.transaction():
            await conn.execute("""
                CREATE TEMP TABLE earlier_bench_claims ON COMMIT DROP AS
                    SELECT id FROM claims.claims WHERE settlement_id LIKE 'BENCH-%';
                DELETE FROM claims.payments WHERE claim_id IN (SELECT id FROM earlier_bench_claims);
                DELETE FROM claims.claim_lines WHERE claim_id IN (SELECT id FROM earlier_bench_claims);
                DELETE FROM claims.claims WHERE id IN (SELECT id FROM earlier_bench_claims);""")
        today = date.today()
        rows = await conn.fetch(
            """SELECT e.member_id, e.coverage_start, e.coverage_end FROM claims.enrollments e
               WHERE e.plan_code = 'HCA' AND NOT e.cancelled AND e.coverage_start + 40 <= $1 AND e.coverage_end >= $1
                 AND NOT EXISTS (SELECT 1 FROM claims.claim_lines l WHERE l.enrollment_id = e.id)
               ORDER BY e.member_id LIMIT $2""", today - timedelta(days=5), args.intake_claims)
        ids = {r["member_id"]: r for r in rows}
        nationals = {r["id"]: r["national_id"] for r in await conn.fetch(
            "SELECT id, national_id FROM members.members WHERE id = ANY($1)", list(ids))}
        intake = []
        run_tag = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        for i, (member_id, r) in enumerate(sorted(ids.items())):
            admission = today - timedelta(days=5)
            days = 3
            self_pay = Decimal(3000 + (i % 50) * 10)
            intake.append({
                "member": member_id, "settlement": f"BENCH-{run_tag}-{i:06d}",
                "national_id": nationals[member_id], "admission": admission, "days": days,
                "self_pay": self_pay,
                "expected": (Decimal("0.5") * (self_pay - 1000)).quantize(Decimal("0.01")) + 50 * days,
            })
        return {"members": members, "districts": districts, "unions": unions, "intake": intake}
    finally:
        await conn.close()


def add_settlements(simulator: systems.Server, intake: list[dict]) -> None:
    records = []
    for item in intake:
        admission = item["admission"]
        records.append({
            "settlement_id": item["settlement"], "national_id": item["national_id"], "hospital_code": "H320200001",
            "hospital_name": "无锡市人民医院", "admission_date": admission.isoformat(),
            "discharge_date": (admission + timedelta(days=item["days"])).isoformat(),
            "diagnosis_code": "K35.8", "diagnosis_name": "急性阑尾炎", "total_cost": str(item["self_pay"] * 3),
            "fund_paid": str(item["self_pay"] * 2), "self_pay_in_policy": str(item["self_pay"]),
            "self_pay_out_of_policy": "0.00", "settled_at": datetime.now(timezone.utc).isoformat(),
        })
    for start in range(0, len(records), 500):
        response = httpx.post(simulator.base_url + "/sim/settlements",
                              json={"settlements": records[start:start + 500]}, timeout=30)
        response.raise_for_status()


async def check_intake(url: str, intake: list[dict]) -> dict:
    """Every W4 claim decided once and correctly."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT settlement_id, member_id, status, total_payout FROM claims.claims WHERE settlement_id = ANY($1)",
            [i["settlement"] for i in intake])
    finally:
        await conn.close()
    by_settlement: dict[str, list] = {}
    for r in rows:
        by_settlement.setdefault(r["settlement_id"], []).append(r)
    submitted = [i for i in intake if i["settlement"] in by_settlement]
    twice = sum(1 for v in by_settlement.values() if len(v) > 1)
    wrong = [i["settlement"] for i in submitted
             if by_settlement[i["settlement"]][0]["status"] != "APPROVED"
             or by_settlement[i["settlement"]][0]["total_payout"] != i["expected"]]
    return {"claims": len(rows), "decided_twice": twice, "wrong": len(wrong), "wrong_samples": wrong[:5]}


def bodies_for(workload: str, system: str, data: dict) -> tuple[str, list[bytes]]:
    """(path, request bodies) of a workload on a system."""
    if workload == "W2g":
        return bodies_for("W2", system, {**data, "districts": data["unions"]})
    if system == "floor":
        if workload == "W1":
            return "/floor/w1", [json.dumps({"variables": {"id": m}}).encode() for m in data["members"]]
        return "/floor/w2", [json.dumps({"variables": {"district": d}}).encode() for d in data["districts"]]
    if system == "postgraphile":
        query = systems.postgraphile_operation(WORKLOAD_FILES[workload])
        if workload == "W1":
            return "/graphql", [systems.body(query, {"id": m}) for m in data["members"]]
        return "/graphql", [systems.body(query, {"district": d}) for d in data["districts"]]
    query = systems.operation(WORKLOAD_FILES[workload])
    if workload == "W1":
        return "/graphql", [systems.body(query, {"id": m}) for m in data["members"]]
    if workload == "W2":
        return "/graphql", [systems.body(query, {"district": d}) for d in data["districts"]]
    if workload == "W3":
        today = date.today()
        return "/graphql", [systems.body(query, {"from": (today - timedelta(days=365)).isoformat(),
                                                  "to": today.isoformat()})]
    if workload == "W4":
        return "/graphql", [systems.body(query, {"member": i["member"], "settlement": i["settlement"]})
                            for i in data["intake"]]
    return "/graphql", [systems.body(query, {})]


PEERS = {"W1": ("gateway", "gateway-n+1", "postgraphile", "floor"),
         "W2": ("gateway", "gateway-n+1", "postgraphile", "floor"),
         "W2g": ("gateway", "gateway-n+1", "floor"),
         "W3": ("gateway",), "W4": ("gateway",), "W5": ("gateway", "gateway-n+1")}


def verify(workload: str, servers: dict[str, systems.Server], data: dict, key: str) -> list[str]:
    """Compare what each system returns for the same inputs; returns problems."""
    problems = []
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    samples = {"W1": data["members"][:3], "W2": data["districts"][:2], "W2g": data["unions"][:2]}.get(workload, [None])
    for sample in samples:
        answers = {}
        for name in PEERS[workload]:
            if name not in servers:
                continue
            path, bodies = bodies_for(workload, name, {**data, "members": [sample], "districts": [sample], "unions": [sample]})
            response = httpx.post(servers[name].base_url + path, content=bodies[0], headers=headers, timeout=60)
            payload = response.json()
            if response.status_code != 200 or payload.get("errors"):
                problems.append(f"{workload} {name}: {response.status_code} {str(payload)[:300]}")
                continue
            answers[name] = payload["data"]
        reference = answers.get("gateway")
        if reference is None:
            continue
        for name, answer in answers.items():
            if name == "gateway":
                continue
            if name == "postgraphile":
                ok = normalize_postgraphile(workload, answer) == normalize_postgraphile(workload, reference, ours=True)
            else:
                ok = same_data(answer, reference)
            if not ok:
                problems.append(f"{workload}: {name} returned different data than the gateway for {sample}")
    return problems


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workloads", default="W1,W2,W2g,W3,W4,W5")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None,
                        help="server processes of every system (gateway and its N+1 baseline: serve --workers; "
                             "the floor: as many SO_REUSEPORT processes; PostGraphile: --cluster-workers); default: one per core")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per workload")
    parser.add_argument("--page-load-seconds", type=float, default=5.0,
                        help="W1 and W2 one request at a time, per system (0: skip)")
    parser.add_argument("--intake-claims", type=int, default=3000)
    parser.add_argument("--database-url", help="admin URL of a server to use instead of an embedded one")
    parser.add_argument("--smoke", action="store_true", help="tiny data, a few requests; fail on errors or wrong data")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    # A replica on an N-core machine runs N processes of whichever system it is; each system gets the same.
    args.workers = args.workers or psutil.cpu_count() or 1
    if args.smoke:
        args.members, args.duration, args.warmup, args.rounds, args.concurrency = 300, 1.0, 0.0, 1, 4
        args.page_load_seconds = 1.0
        args.intake_claims = 40
    # SIGTERM unwinds like Ctrl-C, through amain's finally: the systems it started stop too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return asyncio.run(amain(args))


async def create_database(admin_url: str, name: str) -> tuple[str, bool]:
    from tests.pg import with_database

    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name), not exists


async def amain(args: argparse.Namespace) -> int:
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    tmp = args.out / "tmp"
    logs = tmp / "logs"
    server = None
    admin_url = args.database_url
    if admin_url is None:
        admin_url, server = systems.embedded_postgres(tmp / "pgdata")
    started: list[systems.Server] = []
    try:
        url, fresh = await create_database(admin_url, f"ug_bench_{args.members}_{args.seed}" + ("_smoke" if args.smoke else ""))
        env = {"UNION_GATEWAY_DATABASE_URL": url}
        systems.gateway_cli("migrate", env=env)
        conn = await asyncpg.connect(url)
        seeded = await conn.fetchval("SELECT count(*) FROM members.members")
        await conn.close()
        if not seeded:
            print(f"seeding {args.members} members ...", flush=True)
            t0 = time.perf_counter()
            systems.gateway_cli("seed", "--members", str(args.members), "--seed", str(args.seed), env=env)
            print(f"seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        conn = await asyncpg.connect(url)
        await conn.execute((systems.POSTGRAPHILE_DIR / "setup.sql").read_text())
        city = await conn.fetchval("SELECT id FROM members.organizations WHERE level = 'CITY'")
        await conn.close()
        # The bench measures throughput, not the rate limiter: its key may spend freely.
        key = systems.gateway_cli("apikey", "create", "--name", "bench", "--org", city, "--scopes", ALL_SCOPES,
                                  "--rate-points", "1000000000", "--rate-window", "1", "--max-cost", "100000",
                                  env=env).strip().splitlines()[-1]

        simulator = systems.start_simulator(env=env, logs=logs)
        started.append(simulator)
        httpx.post(simulator.base_url + "/sim/faults", json={"latency_ms": 20}, timeout=10).raise_for_status()
        env_gw = {**env, "UNION_GATEWAY_INSURANCE_URL": simulator.base_url}
        servers = {"gateway": systems.start_gateway("gateway", env=env_gw, logs=logs, workers=args.workers)}
        started.append(servers["gateway"])
        if any(w in workloads for w in ("W1", "W2", "W2g", "W5")):
            servers["gateway-n+1"] = systems.start_gateway("gateway-n+1", env=env_gw, logs=logs, batching=False,
                                                            workers=args.workers)
            started.append(servers["gateway-n+1"])
        if any(w in workloads for w in ("W1", "W2", "W2g")):
            servers["floor"] = systems.start_floor(env=env_gw, logs=logs, workers=args.workers)
            started.append(servers["floor"])
            pg = systems.start_postgraphile(database_url=url, logs=logs, workers=args.workers)
            if pg is not None:
                servers["postgraphile"] = pg
                started.append(pg)

        data = await prepare_data(url, args)
        if "W4" in workloads:
            add_settlements(simulator, data["intake"])

        problems: list[str] = []
        for workload in workloads:
            if workload != "W4":
                problems += verify(workload, servers, data, key)
        headers = {"Authorization": f"Bearer {key}"}
        results: dict[str, dict[str, list[dict]]] = {}
        for workload in workloads:
            for round_no in range(args.rounds):
                for name in PEERS[workload]:
                    if name not in servers:
                        continue
                    if workload == "W4" and round_no > 0:
                        continue  # every intake settlement is claimed once
                    srv = servers[name]
                    path, bodies = bodies_for(workload, name, data)
                    statements_before = sql_statements(srv)
                    max_requests = len(bodies) if workload == "W4" else (len(bodies) * 2 if args.smoke else None)
                    with Sampler(srv.process()) as sampler:
                        result = load(srv.base_url + path, bodies, headers=headers, args=args,
                                      max_requests=max_requests)
                    statements_after = sql_statements(srv)
                    result.pop("first_body", None)
                    requests = max(result["requests"], 1)
                    result["cpu_ms_per_request"] = round(sampler.cpu_seconds / requests * 1000, 3)
                    result["peak_rss_mb"] = round(sampler.peak_rss / 2**20, 1)
                    result["peak_rss_total_mb"] = round(sampler.peak_rss_total / 2**20, 1)
                    result["sql_per_request"] = (round((statements_after - statements_before) / requests, 2)
                                                 if statements_before is not None and statements_after is not None
                                                 else None)
                    results.setdefault(workload, {}).setdefault(name, []).append(result)
                    print(f"{workload} {name} round {round_no + 1}: {result['throughput']} req/s, "
                          f"p50 {result['p50_ms']} ms, errors {result['errors']}", flush=True)
                    if result["errors"]:
                        problems.append(f"{workload} {name}: {result['errors']} errors, e.g. {result['error_samples'][:1]}")
        page_load = measure_page_load(servers, data, headers, args, workloads) if args.page_load_seconds > 0 else {}
        problems += [f"{w} {name} one at a time: {v['errors']} errors"
                     for w, by_system in page_load.items() for name, v in by_system.items() if v["errors"]]
        intake = await check_intake(url, data["intake"]) if "W4" in workloads else None
        if intake and (intake["decided_twice"] or intake["wrong"]):
            problems.append(f"W4: {intake}")
        report = {"generated_at": datetime.now(timezone.utc).isoformat(), "machine": machine(),
                  "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "results": results, "page_load": page_load, "intake_check": intake, "problems": problems}
        out = args.out / ("smoke" if args.smoke else "")
        write_report(report, out)
        print(f"results in {out}", flush=True)
        for p in problems:
            print(f"PROBLEM: {p}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        for s in reversed(started):
            s.stop()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
