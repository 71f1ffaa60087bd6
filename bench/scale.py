"""W1 and W2 at two data sizes in one session: the gateway over each database, rounds interleaved.

    python -m bench.scale                       # 10 000 against 1 000 000 members, 3 rounds
    python -m bench.scale --sizes 10000,1000000 --rounds 3
    python -m bench.scale --sizes 300,600 --rounds 1 --warmup 0 --duration 1 --out DIR   # CI's smoke

The target "W1 and W2 at 1 000 000 members within 20 % of their figures at
10 000" is a ratio, and bench.run measures one size per run: the two runs
are ten minutes apart, and this machine's speed moves by ±15 % and more in
that time (in one pair of runs the gateway's W2 was 31 % slower in the
second, the floor's 6 %; interleaved right after, 15 %). Here one gateway serves each
database, both up at once, and each round loads one then the other, as
bench.run interleaves its peers. Each size's database lives where bench.run
keeps it (bench/results/tmp for 10 000, bench/results/1m/tmp for 1 000 000;
under --out when that is given) and is seeded on first use, as bench.run
does. Writes scale.{json,md} to --out (bench/results); fails if a load has
errors.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx
import psutil

from bench import systems
from bench.run import ALL_SCOPES, RESULTS, Sampler, bodies_for, create_database, load, machine, prepare_data

WORKLOADS = ("W1", "W2")
#: Within this fraction of the smaller size's throughput (issue 7's target).
WITHIN = 0.20


def data_dir(members: int, out: Path) -> Path:
    """Where a size's database lives: bench.run's place for it, unless the report goes elsewhere (CI's smoke)."""
    if out != RESULTS:
        return out / f"size-{members}"
    if members == 10_000:
        return RESULTS
    if members % 1_000_000 == 0:
        return RESULTS / f"{members // 1_000_000}m"
    return RESULTS / str(members)


async def start_size(members: int, seed: int, workers: int, out: Path, started: list) -> dict:
    """One size's database (seeded if new), its simulator and its gateway; what the loads need."""
    tmp = data_dir(members, out) / "tmp"
    admin_url, server = systems.embedded_postgres(tmp / "pgdata")
    started.append(server)
    url, _ = await create_database(admin_url, f"ug_bench_{members}_{seed}")
    env = {"UNION_GATEWAY_DATABASE_URL": url}
    systems.gateway_cli("migrate", env=env)
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT count(*) FROM members.members"):
            print(f"seeding {members} members ...", flush=True)
            systems.gateway_cli("seed", "--members", str(members), "--seed", str(seed), env=env)
        city = await conn.fetchval("SELECT id FROM members.organizations WHERE level = 'CITY'")
    finally:
        await conn.close()
    key = systems.gateway_cli("apikey", "create", "--name", "bench-scale", "--org", city, "--scopes", ALL_SCOPES,
                              "--rate-points", "1000000000", "--rate-window", "1", "--max-cost", "100000",
                              env=env).strip().splitlines()[-1]
    logs = tmp / "logs-scale"
    simulator = systems.start_simulator(env=env, logs=logs)
    started.append(simulator)
    httpx.post(simulator.base_url + "/sim/faults", json={"latency_ms": 20}, timeout=10).raise_for_status()
    gateway = systems.start_gateway(f"gateway-{members}", env={**env, "UNION_GATEWAY_INSURANCE_URL": simulator.base_url},
                                    logs=logs, workers=workers)
    started.append(gateway)
    data = await prepare_data(url, argparse.Namespace(intake_claims=0))
    return {"members": members, "gateway": gateway, "key": key, "data": data}


def measure(size: dict, workload: str, args: argparse.Namespace) -> dict:
    path, bodies = bodies_for(workload, "gateway", size["data"])
    with Sampler(size["gateway"].process()) as sampler:
        result = load(size["gateway"].base_url + path, bodies, headers={"Authorization": f"Bearer {size['key']}"},
                      args=args)
    result.pop("first_body", None)
    result["cpu_ms_per_request"] = round(sampler.cpu_seconds / max(result["requests"], 1) * 1000, 3)
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def markdown(report: dict) -> str:
    small, large = report["sizes"]
    lines = [f"# union-gateway at two sizes, {report['generated_at']}", "",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
             f"Python {report['machine']['python']}.",
             f"Settings: gateway only, {report['settings']['workers']} process(es) per size, concurrency "
             f"{report['settings']['concurrency']}, {report['settings']['duration']} s per load after "
             f"{report['settings']['warmup']} s warm-up, {report['settings']['rounds']} rounds, each loading "
             "one size then the other (medians).", "",
             f"| workload | req/s at {small} | req/s at {large} | change | rounds (small → large) "
             f"| CPU ms/req (small, large) | within {WITHIN:.0%} |",
             "|---|---|---|---|---|---|---|"]
    for workload, row in report["summary"].items():
        rounds = "; ".join(f"{a} → {b}" for a, b in zip(row["rounds"][str(small)], row["rounds"][str(large)]))
        lines.append(f"| {workload} | {row['throughput'][str(small)]} | {row['throughput'][str(large)]} | "
                     f"{row['change']:+.1%} | {rounds} | {row['cpu'][str(small)]}, {row['cpu'][str(large)]} | "
                     f"{'yes' if row['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


async def amain(args: argparse.Namespace) -> int:
    sizes_wanted = [int(s) for s in args.sizes.split(",")]
    started: list = []
    try:
        sizes = [await start_size(m, args.seed, args.workers, args.out, started) for m in sizes_wanted]
        for size in sizes:  # each gateway warm before the first measured round
            for workload in WORKLOADS:
                measure(size, workload, argparse.Namespace(**{**vars(args), "duration": 3.0, "warmup": 0.0}))
        runs: dict[str, dict[str, list[dict]]] = {w: {str(s["members"]): [] for s in sizes} for w in WORKLOADS}
        for round_no in range(args.rounds):
            for workload in WORKLOADS:
                for size in sizes:
                    result = measure(size, workload, args)
                    runs[workload][str(size["members"])].append(result)
                    print(f"{workload} at {size['members']} round {round_no + 1}: {result['throughput']} req/s, "
                          f"p50 {result['p50_ms']} ms, errors {result['errors']}", flush=True)
        summary = {}
        problems = []
        for workload, by_size in runs.items():
            throughput = {m: round(_median([r["throughput"] for r in rs]), 1) for m, rs in by_size.items()}
            small, large = (str(s) for s in sizes_wanted)
            change = throughput[large] / throughput[small] - 1
            summary[workload] = {
                "throughput": throughput, "change": change, "met": abs(change) <= WITHIN,
                "rounds": {m: [round(r["throughput"]) for r in rs] for m, rs in by_size.items()},
                "cpu": {m: round(_median([r["cpu_ms_per_request"] for r in rs]), 2) for m, rs in by_size.items()}}
            problems += [f"{workload} at {m}: {r['errors']} errors" for m, rs in by_size.items() for r in rs
                         if r["errors"]]
        report = {"generated_at": datetime.now(timezone.utc).isoformat(), "machine": machine(),
                  "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "sizes": sizes_wanted, "runs": runs, "summary": summary, "problems": problems}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale.json").write_text(json.dumps(report, indent=2, default=str))
        (args.out / "scale.md").write_text(markdown(report))
        print((args.out / "scale.md").read_text(), flush=True)
        for p in problems:
            print(f"PROBLEM: {p}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        for s in reversed(started):
            if hasattr(s, "stop"):
                s.stop()
            else:
                s.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000", help="two member counts, the smaller first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="gateway processes per size; default one per core")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.workers = args.workers or psutil.cpu_count() or 1
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
