"""union-gateway: settings → sources → schema → Starlette, lifespan, CLI entry."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import typer
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sources.database import Databases, simulator_url, source_urls
from sources.embedded import start_embedded
from sources.settings import SOURCES, Settings

log = logging.getLogger("union_gateway")
console = Console(stderr=True)


# --------------------------------------------------------------------------- runtime

@dataclass
class Runtime:
    """What a process needs before it opens pools: settings and every URL."""

    settings: Settings
    urls: dict[str, str]  # each source, plus "simulator"
    embedded_server: Any = None

    @property
    def embedded(self) -> bool:
        return self.embedded_server is not None


@contextlib.contextmanager
def open_runtime(settings: Settings | None = None) -> Iterator[Runtime]:
    """Resolve URLs, starting the embedded PostgreSQL when none is set."""
    settings = settings or Settings()
    server = None
    embedded_url = None
    if settings.embedded:
        embedded_url, server = start_embedded(settings.home)
    urls = source_urls(settings, embedded_url)
    urls["simulator"] = simulator_url(settings, urls)
    try:
        yield Runtime(settings=settings, urls=urls, embedded_server=server)
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.cleanup()


# --------------------------------------------------------------------------- app

@dataclass
class AppState:
    """Resources opened in the lifespan and shared by every request."""

    runtime: Runtime
    databases: Databases = field(init=False)
    #: sources.insurance.InsuranceClient, one per process (set in the lifespan).
    insurance: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state: AppState = request.app.state.gateway
    sources = {}
    ready = True
    for source in SOURCES:
        try:
            async with asyncio.timeout(2):
                await state.databases[source].fetchval("SELECT 1")
            sources[source] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by class only
            sources[source] = f"unavailable: {type(exc).__name__}"
            ready = False
    from web.observability import readiness_details

    details = readiness_details(state)
    if details.get("draining"):
        ready = False  # shutting down: let the load balancer move traffic before the socket closes
    body = {"status": "ready" if ready else "not ready", "sources": sources, **details}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _remember_subtree_sizes(pool: Any) -> None:
    """How large each organization's subtree is, for members pages (sources/member_page_shape.py); a gateway
    starts without it."""
    import asyncpg

    from sources.member_page_shape import remember_tree_sizes

    try:
        await remember_tree_sizes(pool)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:  # pages learn sizes as they go
        logging.getLogger("union_gateway.members").warning("subtree sizes not read at start-up: %s",
                                                           type(exc).__name__)


def create_app(runtime: Runtime) -> Starlette:
    """The ASGI app; pools open in its lifespan and close with it."""
    state = AppState(runtime=runtime)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings = runtime.settings
        state.databases = await Databases(runtime.urls).open(
            min_size=settings.pool_min_size, max_size=settings.pool_max_size
        )
        await _remember_subtree_sizes(state.databases.members)
        from web.auth import STATE_KEY, Authenticator

        state.extras[STATE_KEY] = Authenticator(state)
        from web.guard import SAFEGUARDS_KEY, Safeguards

        state.extras[SAFEGUARDS_KEY] = Safeguards.open(settings=settings, pool=state.databases.members)
        from resolvers.background import settlement_resources

        try:
            async with settlement_resources(state):
                yield
        finally:
            await state.extras.pop(SAFEGUARDS_KEY).aclose()
            await state.databases.close()

    from web.graphql_app import graphql_routes

    from web.observability import observability_middleware, observability_routes, with_observability

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), *graphql_routes(state), *observability_routes()]
    from web.hygiene import hygiene_middleware

    # Observability outermost: the trace and the request id cover whatever hygiene answers.
    app = Starlette(routes=routes, lifespan=with_observability(lifespan, state),
                    middleware=[*observability_middleware(state), *hygiene_middleware(runtime.settings)])
    app.state.gateway = state
    return app


async def _supervise(runtime: Runtime, *, host: str, port: int, workers: int, demo_key: str | None,
                     simulator: Any) -> None:
    """serve --workers N: this process supervises N workers (web.workers) and keeps the simulator."""
    from web.workers import supervise

    console.print(f"GraphQL: http://{host}:{port}/graphql ({workers} worker processes)")
    if demo_key:
        console.print("demo API key (every scope, 无锡市总工会):")
        print(demo_key, flush=True)
    try:
        await supervise(runtime, host=host, port=port, workers=workers)
    finally:
        if simulator is not None:
            await simulator.stop()


# --------------------------------------------------------------------------- CLI

cli = typer.Typer(help="union-gateway: one GraphQL API over the federation's union services.", no_args_is_help=True)
apikey_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
cli.add_typer(apikey_cli, name="apikey")
documents_cli = typer.Typer(help="Trusted documents: the operations third-party keys may run.", no_args_is_help=True)
cli.add_typer(documents_cli, name="documents")


def _migrate(runtime: Runtime) -> dict[str, list[str]]:
    from sources.migrations import migrate_all

    return asyncio.run(migrate_all(runtime.urls))


@cli.command()
def migrate() -> None:
    """Apply pending migrations to every configured database."""
    with open_runtime() as runtime:
        applied = _migrate(runtime)
    for name, versions in applied.items():
        console.print(f"{name}: {', '.join(versions) if versions else 'up to date'}")


@cli.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, help="Port to listen on."),
          workers: int = typer.Option(None, min=1, max=64, show_default="UNION_GATEWAY_WORKERS or 1",
                                      help="Gateway processes sharing the port; about one per core.")) -> None:
    """Run the gateway (embedded PostgreSQL and demo data when no URL is set)."""
    from web.logging import configure_logging

    settings = Settings()
    configure_logging(level=settings.log_level)
    workers = workers or settings.workers
    # uvicorn re-raises SIGTERM/SIGINT once it has drained; turning that into
    # SystemExit(0) lets the embedded PostgreSQL and the simulator stop too.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    with open_runtime() as runtime:
        _migrate(runtime)
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            runner.run(_serve(runtime, host=host, port=port, workers=workers))


def _settle_garbage_collector() -> None:
    """Keep the collector off the long-lived heap, and let it run less often.

    After start-up the process holds ~80 000 objects that live as long as it
    does (the schema, graphql-core's and strawberry's types, modules); a full
    collection walks all of them (~25 ms) and the default thresholds started one
    every few staff-list requests, each of which makes tens of thousands of
    short-lived objects. gc.freeze() moves the start-up heap out of the
    collector's sight; a higher first threshold collects the young generation
    in fewer, larger steps. Reference cycles are still collected.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _event_loop_factory():
    """uvloop's event loop when installed (it comes with uvicorn[standard]), as uvicorn's own
    loop="auto" would pick: its transports, futures and call_soon are C, about a fifth of
    the gateway's CPU per request under load."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


async def _serve(runtime: Runtime, *, host: str, port: int, workers: int = 1) -> None:
    from commands.demo import demo_api_key, ensure_demo_data
    from simulator.server import start_simulator

    settings = runtime.settings
    demo_key = None
    if runtime.embedded:
        # Demo data only ever goes into the embedded database, never a server given by URL.
        if await ensure_demo_data(runtime.urls, members=settings.demo_members):
            console.print(f"loaded demo data: {settings.demo_members} members")
        demo_key = await demo_api_key(runtime.urls["members"], home=settings.home)
    simulator = None
    if settings.insurance_url is None:
        simulator = await start_simulator(runtime.urls["simulator"], token=settings.insurance_token)
        runtime.settings = settings = settings.model_copy(update={"insurance_url": simulator.url})
        console.print(f"medical-insurance simulator: {simulator.url}")
    if workers > 1:
        await _supervise(runtime, host=host, port=port, workers=workers, demo_key=demo_key, simulator=simulator)
        return
    app = create_app(runtime)
    from web.lifecycle import make_server
    from web.observability import drain_of

    server = make_server(app, drain=drain_of(app.state.gateway), host=host, port=port,
                         drain_seconds=settings.drain_seconds)
    console.print(f"GraphQL: http://{host}:{port}/graphql")
    _settle_garbage_collector()
    if demo_key:
        console.print("demo API key (every scope, 无锡市总工会):")
        print(demo_key, flush=True)
    try:
        await server.serve()
    finally:
        if simulator is not None:
            await simulator.stop()


@apikey_cli.command("create")
def apikey_create(
    name: str = typer.Option(..., help="Who the key is for."),
    org: str = typer.Option(..., help="Organization id the key is bound to."),
    scopes: str = typer.Option(..., help="Comma-separated scopes, e.g. members:read,claims:read."),
    expires_days: int = typer.Option(None, min=1, help="Expire the key after this many days."),
    max_cost: int = typer.Option(None, min=1, help="Most cost points one operation may request."),
    rate_points: int = typer.Option(None, min=1, help="Cost points the key may spend per rate window."),
    rate_window: float = typer.Option(None, min=0.001, help="The rate window in seconds."),
    max_depth: int = typer.Option(None, min=1, help="Deepest selection allowed."),
    max_aliases: int = typer.Option(None, min=0, help="Most aliases in one operation."),
    trusted_documents_only: bool = typer.Option(None, "--trusted-documents-only/--any-document",
                                                help="Only registered operations may run with this key."),
) -> None:
    """Create a key; the key itself is printed once, alone on the last line."""
    from datetime import datetime, timedelta, timezone

    from commands.apikeys import create

    expires_at = datetime.now(timezone.utc) + timedelta(days=expires_days) if expires_days else None
    limits = {"max_cost": max_cost, "rate_points": rate_points, "rate_window_seconds": rate_window,
              "max_depth": max_depth, "max_aliases": max_aliases, "trusted_documents_only": trusted_documents_only}
    with open_runtime() as runtime:
        _migrate(runtime)
        key_id, secret = asyncio.run(create(runtime.urls["members"], name=name, org=org, scopes=scopes,
                                            expires_at=expires_at, limits=limits))
    console.print(f"created {key_id}; store the key now, it is not shown again:")
    print(secret)


@apikey_cli.command("list")
def apikey_list() -> None:
    """List keys (never their secrets)."""
    from commands.apikeys import show_list

    with open_runtime() as runtime:
        _migrate(runtime)
        asyncio.run(show_list(runtime.urls["members"]))


@apikey_cli.command("revoke")
def apikey_revoke(key_id: str) -> None:
    """Revoke a key at once, on every replica."""
    from commands.apikeys import revoke

    with open_runtime() as runtime:
        _migrate(runtime)
        if not asyncio.run(revoke(runtime.urls["members"], key_id)):
            console.print(f"[red]no active key {key_id}[/red]")
            raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@documents_cli.command("load")
def documents_load(manifest: Path = typer.Argument(..., metavar="MANIFEST.json", exists=True, dir_okay=False,
                                                   readable=True,
                                                   help='JSON {"<sha256 hex>": "<document>"} (or Apollo\'s '
                                                        'persisted-query manifest).')) -> None:
    """Register a manifest's operations as trusted documents, all or nothing."""
    from commands.documents import load
    from sources.trusted_documents import InvalidDocument

    with open_runtime() as runtime:
        _migrate(runtime)
        try:
            summary = asyncio.run(load(runtime.urls["members"], path=manifest))
        except InvalidDocument as exc:
            sys.stderr.write(f"{exc}\n")
            raise typer.Exit(1) from None
    print(f"{summary.added} added, {summary.unchanged} already registered")


@documents_cli.command("list")
def documents_list() -> None:
    """List registered documents (id, operation names, origin)."""
    from commands.documents import show_list

    with open_runtime() as runtime:
        _migrate(runtime)
        asyncio.run(show_list(runtime.urls["members"]))


@cli.command("import")
def import_(kind: str = typer.Argument(..., help="organizations, employers, members, contracts, events or postings."),
            file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                        help="UTF-8 CSV with a header row (OPERATOR.md lists the columns).")) -> None:
    """Bulk-load one CSV file, all or nothing; every bad row is reported as FILE:LINE: column: reason."""
    from commands.importer import KINDS, ImportRejected, import_file

    if kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(KINDS)}", param_hint="KIND")
    with open_runtime() as runtime:
        _migrate(runtime)
        try:
            summary = asyncio.run(import_file(runtime.urls, kind=kind, path=file))
        except ImportRejected as rejected:
            # Plain writes, one problem a line and nothing else, for scripts to parse; rich
            # would wrap long lines and read '[...]' as markup.
            sys.stderr.write("".join(line + "\n" for line in rejected.lines()))
            raise typer.Exit(1) from None
    print(f"{kind}: {summary.rows} rows ({summary.inserted} inserted, {summary.updated} updated) "
          f"in {summary.seconds:.1f} s")


@cli.command()
def seed(members: int = typer.Option(..., "--members", min=1, help="How many members to generate."),
         seed: int = typer.Option(1, "--seed", help="Same seed, same rows.")) -> None:
    """Generate a deterministic synthetic data set of N members into empty databases."""
    from commands.seed import seed_database

    with open_runtime() as runtime:
        _migrate(runtime)
        try:
            summary = asyncio.run(seed_database(runtime.urls, members=members, seed=seed))
        except ValueError as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(1) from None
    counts = ", ".join(f"{n} {table}" for table, n in summary.counts().items())
    print(f"seed {summary.seed}: {counts} in {summary.seconds:.1f} s")


@cli.command("insurance-sim")
def insurance_sim(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
                  port: int = typer.Option(8001, help="Port to listen on.")) -> None:
    """Run the medical-insurance simulator alone."""
    import uvicorn

    from simulator.app import create_simulator_app

    logging.basicConfig(level=logging.INFO)
    with open_runtime() as runtime:
        _migrate(runtime)
        # The same token the gateway sends, so both sides agree without more configuration.
        app = create_simulator_app(runtime.urls["simulator"], token=runtime.settings.insurance_token)
        console.print(f"medical-insurance simulator: http://{host}:{port}/v1/ (admin under /sim/)")
        uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")


@cli.command()
def sweep(since: str = typer.Option(None, metavar="DATETIME",
                                    help="Look at settlements settled at or after this ISO 8601 time (Asia/Shanghai "
                                         "unless it has an offset) instead of where the last sweep started.")) -> None:
    """Open and decide claims on new settlements of enrolled members ('不见面'); safe to re-run."""
    from commands.sweep import parse_since, run_sweep

    try:
        start = parse_since(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    with open_runtime() as runtime:
        _migrate(runtime)
        status = asyncio.run(run_sweep(runtime, since=start, console=console))
    raise typer.Exit(status)


if __name__ == "__main__":
    cli()
