"""Instructions per request: an A/B measure that does not move with the machine.

    python -m bench.instructions                          # this tree, W2, 100 requests
    python -m bench.instructions --tree /tmp/before --tree .   # A/B: a worktree of the old code, then this one

On a shared 2-core machine CPU time per request moves by ±10 % from minute
to minute, more than most single changes save. Instructions executed do
barely: the gateway is served under valgrind's callgrind, its counters are
zeroed after a warm-up, a fixed number of requests is sent, and the count
is read back; it repeats to within ~1 %. It counts the gateway process's own
user-space instructions only: work saved in the kernel (a round trip) or
in PostgreSQL does not show, so a change of that kind is measured as
throughput A/B with `bench.run` instead. It needs valgrind (Debian's
package); the data is bench.run's own database, seeded on first use.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench import systems
from bench.run import ALL_SCOPES, create_database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", type=Path,
                        help="source tree to serve (repeat to compare; default: this repository)")
    parser.add_argument("--workload", choices=("W1", "W2"), default="W2")
    parser.add_argument("--requests", type=int, default=100, help="requests counted")
    parser.add_argument("--warmup", type=int, default=60, help="requests sent before counting")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=systems.REPO / "bench" / "results",
                        help="where bench.run keeps its PostgreSQL (tmp/)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    return asyncio.run(amain(args))


async def amain(args: argparse.Namespace) -> int:
    tmp = args.out / "tmp"
    admin_url, server = systems.embedded_postgres(tmp / "pgdata")
    started: list[systems.Server] = []
    try:
        url, _ = await create_database(admin_url, f"ug_bench_{args.members}_{args.seed}")
        env = {"UNION_GATEWAY_DATABASE_URL": url}
        systems.gateway_cli("migrate", env=env)
        conn = await asyncpg.connect(url)
        try:
            if not await conn.fetchval("SELECT count(*) FROM members.members"):
                print(f"seeding {args.members} members ...", flush=True)
                systems.gateway_cli("seed", "--members", str(args.members), "--seed", str(args.seed), env=env)
            city = await conn.fetchval("SELECT id FROM members.organizations WHERE level = 'CITY'")
            bodies = await _bodies(conn, args.workload)
        finally:
            await conn.close()
        key = systems.gateway_cli("apikey", "create", "--name", "bench-instructions", "--org", city, "--scopes",
                                  ALL_SCOPES, "--rate-points", "1000000000", "--rate-window", "1", "--max-cost",
                                  "100000", env=env).strip().splitlines()[-1]
        simulator = systems.start_simulator(env=env, logs=tmp / "logs")
        started.append(simulator)
        env = {**env, "UNION_GATEWAY_INSURANCE_URL": simulator.base_url}
        results = {}
        for tree in args.tree or [systems.REPO]:
            results[str(tree)] = _count(tree.resolve(), env=env, key=key, bodies=bodies, args=args, logs=tmp / "logs")
            print(f"{tree}: {results[str(tree)] / 1e6:.3f} M instructions a {args.workload} request", flush=True)
        if len(results) > 1:
            first, *rest = results.values()
            for tree, count in list(results.items())[1:]:
                print(f"{tree} against {args.tree[0]}: {100 * (count / first - 1):+.2f} %")
        return 0
    finally:
        for s in reversed(started):
            s.stop()
        if server is not None:
            server.cleanup()


async def _bodies(conn: asyncpg.Connection, workload: str) -> list[bytes]:
    if workload == "W2":
        query = systems.operation("W2_staff_list")
        return [systems.body(query, {"district": r["id"]}) for r in await conn.fetch(
            "SELECT id FROM members.organizations WHERE level = 'DISTRICT' ORDER BY id")]
    query = systems.operation("W1_member_page")
    return [systems.body(query, {"id": r["member_id"]}) for r in await conn.fetch(
        "SELECT member_id FROM claims.claims GROUP BY member_id ORDER BY count(*) DESC, member_id LIMIT 200")]


def _count(tree: Path, *, env: dict[str, str], key: str, bodies: list[bytes], args: argparse.Namespace,
           logs: Path) -> float:
    """Serve `tree` under callgrind, send the warm-up, count `args.requests` requests; instructions a request."""
    out_dir = Path(tempfile.mkdtemp(prefix="callgrind-"))
    port = systems.free_port()
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "gateway-callgrind.log", "wb")
    # cwd first on sys.path: `python -m gateway` runs the tree's own code, whatever is installed.
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/callgrind.%p",
         sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    gateway = systems.Server(name="gateway-callgrind", proc=proc, base_url=f"http://127.0.0.1:{port}",
                             log_path=logs / "gateway-callgrind.log")
    try:
        systems.wait_for(gateway.base_url + "/readyz", seconds=600, proc=proc)
        url = gateway.base_url + "/graphql"
        _send(url, bodies, key, args.warmup)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
        result = _send(url, bodies, key, args.requests)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
        if result["errors"]:
            raise RuntimeError(f"{tree}: {result['errors']} of the counted requests failed: "
                               f"{result.get('error_samples')}")
        dump = _wait_for_dump(out_dir, proc.pid)
        totals = re.search(r"^summary:\s*(\d+)", dump.read_text(), re.MULTILINE)
        if totals is None:
            raise RuntimeError(f"no summary in {dump}")
        return int(totals.group(1)) / args.requests
    finally:
        gateway.stop()
        shutil.rmtree(out_dir, ignore_errors=True)


def _send(url: str, bodies: list[bytes], key: str, requests: int) -> dict:
    """`requests` requests, four at a time, through bench.load in its own process."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as fh:
        fh.write(b"\n".join(bodies) + b"\n")
    try:
        out = subprocess.run([sys.executable, "-m", "bench.load", url, fh.name, "--concurrency", "4", "--warmup", "0",
                              "--duration", "3600", "--max-requests", str(requests),
                              "--header", f"authorization:Bearer {key}"],
                             cwd=systems.REPO, capture_output=True, text=True, check=True)
    finally:
        os.unlink(fh.name)
    return json.loads(out.stdout)


def _wait_for_dump(out_dir: Path, pid: int) -> Path:
    """The dump callgrind_control asked for (callgrind.PID.1), once written."""
    path = out_dir / f"callgrind.{pid}.1"
    for _ in range(600):
        if path.exists() and "summary:" in path.read_text(errors="replace"):
            return path
        time.sleep(0.1)
    raise RuntimeError(f"callgrind wrote no dump to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
