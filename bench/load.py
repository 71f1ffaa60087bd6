"""An HTTP load generator, closed-loop by default, run as its own process.

It is not the thing measured: the bench runs it in a separate process so
that its CPU is not charged to the server. Each of `concurrency` workers
keeps one keep-alive connection and sends the next request as soon as the
previous answered; requests cycle through the given bodies. Results after
the warm-up count.

With `--rate R` it is open-loop instead: request k is due at k/R seconds
(R a second in all, spread over the workers), whatever the server's pace,
so a slow server cannot slow the offered load down. A request sent more than
`--late-ms` after it was due (every worker was still waiting for an answer)
is still sent and counted as late; its latency is measured from when it was
due, so the wait is not hidden (no coordinated omission).

    python -m bench.load URL BODIES.jsonl --concurrency 8 --warmup 2 --duration 10 [--header K:V]
    python -m bench.load URL BODIES.jsonl --rate 50 --concurrency 64 --duration 600 --records R.csv --progress 60

Prints one JSON object: requests, errors, throughput, p50/p99 (ms), and
the first response body for checking; open-loop adds offered, late and lag.
`--records` writes one CSV line per request (body index, due/sent/done
seconds from the start, status, error) for time series.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from typing import TextIO

from bench.http_client import Http1Connection, HttpError


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
              warmup: float, duration: float, max_requests: int | None = None, rate: float | None = None,
              late_ms: float = 50.0, records: TextIO | None = None, progress: float = 0.0) -> dict:
    start = time.perf_counter()
    start_epoch = time.time()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    late = 0
    error_samples: list[str] = []
    first_body: bytes | None = None
    sent = 0
    done = 0
    counter = 0
    rows: list[str] = []

    async def worker(index: int) -> None:
        nonlocal errors, first_body, sent, counter, late, done
        client = Http1Connection(url, headers, timeout=30.0)
        try:
            while True:
                now = time.perf_counter()
                if max_requests is not None and sent >= max_requests:
                    return
                if rate is None:
                    if now >= stop_at:
                        return
                    due = now
                else:
                    due = start + counter / rate
                    if due >= stop_at:
                        return
                k = counter
                body = bodies[k % len(bodies)]
                counter += 1
                sent += 1
                if due > now:
                    await asyncio.sleep(due - now)
                t0 = time.perf_counter()
                try:
                    status, content = await client.post(body)
                except HttpError as exc:
                    status, content = 0, str(exc).encode()
                t1 = time.perf_counter()
                done += 1
                if first_body is None and status == 200:
                    first_body = content
                failed = _is_error(status, content)
                if records is not None:
                    rows.append(f"{k},{due - start:.6f},{t0 - start:.6f},{t1 - start:.6f},{status},{int(failed)}")
                # Open-loop latency runs from when the request was due, so time spent
                # waiting for a free worker counts against the server, not nobody.
                begin = t0 if rate is None else due
                if begin >= measure_from or max_requests is not None:
                    latencies.append(t1 - begin)
                    if rate is not None:
                        lags.append(t0 - due)
                        if t0 - due > late_ms / 1000:
                            late += 1
                    if failed:
                        errors += 1
                        if len(error_samples) < 3:
                            # The errors, not the data before them, say what went wrong.
                            at = max(content.find(b'"errors"'), 0)
                            error_samples.append(f"{status} " + content[at:at + 500].decode(errors="replace"))
        finally:
            await client.close()

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(progress)
            print(f"load: {time.perf_counter() - start:.0f} s, {done} answered, {sent - done} sent or waiting for their time, "
                  f"{errors} errors, {late} late", file=sys.stderr, flush=True)

    measured_start = time.perf_counter()
    reporter = asyncio.create_task(report_progress()) if progress > 0 else None
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    if reporter is not None:
        reporter.cancel()
    elapsed = (time.perf_counter() - max(measure_from, measured_start)) if max_requests is None else (
        time.perf_counter() - measured_start)
    if records is not None:
        records.write("index,due_s,sent_s,done_s,status,error\n")
        records.write("".join(row + "\n" for row in rows))
    latencies.sort()
    result = {
        "requests": len(latencies),
        "errors": errors,
        "error_samples": error_samples,
        "seconds": round(elapsed, 3),
        "throughput": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "start_epoch": start_epoch,
        "first_body": first_body.decode() if first_body else None,
    }
    if rate is not None:
        lags.sort()
        result |= {
            "mode": "open", "rate": rate,
            "offered": len(lags),
            "late": late, "late_ms": late_ms,
            "p99_lag_ms": round(_percentile(lags, 0.99) * 1000, 2) if lags else None,
            "max_lag_ms": round(lags[-1] * 1000, 2) if lags else None,
        }
    return result


def _run_loop(coro):
    """asyncio.run on uvloop when installed (it comes with uvicorn[standard]): a cheaper loop leaves more
    of the shared CPU to the systems measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("bodies", help="a file with one JSON request body per line")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=None, help="stop after this many (smoke mode)")
    parser.add_argument("--header", action="append", default=[], help="K:V, repeatable")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: requests a second in all, spread over the workers (default: closed loop)")
    parser.add_argument("--late-ms", type=float, default=50.0, help="open loop: a request sent later than this is late")
    parser.add_argument("--records", default=None, help="write one CSV line per request to this file")
    parser.add_argument("--progress", type=float, default=0.0, help="print progress to stderr every this many seconds")
    args = parser.parse_args()
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        parser.error("--rate must be a positive number of requests a second")
    with open(args.bodies, "rb") as fh:
        bodies = [line.rstrip(b"\n") for line in fh if line.strip()]
    headers = dict(h.split(":", 1) for h in args.header)
    records = open(args.records, "w") if args.records else None
    try:
        result = _run_loop(run(args.url, bodies, headers=headers, concurrency=args.concurrency,
                                 warmup=args.warmup, duration=args.duration, max_requests=args.max_requests,
                                 rate=args.rate, late_ms=args.late_ms, records=records, progress=args.progress))
    finally:
        if records is not None:
            records.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
