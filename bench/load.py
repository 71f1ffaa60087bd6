"""A closed-loop HTTP load generator, run as its own process.

It is not the thing measured: the bench runs it in a separate process so
that its CPU is not charged to the server. Each of `concurrency` workers
keeps one keep-alive connection and sends the next request as soon as the
previous answered; requests cycle through the given bodies. Results after
the warm-up count.

    python -m bench.load URL BODIES.jsonl --concurrency 8 --warmup 2 --duration 10 [--header K:V]

Prints one JSON object: requests, errors, throughput, p50/p99 (ms), and
the first response body for checking.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import httpx


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _is_error(status: int, body: bytes) -> bool:
    if status != 200:
        return True
    return b'"errors"' in body


async def run(url: str, bodies: list[bytes], *, headers: dict[str, str], concurrency: int,
              warmup: float, duration: float, max_requests: int | None = None) -> dict:
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    errors = 0
    error_samples: list[str] = []
    first_body: bytes | None = None
    sent = 0
    counter = 0

    async def worker(index: int) -> None:
        nonlocal errors, first_body, sent, counter
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=30.0, headers=headers) as client:
            while True:
                now = time.perf_counter()
                if now >= stop_at or (max_requests is not None and sent >= max_requests):
                    return
                body = bodies[counter % len(bodies)]
                counter += 1
                sent += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers={"content-type": "application/json"})
                    status, content = response.status_code, response.content
                except httpx.HTTPError as exc:
                    status, content = 0, repr(exc).encode()
                t1 = time.perf_counter()
                if first_body is None and status == 200:
                    first_body = content
                if t0 >= measure_from or max_requests is not None:
                    latencies.append(t1 - t0)
                    if _is_error(status, content):
                        errors += 1
                        if len(error_samples) < 3:
                            error_samples.append(content[:500].decode(errors="replace"))

    measured_start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = (time.perf_counter() - max(measure_from, measured_start)) if max_requests is None else (
        time.perf_counter() - measured_start)
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "error_samples": error_samples,
        "seconds": round(elapsed, 3),
        "throughput": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "first_body": first_body.decode() if first_body else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("bodies", help="a file with one JSON request body per line")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=None, help="stop after this many (smoke mode)")
    parser.add_argument("--header", action="append", default=[], help="K:V, repeatable")
    args = parser.parse_args()
    with open(args.bodies, "rb") as fh:
        bodies = [line.rstrip(b"\n") for line in fh if line.strip()]
    headers = dict(h.split(":", 1) for h in args.header)
    result = asyncio.run(run(args.url, bodies, headers=headers, concurrency=args.concurrency,
                             warmup=args.warmup, duration=args.duration, max_requests=args.max_requests))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
