"""`union-gateway sweep [--since DATETIME]`: one proactive sweep against the configured systems."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Console

if TYPE_CHECKING:
    from gateway import Runtime

SHANGHAI = ZoneInfo("Asia/Shanghai")


def parse_since(value: str | None) -> datetime | None:
    """ISO 8601 date or date-time; without an offset it is Asia/Shanghai time."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"--since {value!r} is not an ISO 8601 date or date-time, e.g. 2026-10-01T00:00:00+08:00") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=SHANGHAI)


async def run_sweep(runtime: "Runtime", *, since: datetime | None, console: Console) -> int:
    """Sweep once; returns the exit status (1 when the insurance system cannot be reached)."""
    from resolvers.sweep import sweep_settlements
    from simulator.server import start_simulator
    from sources.database import Databases
    from sources.insurance import InsuranceUnavailable, client_from_settings

    settings = runtime.settings
    simulator = None
    if settings.insurance_url is None:
        # Like `serve`: with no insurance system configured, the built-in simulator stands in.
        simulator = await start_simulator(runtime.urls["simulator"], token=settings.insurance_token)
        settings = settings.model_copy(update={"insurance_url": simulator.url})
    insurance = client_from_settings(settings)
    databases = await Databases(runtime.urls).open(min_size=1, max_size=4)
    try:
        with console.status("sweeping settlements of enrolled members...") as status:
            report = await sweep_settlements(
                databases=databases, insurance=insurance, since=since,
                progress=lambda done, total: status.update(f"swept {done} of {total} members"))
    except InsuranceUnavailable as exc:
        console.print(f"[red]the medical-insurance system cannot be reached: {exc}[/red]; "
                      "nothing is lost, run the sweep again later")
        return 1
    finally:
        await databases.close()
        await insurance.aclose()
        if simulator is not None:
            await simulator.stop()
    console.print(
        f"since {report.since.isoformat()}: {report.members} members in {report.batches} batches, "
        f"{report.settlements} settlements; opened {report.opened} claims ({report.approved} approved, "
        f"{report.rejected} rejected, {report.pending} pending); {report.already_claimed} already claimed, "
        f"{report.not_covered} not covered; {report.pending_decided} pending claims decided")
    return 0
