"""Writing a bench run: JSON, a Markdown table with ratios, and a plot."""
from __future__ import annotations

import json
import statistics
from pathlib import Path


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def summarize(results: dict) -> dict:
    """Median over rounds, per workload and system."""
    return {w: {s: {k: _median(runs, k) for k in ("throughput", "p50_ms", "p99_ms", "cpu_ms_per_request",
                                                   "peak_rss_mb", "peak_rss_total_mb", "sql_per_request")}
                | {"errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs)}
                for s, runs in systems.items()} for w, systems in results.items()}


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "n/a"


def targets(summary: dict, intake: dict | None) -> list[tuple[str, str, bool | None]]:
    """The issue's targets: (what, measured, met)."""
    out = []
    w2 = summary.get("W2", {})
    gw, pg, n1, floor = (w2.get(s, {}) for s in ("gateway", "postgraphile", "gateway-n+1", "floor"))
    if gw and pg:
        r = gw["throughput"] / pg["throughput"]
        out.append(("W2 throughput ≥ 1.0× PostGraphile v4", f"{r:.2f}×", r >= 1.0))
    if gw and n1:
        r = gw["throughput"] / n1["throughput"]
        out.append(("W2 throughput ≥ 10× the N+1 baseline", f"{r:.2f}×", r >= 10))
    for w in ("W1", "W2"):
        g, f = summary.get(w, {}).get("gateway"), summary.get(w, {}).get("floor")
        if g and f:
            r = g["p50_ms"] / f["p50_ms"]
            out.append((f"{w} p50 ≤ 2× the hand-written floor", f"{r:.2f}×", r <= 2))
    w3 = summary.get("W3", {}).get("gateway")
    if w3:
        out.append(("W3 p50 under 200 ms", f"{w3['p50_ms']} ms", w3["p50_ms"] < 200))
    w4 = summary.get("W4", {}).get("gateway")
    if w4:
        ok = intake is not None and not intake["decided_twice"] and not intake["wrong"]
        out.append(("W4 ≥ 300 decided claims/s, all correct, none twice",
                    f"{w4['throughput']}/s, wrong {intake and intake['wrong']}, twice {intake and intake['decided_twice']}",
                    w4["throughput"] >= 300 and ok))
    if gw:
        out.append(("peak RSS under W2 ≤ 250 MB", f"{gw['peak_rss_mb']} MB", gw["peak_rss_mb"] <= 250))
    return out


def markdown(report: dict, summary: dict) -> str:
    m = report["machine"]
    lines = [f"# union-gateway benchmark, {report['generated_at']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, {m['platform']}.",
             f"Settings: {report['settings']['members']} members, concurrency {report['settings']['concurrency']}, "
             f"{report['settings']['duration']} s per round after {report['settings']['warmup']} s warm-up, "
             f"{report['settings']['rounds']} interleaved rounds (medians); "
             f"{report['settings'].get('workers') or 1} server process(es) per system.", "",
             "| workload | system | req/s | p50 ms | p99 ms | CPU ms/req | peak RSS MB | SQL/req | errors | vs gateway (req/s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for w, systems in summary.items():
        ref = systems.get("gateway", {}).get("throughput")
        for s, v in systems.items():
            lines.append(f"| {w} | {s} | {v['throughput']} | {v['p50_ms']} | {v['p99_ms']} | {v['cpu_ms_per_request']} | "
                         f"{v['peak_rss_mb']} | {v['sql_per_request'] if v['sql_per_request'] is not None else 'n/a'} | "
                         f"{v['errors']} | {_ratio(ref, v['throughput']) if s != 'gateway' else '—'} |")
    page_load = report.get("page_load") or {}
    if page_load:
        lines += ["", "## A page one request at a time", "",
                  "How fast W1 and W2 load when nothing queues (concurrency 1); the table above is under load.", "",
                  "| workload | system | p50 ms | p99 ms | p50 vs floor |", "|---|---|---|---|---|"]
        for w, by_system in page_load.items():
            floor = by_system.get("floor", {}).get("p50_ms")
            for s, v in by_system.items():
                lines.append(f"| {w} | {s} | {v['p50_ms']} | {v['p99_ms']} | {_ratio(v['p50_ms'], floor)} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for what, measured, met in targets(summary, report.get("intake_check")):
        lines.append(f"| {what} | {measured} | {'yes' if met else 'NO'} |")
    if report.get("problems"):
        lines += ["", "## Problems", ""] + [f"- {p}" for p in report["problems"]]
    lines += ["", "CPU is the server's own (user+system of its processes together); PostgreSQL's CPU is shared by "
              "all systems and not counted. Peak RSS is the largest one process held (the target is per process). "
              "PostGraphile's W1 omits the insurance settlements it cannot fetch.", ""]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    workloads = list(summary)
    names = sorted({s for v in summary.values() for s in v}, key=lambda s: (s != "gateway", s))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        xs = [j + i * width for j, w in enumerate(workloads) if name in summary[w]]
        ys = [summary[w][name]["throughput"] for w in workloads if name in summary[w]]
        ax.bar(xs, ys, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(workloads))], workloads)
    ax.set_ylabel("requests per second")
    ax.set_yscale("log")
    ax.set_title("Throughput per workload and system (log scale)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(report["results"])
    report = {**report, "summary": summary}
    (out / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    (out / "latest.md").write_text(markdown(report, summary))
    plot(summary, out / "throughput.png")
