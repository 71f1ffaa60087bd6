"""The medical-insurance source: the three batch calls of medical-insurance.yaml over httpx.

One client per process keeps one connection pool. Every call is a batch of at
most 200 keys; larger requests are split into chunks. Calls are reads, so all
of them are retried on timeouts, connection errors, 429 and 5xx-unavailable
answers, with exponential backoff and full jitter (or the server's
Retry-After). A circuit breaker stops calling after repeated failures.
Request bodies carry national ids, so they are never logged.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import httpx
from opentelemetry import propagate

from sources.circuit_breaker import BreakerState, CircuitBreaker
from sources.observability import insurance_call_hook
from sources.insurance_records import Coverage, InsuranceUnavailable, Settlement
from sources.settings import Settings

__all__ = [
    "BATCH_LIMIT", "CallRecord", "CircuitBreaker", "Coverage", "InsuranceClient", "InsuranceStats",
    "InsuranceUnavailable", "Settlement", "client_from_settings",
]

log = logging.getLogger(__name__)

#: Keys per request, as the contract allows.
BATCH_LIMIT = 200

SETTLEMENTS_BATCH_GET = "/v1/settlements/batch-get"
SETTLEMENTS_SEARCH = "/v1/settlements/search"
COVERAGE_BATCH_GET = "/v1/coverage/batch-get"

#: Answers that mean "not now, try again": the request itself was fine.
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Transport failures worth another attempt; anything else is our own bug.
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
#: A search that pages more than this is not going to end.
_MAX_PAGES = 10_000

T = TypeVar("T")


@dataclass
class InsuranceStats:
    """Counters since the client was made; read by metrics."""

    calls: int = 0  # logical requests (one per chunk and page), including refused ones
    attempts: int = 0  # HTTP requests sent
    retries: int = 0  # attempts after the first
    failures: int = 0  # calls that ended in InsuranceUnavailable after reaching the wire
    rejected: int = 0  # calls refused at once by the open breaker


@dataclass(frozen=True)
class CallRecord:
    """One finished call, for metrics and tracing hooks."""

    path: str
    status: int | None  # last HTTP status; None for a transport failure or a refused call
    seconds: float
    attempts: int  # 0 when the breaker refused the call
    ok: bool


class InsuranceClient:
    """Client of the medical-insurance interface; share one per process."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        timeout: float = 2.0,
        max_attempts: int = 4,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.1,
        backoff_max: float = 2.0,
        max_retry_after: float = 10.0,
        on_call: Callable[[CallRecord], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        headers = {"Accept": "application/json", "User-Agent": "union-gateway"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout), transport=transport
        )
        self.max_attempts = max_attempts
        self.breaker = breaker or CircuitBreaker()
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        #: Longer Retry-After values are not waited out: the call fails instead,
        #: since a request cannot sensibly stall that long.
        self.max_retry_after = max_retry_after
        self.on_call = on_call
        self.stats = InsuranceStats()
        self._rng = rng or random.Random()

    @property
    def breaker_state(self) -> BreakerState:
        """"closed", "open" or "half_open"."""
        return self.breaker.state

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ----------------------------------------------------------------- the three calls

    async def get_settlements(self, ids: Sequence[str]) -> dict[str, Settlement]:
        """Settlements by id; ids the system does not know are absent from the result."""
        unique = list(dict.fromkeys(ids))

        async def chunk(part: list[str]) -> list[Settlement]:
            body = await self._post(SETTLEMENTS_BATCH_GET, {"ids": part})
            return _parse(SETTLEMENTS_BATCH_GET, lambda: [Settlement.from_json(r) for r in body["records"]])

        found: dict[str, Settlement] = {}
        for records in await self._fan_out(chunk, _chunks(unique)):
            found.update((record.settlement_id, record) for record in records)
        return found

    async def search_settlements(self, national_ids: Sequence[str], settled_since: datetime) -> list[Settlement]:
        """Every settlement of these people settled at or after `settled_since`, oldest first."""
        if settled_since.tzinfo is None:
            raise ValueError("settled_since must be timezone-aware")
        since = settled_since.isoformat()
        unique = list(dict.fromkeys(national_ids))

        async def chunk(part: list[str]) -> list[Settlement]:
            records: list[Settlement] = []
            token: str | None = None
            for _ in range(_MAX_PAGES):
                request: dict[str, Any] = {"national_ids": part, "settled_since": since}
                if token is not None:
                    request["page_token"] = token
                body = await self._post(SETTLEMENTS_SEARCH, request)
                records.extend(_parse(SETTLEMENTS_SEARCH, lambda: [Settlement.from_json(r) for r in body["records"]]))
                next_token = body.get("next_page_token")
                if next_token is None:
                    return records
                if not isinstance(next_token, str) or next_token == token:
                    raise InsuranceUnavailable("search returned a bad page token", path=SETTLEMENTS_SEARCH)
                token = next_token
            raise InsuranceUnavailable("search did not end", path=SETTLEMENTS_SEARCH)

        by_id: dict[str, Settlement] = {}
        for records in await self._fan_out(chunk, _chunks(unique)):
            by_id.update((record.settlement_id, record) for record in records)
        return sorted(by_id.values(), key=lambda s: (s.settled_at.astimezone(timezone.utc), s.settlement_id))

    async def get_coverage(self, national_ids: Sequence[str], on: date) -> dict[str, Coverage]:
        """Whether each person is insured on `on`; the system answers for unknown people too."""
        unique = list(dict.fromkeys(national_ids))

        async def chunk(part: list[str]) -> list[Coverage]:
            body = await self._post(COVERAGE_BATCH_GET, {"national_ids": part, "on": on.isoformat()})
            return _parse(COVERAGE_BATCH_GET, lambda: [Coverage.from_json(c) for c in body["coverage"]])

        found: dict[str, Coverage] = {}
        for entries in await self._fan_out(chunk, _chunks(unique)):
            found.update((entry.national_id, entry) for entry in entries)
        return found

    # ----------------------------------------------------------------- machinery

    async def _fan_out(self, call: Callable[[list[str]], Awaitable[T]], chunks: list[list[str]]) -> list[T]:
        """Run one call per chunk concurrently; any failure fails the whole request."""
        if not chunks:
            return []
        results: list[T] = []
        if self.breaker.state != "closed":
            # Only one probe may pass a half-open breaker: send one chunk first,
            # so the others follow if it closes the breaker.
            results.append(await call(chunks[0]))
            chunks = chunks[1:]
        if len(chunks) == 1:
            results.append(await call(chunks[0]))
            return results
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(call(part)) for part in chunks]
        except BaseExceptionGroup as failed:
            if all(isinstance(exc, InsuranceUnavailable) for exc in failed.exceptions):
                raise failed.exceptions[0] from None
            raise
        results.extend(task.result() for task in tasks)
        return results

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One logical call: breaker, attempts with backoff, counters and the hook."""
        self.stats.calls += 1
        if not self.breaker.allow():
            self.stats.rejected += 1
            self._report(CallRecord(path=path, status=None, seconds=0.0, attempts=0, ok=False))
            raise InsuranceUnavailable("circuit breaker open", path=path)
        started = time.perf_counter()
        attempts = 0
        status: int | None = None
        try:
            while True:
                attempts += 1
                self.stats.attempts += 1
                # W3C trace context for 医保's logs; httpx's instrumentation, when an
                # exporter is on, replaces it with its own span's.
                headers: dict[str, str] = {}
                propagate.inject(headers)
                try:
                    response = await self._http.post(path, json=payload, headers=headers)
                except _RETRY_ERRORS as exc:
                    status, reason, delay = None, type(exc).__name__, self._backoff(attempts)
                except httpx.HTTPError as exc:
                    status = None
                    raise InsuranceUnavailable(f"request failed: {type(exc).__name__}", path=path) from exc
                else:
                    status = response.status_code
                    if status == 200:
                        body = _json_object(response, path)
                        break
                    if status not in _RETRY_STATUSES:
                        raise InsuranceUnavailable(f"HTTP {status}", path=path, status=status)
                    reason = f"HTTP {status}"
                    delay = self._delay(response, attempts, path)
                if attempts >= self.max_attempts:
                    raise InsuranceUnavailable(f"{reason} after {attempts} attempts", path=path, status=status)
                self.stats.retries += 1
                await asyncio.sleep(delay)
        except InsuranceUnavailable as exc:
            self.stats.failures += 1
            self.breaker.record_failure()
            log.warning("insurance call %s failed after %d attempt(s): %s", path, attempts, exc)
            self._report(CallRecord(path, status, time.perf_counter() - started, attempts, ok=False))
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        self._report(CallRecord(path, status, time.perf_counter() - started, attempts, ok=True))
        return body

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base·2^(attempt-1))], so retries spread out."""
        return self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))

    def _delay(self, response: httpx.Response, attempt: int, path: str) -> float:
        """The server's Retry-After when it sent one, else our backoff."""
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return self._backoff(attempt)
        if retry_after > self.max_retry_after:
            raise InsuranceUnavailable(
                f"HTTP {response.status_code} with Retry-After {retry_after:.0f}s", path=path,
                status=response.status_code,
            )
        return retry_after

    def _report(self, record: CallRecord) -> None:
        if self.on_call is None:
            return
        try:
            self.on_call(record)
        except Exception:  # noqa: BLE001 - a broken metrics hook must not fail the call
            log.exception("insurance on_call hook failed")


def client_from_settings(settings: Settings, *, base_url: str | None = None,
                         transport: httpx.AsyncBaseTransport | None = None) -> InsuranceClient:
    """The process's client, configured from OPERATOR.md's variables."""
    url = base_url or settings.insurance_url
    if url is None:
        raise ValueError("no insurance URL: set UNION_GATEWAY_INSURANCE_URL or start the simulator")
    breaker = CircuitBreaker(
        failure_threshold=settings.insurance_breaker_threshold,
        reset_timeout=settings.insurance_breaker_cooldown_seconds,
    )
    return InsuranceClient(
        base_url=url, token=settings.insurance_token, timeout=settings.insurance_timeout_seconds,
        max_attempts=settings.insurance_max_attempts, breaker=breaker, transport=transport,
        on_call=insurance_call_hook,
    )


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i:i + BATCH_LIMIT] for i in range(0, len(keys), BATCH_LIMIT)]


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise InsuranceUnavailable("answer is not JSON", path=path, status=response.status_code) from exc
    if not isinstance(body, dict):
        raise InsuranceUnavailable("answer is not a JSON object", path=path, status=response.status_code)
    return body


def _parse(path: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except (KeyError, TypeError, ValueError) as exc:
        raise InsuranceUnavailable(f"malformed answer: {exc}", path=path) from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
