"""Shared fixtures: a real PostgreSQL, a fresh migrated database per test."""
from __future__ import annotations

import pytest
import pytest_asyncio

from sources.database import Databases
from sources.settings import Settings
from tests import pg
from tests.redis_server import redis_url  # noqa: F401 - session fixture: a real redis-server


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory):
    url, server = pg.start_server(tmp_path_factory.mktemp("pg"))
    yield url
    if server is not None:
        server.cleanup()


@pytest_asyncio.fixture(scope="session")
async def pg_template(pg_admin_url: str) -> str:
    name = await pg.create_template(pg_admin_url)
    yield name
    await pg.drop_database(pg_admin_url, name)


@pytest_asyncio.fixture
async def database_url(pg_admin_url: str, pg_template: str):
    """URL of a fresh, migrated database that only this test uses."""
    name = await pg.create_database(pg_admin_url, pg_template)
    yield pg.with_database(pg_admin_url, name)
    await pg.drop_database(pg_admin_url, name)


@pytest.fixture
def urls(database_url: str) -> dict[str, str]:
    """Every source (and the simulator) on the test's database."""
    return {s: database_url for s in ("members", "claims", "contracts", "recruitment", "simulator")}


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    return Settings(database_url=database_url, home=tmp_path / "home", _env_file=None)


@pytest_asyncio.fixture
async def databases(urls: dict[str, str]):
    dbs = await Databases({k: v for k, v in urls.items() if k != "simulator"}).open(min_size=1, max_size=5)
    yield dbs
    await dbs.close()


@pytest_asyncio.fixture
async def simulator(database_url: str):
    """The medical-insurance simulator on a loopback socket, over this test's database."""
    from simulator.server import start_simulator

    running = await start_simulator(database_url)
    yield running
    await running.stop()


@pytest_asyncio.fixture
async def insurance_client(simulator):
    """An InsuranceClient pointed at `simulator`, with short timeouts and backoff so failures are quick."""
    from sources.circuit_breaker import CircuitBreaker
    from sources.insurance import InsuranceClient

    client = InsuranceClient(
        base_url=simulator.url, timeout=0.5, max_attempts=3, backoff_base=0.02, backoff_max=0.1,
        max_retry_after=3.0, breaker=CircuitBreaker(failure_threshold=5, reset_timeout=1.0),
    )
    yield client
    await client.aclose()
