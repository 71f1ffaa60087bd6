"""Claim changes as they commit, from PostgreSQL LISTEN/NOTIFY on the claims database.

Every write of a claim sends `NOTIFY claim_updated, '<claim id>'` inside its
transaction (sources/claims_store.py), so PostgreSQL delivers it only on
commit, to every listening replica. Each process keeps ONE listening
connection (not one per subscriber) and fans the ids out to its
subscribers' queues. The connection is re-opened when it drops; changes
committed while it is down are not replayed (subscribers see later ones).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from sources.claims_store import CLAIM_UPDATED_CHANNEL

log = logging.getLogger(__name__)

#: A subscriber that falls this far behind loses the oldest ids, not the process's memory.
QUEUE_LIMIT = 1000


class ClaimUpdates:
    """The process's listener on `claim_updated`, and its subscribers."""

    def __init__(self, url: str, *, reconnect_seconds: float = 1.0, ping_seconds: float = 15.0) -> None:
        self._url = url
        self._reconnect_seconds = reconnect_seconds
        self._ping_seconds = ping_seconds
        self._subscribers: set[asyncio.Queue[int]] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self, *, wait_seconds: float = 5.0) -> "ClaimUpdates":
        """Begin listening; waits a little for the first connection but never fails start-up on it."""
        self._task = asyncio.create_task(self._run(), name="claim-updates-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), wait_seconds)
        return self

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue receiving the id of every claim changed from now on, until the block ends."""
        queue: asyncio.Queue[int] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _deliver(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            claim_id = int(payload)
        except ValueError:
            log.warning("ignored a %s notification that is not a claim id", channel)
            return
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(claim_id)

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    self._url, server_settings={"application_name": "union-gateway/claims-listener"})
                conn.add_termination_listener(lambda _conn: lost.set())
                await conn.add_listener(CLAIM_UPDATED_CHANNEL, self._deliver)
                self.listening.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._ping_seconds)
                    if not lost.is_set():
                        # A half-open TCP connection never reports itself: ask.
                        await asyncio.wait_for(conn.execute("SELECT 1"), self._ping_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect after a pause
                log.warning("claim update listener lost its connection: %s", type(exc).__name__)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(self._reconnect_seconds)
