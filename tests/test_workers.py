"""`serve --workers N`: N processes on one port, sharing counters and each key's points; supervised."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import httpx
import psutil
import pytest

from tests.gql import builder  # noqa: F401 - fixture
from tests.running_gateway import free_port, start_serve
from tests.safety import key_with

VIEWER = {"query": "{ viewer { keyId } }"}  # costs 1 point


def workers_of(supervisor_pid: int) -> list[psutil.Process]:
    """The supervisor's live worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process(supervisor_pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone, or a zombie not yet reaped
            pass
    return found


async def wait_until(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_two_workers_share_the_port_the_metrics_and_each_keys_points(
        builder, database_url, tmp_path) -> None:  # noqa: F811
    key = await key_with(builder.conn, rate_points=7, rate_window_seconds=3600)
    gateway = await start_serve(database_url, tmp_path / "serve.log", env={"UNION_GATEWAY_WORKERS": "2"})
    try:
        workers = workers_of(gateway.process.pid)
        assert len(workers) == 2, gateway.log()
        headers = {"Authorization": f"Bearer {key}"}

        # Twenty connections held open at once: the kernel spreads them over both workers' sockets.
        clients = [httpx.AsyncClient(base_url=gateway.url, timeout=10) for _ in range(20)]
        try:
            responses = await asyncio.gather(*(c.post("/graphql", json=VIEWER, headers=headers) for c in clients))
            port = int(gateway.url.rsplit(":", 1)[1])
            held = {w.pid: sum(1 for c in w.net_connections("tcp")
                               if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
                    for w in workers}
            assert all(count > 0 for count in held.values()), held
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

        # One bucket for the key, not one per worker: exactly its 7 points are admitted.
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 7 + [429] * 13
        # Whichever worker answers /metrics reports both workers' counts.
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            text = (await client.get("/metrics")).text
        assert metric(text, 'union_gateway_http_responses_total{route="/graphql",status="200"}') == 7
        assert metric(text, 'union_gateway_http_responses_total{route="/graphql",status="429"}') == 13
    finally:
        gateway.stop()
    assert gateway.process.returncode == 0, gateway.log()


async def test_a_dead_worker_is_replaced_and_sigterm_stops_every_worker(builder, database_url, tmp_path) -> None:  # noqa: F811
    key = await key_with(builder.conn)
    gateway = await start_serve(database_url, tmp_path / "serve.log", args=("--workers", "2"))
    try:
        first, second = workers_of(gateway.process.pid)
        await wait_until(lambda: gateway.log().count('serving"') == 2)
        os.kill(first.pid, signal.SIGKILL)
        await wait_until(lambda: {p.pid for p in workers_of(gateway.process.pid)} - {first.pid, second.pid})
        replacement = next(p for p in workers_of(gateway.process.pid) if p.pid not in (first.pid, second.pid))

        async def answered() -> bool:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                return (await client.post("/graphql", json=VIEWER,
                                          headers={"Authorization": f"Bearer {key}"})).status_code == 200
        deadline = time.monotonic() + 20
        while not all(await asyncio.gather(*(answered() for _ in range(8)))):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert "died" in gateway.log()

        gateway.terminate()
        gateway.process.wait(30)
        assert gateway.process.returncode == 0, gateway.log()
        for worker in (second, replacement):
            assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    finally:
        gateway.stop()


async def test_workers_that_keep_dying_stop_the_supervisor_with_an_error(builder, database_url, tmp_path) -> None:  # noqa: F811
    gateway = await start_serve(database_url, tmp_path / "serve.log", args=("--workers", "2"),
                                env={"UNION_GATEWAY_WORKER_RESTARTS_PER_MINUTE": "1"})
    try:
        await wait_until(lambda: gateway.log().count('serving"') == 2)
        first, second = workers_of(gateway.process.pid)
        os.kill(first.pid, signal.SIGKILL)  # one replacement is allowed
        await wait_until(lambda: gateway.log().count('serving"') == 3)
        replacement = next(p for p in workers_of(gateway.process.pid) if p.pid not in (first.pid, second.pid))
        os.kill(second.pid, signal.SIGKILL)  # a second within the minute is a crash loop
        gateway.process.wait(30)
        assert gateway.process.returncode == 1, gateway.log()
        assert "replaced in a minute; stopping" in gateway.log()
        # The surviving worker was stopped with it, not left behind.
        assert not replacement.is_running() or replacement.status() == psutil.STATUS_ZOMBIE
    finally:
        gateway.stop()


async def test_workers_that_cannot_listen_stop_the_supervisor_with_an_error(database_url, tmp_path) -> None:
    port = free_port()
    with socket.socket() as taken:  # no SO_REUSEPORT: no worker may share it
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(RuntimeError) as failed:
            await start_serve(database_url, tmp_path / "serve.log", args=("--workers", "2"), port=port)
    assert "exited 1" in str(failed.value)
    assert "while starting" in str(failed.value)
