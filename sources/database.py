"""One asyncpg pool per source, and a per-request count of SQL statements.

Each source owns its database (its URL may differ); a pool is opened per
source even when two share a URL, so that moving one union service to its
own server is a configuration change, not a code change.
"""
from __future__ import annotations

import contextvars
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from sources.settings import SOURCES, Settings

#: Statements run in the current request, per source. Set by whoever owns
#: the request (the GraphQL context, a test); None means "not counting".
statement_counter: contextvars.ContextVar[Counter | None] = contextvars.ContextVar(
    "statement_counter", default=None
)


class StatementCount:
    """Counts the statements run inside a `with` block, per source."""

    def __enter__(self) -> Counter:
        self.counter: Counter = Counter()
        self._token = statement_counter.set(self.counter)
        return self.counter

    def __exit__(self, *exc: object) -> None:
        statement_counter.reset(self._token)


def _query_logger(source: str, reset_query: str | None = None):
    # asyncpg calls query loggers with loop.call_soon, which runs them in the
    # context of the task that ran the query: the request's counter.
    def log(record: asyncpg.connection.LoggedQuery) -> None:
        if reset_query and record.query == reset_query:
            return  # the pool's own clean-up on release, not a statement the request asked for
        counter = statement_counter.get()
        if counter is not None:
            counter[source] += 1
        from sources import observability  # late: avoid an import cycle at start-up

        observability.statement_ran(source)

    return log


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection to its pool without asyncpg's reset query.

    asyncpg still rolls back an open transaction and drops listeners on
    release; the reset query (UNLISTEN, RESET ALL, session advisory unlock,
    CLOSE ALL) undoes session state that nothing here creates on a pooled
    connection (locks are transaction-scoped, LISTEN has its own connection,
    nothing SETs a session variable), and costs a round trip per release:
    about a sixth of a member page's CPU.
    """


@dataclass
class Databases:
    """The open pools, by source name."""

    urls: dict[str, str]
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)

    def __getitem__(self, source: str) -> asyncpg.Pool:
        return self.pools[source]

    @property
    def members(self) -> asyncpg.Pool:
        return self.pools["members"]

    @property
    def claims(self) -> asyncpg.Pool:
        return self.pools["claims"]

    @property
    def contracts(self) -> asyncpg.Pool:
        return self.pools["contracts"]

    @property
    def recruitment(self) -> asyncpg.Pool:
        return self.pools["recruitment"]

    async def open(self, *, min_size: int = 1, max_size: int = 10) -> "Databases":
        for source in SOURCES:
            async def init(conn: asyncpg.Connection, source: str = source) -> None:
                # asyncpg introspects array types on their first use on each connection;
                # doing it here keeps those look-ups out of requests (and their counts).
                await conn.fetchval("SELECT 1 FROM unnest($1::text[], $2::int[], $3::bigint[]) LIMIT 0", [], [], [])
                # asyncpg prepares every statement; after five runs PostgreSQL may switch
                # to a generic plan, blind to the size of the ANY($1) arrays and date
                # ranges we pass. claimStats at 1 000 000 members went from 0.2 s to
                # over 15 s that way. Planning each run costs ~0.1 ms; a bad plan, seconds.
                await conn.execute("SET plan_cache_mode = force_custom_plan")
                conn.add_query_logger(_query_logger(source, conn.get_reset_query()))

            self.pools[source] = await asyncpg.create_pool(
                self.urls[source],
                min_size=min_size,
                max_size=max_size,
                init=init,
                reset=_keep_session,
                server_settings={"application_name": f"union-gateway/{source}", "timezone": "Asia/Shanghai"},
            )
        return self

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        self.pools.clear()


def source_urls(settings: Settings, embedded_url: str | None = None) -> dict[str, str]:
    """Each source's URL, falling back to the shared or embedded one."""
    urls = {}
    for source in SOURCES:
        url = settings.url_for(source) or embedded_url
        if url is None:
            raise RuntimeError(f"no database URL for the {source} source")
        urls[source] = url
    return urls


def gateway_url(urls: dict[str, str]) -> str:
    """The gateway's own tables (API keys, audit) live in the members database."""
    return urls["members"]


def simulator_url(settings: Settings, urls: dict[str, str]) -> str:
    """The simulator's records live beside the members source unless told otherwise."""
    return settings.simulator_database_url or urls["members"]
