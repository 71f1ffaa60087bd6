"""The systems the bench compares, each a server process on loopback."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OPERATIONS = BENCH_DIR / "operations"
POSTGRAPHILE_DIR = BENCH_DIR / "postgraphile"


#: Every system runs one process per core, each with its own pools, and idle pools keep their
#: connections: two gateways' workers (4 sources × 10), the floor's and PostGraphile's exceed
#: PostgreSQL's default of 100 on a 2-core machine.
MAX_CONNECTIONS = 400


def embedded_postgres(pgdata: Path) -> tuple[str, object]:
    """(admin URL, server) of a PostgreSQL kept in `pgdata`, started if need be, taking MAX_CONNECTIONS."""
    import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    if int(server.psql("SHOW max_connections;").split()[2]) < MAX_CONNECTIONS:
        from pgserver.postgres_server import pg_ctl

        server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
        # pg_ctl restart starts it again with the options it was started with (postmaster.opts).
        pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata.resolve(), user=server.system_user)
        # The handle must know the new postmaster, or it cannot stop it when the bench ends.
        server.ensure_postgres_running()
    return server.get_uri(), server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, *, seconds: float = 90, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@dataclass
class Server:
    """A started server process and how to reach it."""

    name: str
    proc: subprocess.Popen
    base_url: str
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def process(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(name: str, args: list[str], *, env: dict[str, str], port: int, health: str, logs: Path,
          cwd: Path = REPO) -> Server:
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(args, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + health, proc=proc)
    except BaseException as exc:  # SIGTERM's SystemExit too: the caller has no handle on it yet to stop
        Server(name=name, proc=proc, base_url=base, log_path=log_path).stop()  # SIGTERM: its workers go too
        if not isinstance(exc, Exception):
            raise
        raise RuntimeError(f"{name} did not start; see {log_path}:\n{log_path.read_text(errors='replace')[-3000:]}")
    return Server(name=name, proc=proc, base_url=base, log_path=log_path)


def gateway_cli(*args: str, env: dict[str, str]) -> str:
    """Run `union-gateway ARGS` and return its stdout."""
    out = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO, env={**os.environ, **env},
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"union-gateway {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def start_gateway(name: str, *, env: dict[str, str], logs: Path, batching: bool = True, workers: int = 1) -> Server:
    port = free_port()
    env = {**env, "UNION_GATEWAY_DATALOADER_BATCHING": "true" if batching else "false"}
    return start(name, [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port),
                        "--workers", str(workers)],
                 env=env, port=port, health="/readyz", logs=logs)


def start_simulator(*, env: dict[str, str], logs: Path) -> Server:
    port = free_port()
    return start("insurance-sim", [sys.executable, "-m", "gateway", "insurance-sim", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, port=port, health="/sim/stats", logs=logs)


def start_floor(*, env: dict[str, str], logs: Path, workers: int = 1) -> Server:
    port = free_port()
    return start("floor", [sys.executable, "-m", "bench.floor", "--port", str(port), "--workers", str(workers)],
                 env=env, port=port, health="/stats", logs=logs)


def ensure_postgraphile() -> Path | None:
    """The postgraphile binary, installing the pinned version if node is there."""
    binary = POSTGRAPHILE_DIR / "node_modules" / ".bin" / "postgraphile"
    if binary.exists():
        return binary
    try:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=POSTGRAPHILE_DIR, check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return binary if binary.exists() else None


def start_postgraphile(*, database_url: str, logs: Path, workers: int = 1) -> Server | None:
    binary = ensure_postgraphile()
    if binary is None:
        return None
    port = free_port()
    args = ["node", str(binary), "--connection", database_url, "--schema", "members,claims,bench_pg",
            "--host", "127.0.0.1", "--port", str(port), "--disable-query-log", "--no-setof-functions-contain-nulls",
            "--disable-default-mutations", "--dynamic-json", "--enhance-graphiql"]
    if workers > 1:
        args += ["--cluster-workers", str(workers)]  # PostGraphile's own multi-process mode (node's cluster)
    server = start("postgraphile", args, env={"NODE_ENV": "production"}, port=port, health="/graphql",
                   logs=logs, cwd=POSTGRAPHILE_DIR)
    return server


def operation(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text()


def postgraphile_operation(name: str) -> str:
    return (POSTGRAPHILE_DIR / f"{name}.graphql").read_text()


def body(query: str, variables: dict) -> bytes:
    return json.dumps({"query": query, "variables": variables}, ensure_ascii=False).encode()
