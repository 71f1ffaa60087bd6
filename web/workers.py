"""`serve --workers N`: N gateway processes answering on one port.

One Python process runs one request's Python at a time: on a machine with
several cores, one gateway process leaves the others to PostgreSQL and the
kernel while its own core saturates (a staff list is ~5 ms of Python). N
worker processes, each with its own event loop and pools, listen on the
same port with SO_REUSEPORT: the kernel spreads connections evenly over
their sockets. (One socket shared by all, as uvicorn and gunicorn do, lets
whichever worker wakes first take most keep-alive connections: measured
here, two workers then served fewer staff lists than one.)

The supervisor (this module, in the `serve` process) keeps what exists once
per replica: the embedded PostgreSQL, migrations, demo data, the built-in
insurance simulator, the directory where the workers' Prometheus
counters meet (prometheus_client's multiprocess mode: /metrics on any worker
reports every worker's counters) and the file where they share each API
key's rate-limit bucket (sources.rate_limit.SharedMemoryRateLimiter), so a
key gets its points once, not once per worker. A worker that dies is
replaced; one that cannot start, or workers dying in a loop, stop the
replica (exit 1) for the orchestrator to restart.

Why not uvicorn's own supervisor (uvicorn.supervisors.Multiprocess): its
workers run a plain uvicorn.Server over an app import string; ours build the
app from the runtime the supervisor resolved and drain on SIGTERM like a
single process does (web.lifecycle.DrainingServer).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("union_gateway.workers")

#: Extra time a stopping worker gets beyond its drain before it is killed.
STOP_GRACE_SECONDS = 5.0
#: The window over which the supervisor counts replaced workers (settings.worker_restarts_per_minute).
RESTART_WINDOW_SECONDS = 60.0
#: prometheus_client reads this variable when it is imported: it must be set before a worker starts.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
RATE_LIMIT_FILE_VARIABLE = "UNION_GATEWAY_RATE_LIMIT_FILE"


def worker_environment(runtime: Any, shared_dir: Path) -> dict[str, str]:
    """What a worker's Settings must read: every URL the supervisor resolved, and the shared files.

    A worker never starts PostgreSQL or the simulator itself: it is given
    their URLs, so it connects to the supervisor's.
    """
    from sources.settings import SOURCES

    env = {f"UNION_GATEWAY_{source.upper()}_DATABASE_URL": runtime.urls[source] for source in SOURCES}
    env["UNION_GATEWAY_SIMULATOR_DATABASE_URL"] = runtime.urls["simulator"]
    if runtime.settings.insurance_url:
        env["UNION_GATEWAY_INSURANCE_URL"] = str(runtime.settings.insurance_url)
    env[METRICS_DIR_VARIABLE] = str(shared_dir / "metrics")
    env[RATE_LIMIT_FILE_VARIABLE] = str(shared_dir / "rate-limit.buckets")
    return env


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A private directory for the workers' metrics and rate-limit files, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="union-gateway-workers-"))
    (path / "metrics").mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that other workers' sockets share (SO_REUSEPORT).

    Linux only lets processes of the same user join the group, so no other
    user can take a share of the traffic.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)  # uvicorn's default backlog
    sock.setblocking(False)
    return sock


class Worker:
    """One worker process, and whether it ever got to serve."""

    def __init__(self, host: str, port: int) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop, locks or pools
        self.serving = context.Event()
        self.announced = False
        self.process = context.Process(target=run_worker, args=(host, port, self.serving),
                                       name="union-gateway-worker", daemon=False)
        self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid


async def supervise(runtime: Any, *, host: str, port: int, workers: int) -> None:
    """Run `workers` worker processes until SIGTERM or SIGINT, then drain and stop them."""
    from sources.rate_limit import SharedMemoryRateLimiter

    with shared_directory() as shared:
        env = worker_environment(runtime, shared)
        SharedMemoryRateLimiter.create(env[RATE_LIMIT_FILE_VARIABLE])
        # Spawned workers inherit the environment: the metrics directory must be there before
        # their prometheus_client is imported, which happens before any of our code runs.
        os.environ.update(env)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        running = [Worker(host, port) for _ in range(workers)]
        log.info("started %d workers", workers, extra={"pids": [w.pid for w in running]})
        restarts: collections.deque[float] = collections.deque()
        most_restarts = runtime.settings.worker_restarts_per_minute
        failed = False
        try:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
                for index, worker in enumerate(running):
                    if worker.serving.is_set() and not worker.announced:
                        worker.announced = True
                        log.info("worker %s serving", worker.pid)
                    if stop.is_set() or worker.process.is_alive():
                        continue
                    _forget_metrics_of(worker.pid)
                    if not worker.serving.is_set():
                        # It never served: the port, a database or the settings are wrong, and
                        # another worker would fail the same way.
                        log.error("worker %s exited with %s while starting; stopping",
                                  worker.pid, worker.process.exitcode)
                        failed = True
                        stop.set()
                        break
                    now = time.monotonic()
                    restarts.append(now)
                    while restarts and restarts[0] < now - RESTART_WINDOW_SECONDS:
                        restarts.popleft()
                    if len(restarts) > most_restarts:
                        # Workers that keep dying are a broken deployment, not bad luck: stop, and
                        # let the orchestrator restart the replica with its own backoff.
                        log.error("worker %s died (exit %s), the %d-th replaced in a minute; stopping",
                                  worker.pid, worker.process.exitcode, len(restarts))
                        failed = True
                        stop.set()
                        break
                    log.warning("worker %s died (exit %s); starting another", worker.pid, worker.process.exitcode)
                    running[index] = Worker(host, port)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await _stop_all(running, drain_seconds=runtime.settings.drain_seconds)
        if failed:
            raise SystemExit(1)


async def _stop_all(running: list[Worker], *, drain_seconds: float) -> None:
    """SIGTERM each worker (it drains, as one process would), then wait; kill what outlives its drain."""
    for worker in running:
        if worker.process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + drain_seconds + STOP_GRACE_SECONDS
    while any(w.process.is_alive() for w in running) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for worker in running:
        if worker.process.is_alive():
            log.warning("worker %s did not stop in time; killing it", worker.pid)
            worker.process.kill()
        worker.process.join()


def _forget_metrics_of(pid: int | None) -> None:
    """A dead worker's live gauges leave with it; its counters stay in the totals (counters never go down)."""
    if pid is None:
        return
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def run_worker(host: str, port: int, serving: Any = None) -> None:
    """A worker's main: the same app and draining server as `serve` with one process, on its share of the port."""
    from gateway import _event_loop_factory, _exit_cleanly, _settle_garbage_collector, create_app, open_runtime
    from sources.settings import Settings
    from web.lifecycle import make_server
    from web.logging import configure_logging
    from web.observability import drain_of

    settings = Settings()
    configure_logging(level=settings.log_level)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # Ctrl-C reaches the whole process group; while starting, leave it to the supervisor
    # (it sends SIGTERM). Once serving, uvicorn's own handlers drain on either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = reuse_port_socket(host, port)  # a taken port fails here, while starting: the supervisor stops
    with open_runtime(settings) as runtime:
        app = create_app(runtime)
        server = make_server(app, drain=drain_of(app.state.gateway), host=host, port=port,
                             drain_seconds=settings.drain_seconds)
        _settle_garbage_collector()
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            runner.run(_serve_and_tell(server, sock, serving))


async def _serve_and_tell(server: Any, sock: socket.socket, serving: Any) -> None:
    """Serve on `sock`, setting `serving` once uvicorn has started (lifespan done, listening)."""
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started and serving is not None:
        serving.set()
    await task
