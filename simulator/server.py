"""Run the simulator on a real socket inside the current event loop (tests, `serve`)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from simulator.admin import SimulatorAdmin
from simulator.app import create_simulator_app
from simulator.faults import Faults, Stats


@dataclass
class RunningSimulator:
    """A simulator serving on host:port until `stop()`."""

    app: Starlette
    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int
    token: str | None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        """The live fault settings (the same object POST /sim/faults changes)."""
        return self.app.state.faults

    @property
    def stats(self) -> Stats:
        """The live request counters (what GET /sim/stats reports)."""
        return self.app.state.stats

    def admin(self) -> SimulatorAdmin:
        """A client of this simulator's /sim/ endpoints (close it, or use `async with`)."""
        return SimulatorAdmin(self.url, token=self.token)

    async def stop(self) -> None:
        """Stop serving and wait until the socket and the pool are closed."""
        self.server.should_exit = True
        await self.task


async def start_simulator(
    database_url: str, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
    faults: Faults | None = None, page_size: int = 100,
) -> RunningSimulator:
    """Start serving in a task of the running loop; returns once the socket listens."""
    app = create_simulator_app(database_url, faults=faults, token=token, page_size=page_size)
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level="warning", access_log=False,
        # Hanging requests would otherwise hold shutdown until their clients give up.
        timeout_graceful_shutdown=1,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(_serve(server), name=f"insurance-simulator:{host}:{port}")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the simulator stopped before it listened")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return RunningSimulator(app=app, server=server, task=task, host=host, port=bound, token=token)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the process it is embedded in.

    Two uvicorn servers in one loop (serve runs the gateway and this) would
    each capture SIGTERM and re-raise it on exit; the host stops us instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process when start-up fails; here that would kill the host's loop.
        raise RuntimeError(f"the simulator failed to start (exit {exc.code})") from None
