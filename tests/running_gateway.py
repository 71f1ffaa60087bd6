"""The gateway on a real loopback socket: in this process (spans, metrics) or as `union-gateway serve`."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx
import uvicorn

from commands.apikeys import create as create_key

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class InProcessGateway:
    url: str
    app: object
    server: uvicorn.Server


@asynccontextmanager
async def in_process_gateway(settings, urls: dict[str, str]) -> AsyncIterator[InProcessGateway]:
    """create_app() served by uvicorn in a task of the test's loop; stopped on exit."""
    from gateway import Runtime, create_app

    app = create_app(Runtime(settings=settings, urls=urls))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning",
                            access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the gateway stopped before it listened")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield InProcessGateway(url=f"http://127.0.0.1:{port}", app=app, server=server)
    finally:
        server.should_exit = True
        await task


@dataclass
class ServeProcess:
    """`union-gateway serve` in a child process."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM (a drained stop), then SIGKILL if it has not exited within 10 s."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def start_serve(database_url: str, log_path: Path, *, env: dict[str, str] | None = None,
                      timeout: float = 30.0, args: tuple[str, ...] = (), port: int | None = None) -> ServeProcess:
    """Start `union-gateway serve` on a free port against `database_url`; returns once /readyz says ready."""
    port = port or free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("UNION_GATEWAY_", "OTEL_"))}
    child_env.update({"UNION_GATEWAY_DATABASE_URL": database_url, "UNION_GATEWAY_HOME": str(log_path.parent),
                      **(env or {})})
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "import gateway; gateway.cli()", "serve", "--host", "127.0.0.1", "--port", str(port),
         *args],
        cwd=REPO, env=child_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log_file.close()
    running = ServeProcess(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"union-gateway serve exited {process.returncode}:\n{running.log()}")
            try:
                if (await client.get(f"{running.url}/readyz")).status_code == 200:
                    return running
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                running.stop()
                raise RuntimeError(f"union-gateway serve did not get ready:\n{running.log()}")
            await asyncio.sleep(0.1)


async def api_key(database_url: str, *, scopes: str, org: str = "city") -> str:
    """A fresh key for `org` with `scopes` (comma-separated)."""
    _, secret = await create_key(database_url, name="observability tests", org=org, scopes=scopes)
    return secret
