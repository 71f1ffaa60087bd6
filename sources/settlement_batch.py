"""Settlement look-ups of concurrent claim submissions, sent to the insurance system together.

Each submission needs one settlement, and under load many reach that step
within a few turns of the event loop. Their ids go out in one batch call (the
contract takes up to 200 ids a call; the client splits larger batches)
instead of one HTTP request each, which was the largest part of a
submission's CPU. Nobody waits for a batch to fill: the call leaves a few
loop turns after its first id arrived. An idle loop turns in microseconds, so
a lone submission is as fast as before; a busy one spends those turns on
other requests' work, which is when there are ids to gather. Every waiter
gets its own answer, or its own InsuranceUnavailable when the call fails.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

from opentelemetry import trace

from sources.insurance_records import InsuranceUnavailable, Settlement

tracer = trace.get_tracer("union_gateway.settlement")


class SettlementBatcher:
    """Coalesces the get_settlements calls made within `turns` event-loop turns into one call of `client`."""

    def __init__(self, client: Any, *, turns: int = 6) -> None:
        self._client = weakref.ref(client)  # weak: the process-wide registry must not keep a closed client alive
        self.turns = turns
        self._waiting: dict[str, list[_Waiter]] | None = None
        self._calls: set[asyncio.Task[None]] = set()  # held so a running call is not garbage-collected

    async def get(self, settlement_id: str) -> Settlement | None:
        """The settlement, or None when the insurance system does not know it; raises InsuranceUnavailable."""
        loop = asyncio.get_running_loop()
        if self._waiting is None:
            self._waiting = {}
            loop.call_soon(self._send, loop, self.turns)
        future: asyncio.Future[Settlement | None] = loop.create_future()
        self._waiting.setdefault(settlement_id, []).append((future, trace.get_current_span().get_span_context()))
        return await future

    def _send(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        if turns > 1:
            loop.call_soon(self._send, loop, turns - 1)
            return
        waiting, self._waiting = self._waiting or {}, None
        task = asyncio.ensure_future(self._call(waiting))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, waiting: dict[str, list[_Waiter]]) -> None:
        # The call runs in the first waiter's context (its trace); every waiter's span is linked to it.
        links = [trace.Link(ctx) for waiters in waiting.values() for _, ctx in waiters if ctx.is_valid]
        with tracer.start_as_current_span("insurance.settlement_batch", links=links) as span:
            span.set_attribute("batch.size", len(waiting))
            try:
                client = self._client()
                if client is None:
                    raise InsuranceUnavailable("the insurance client was closed")
                found = await client.get_settlements(list(waiting))
            except InsuranceUnavailable as exc:
                for waiters in waiting.values():
                    for future, _ in waiters:
                        # One exception each: a shared instance would pile up tracebacks.
                        error = InsuranceUnavailable(str(exc), path=exc.path, status=exc.status)
                        error.__cause__ = exc
                        _settle(future, error=error)
            except asyncio.CancelledError:
                for waiters in waiting.values():
                    for future, _ in waiters:
                        future.cancel()
                raise
            except Exception as exc:  # a bug: every waiter fails with it rather than waiting forever
                for waiters in waiting.values():
                    for future, _ in waiters:
                        _settle(future, error=exc)
            else:
                for settlement_id, waiters in waiting.items():
                    for future, _ in waiters:
                        _settle(future, result=found.get(settlement_id))


_Waiter = tuple["asyncio.Future[Settlement | None]", trace.SpanContext]


def _settle(future: asyncio.Future[Settlement | None], *, result: Settlement | None = None,
            error: BaseException | None = None) -> None:
    if future.done():  # its submission was cancelled (client gone); the others still get their answer
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_batchers: weakref.WeakKeyDictionary[Any, SettlementBatcher] = weakref.WeakKeyDictionary()


def batcher_for(client: Any) -> SettlementBatcher:
    """The process's batcher over an insurance client (one per client, made on first use)."""
    batcher = _batchers.get(client)
    if batcher is None:
        batcher = _batchers[client] = SettlementBatcher(client)
    return batcher
