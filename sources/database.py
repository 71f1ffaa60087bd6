"""Two asyncpg pools per source, and a per-request count of SQL statements.

Each source owns its database (its URL may differ); pools are opened per
source even when two share a URL, so that moving one union service to its
own server is a configuration change, not a code change.

asyncpg prepares every statement, and PostgreSQL plans a prepared statement
either for each run's values (a custom plan) or once for any values (a
generic plan). The two pools of a source differ only in that:

- `pools` (the default) plan each run for its values. Counts, reports,
  searches and most pages need it: a generic plan cannot see how many ids an
  array holds or how wide a date range is (claimStats at 1 000 000 members
  went from 0.2 s to over 15 s that way).
- `planned_once(source)` pools plan a statement once per connection. They
  serve statements whose best plan is the same for any parameter values:
  look-ups by key (rows by their ids, a member's enrolments, claims and
  lines, the claim-intake statements) and the members page, whose shape is
  chosen in Python from the subtree's size and whose page size is written
  into its text. Planning was most of their server time: a staff list
  spent about half of its PostgreSQL CPU planning (3.6 ms a request under
  load at 10 000 members), a claim's read ahead 0.3 of its 0.35 ms.

Both count against UNION_GATEWAY_POOL_MAX_SIZE: a source's two pools hold
at most that many connections together (two, at the least), so a
deployment's connection budget is unchanged.
"""
from __future__ import annotations

import contextvars
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

import asyncpg

from sources.codecs import TEXT_FORMAT_SETTINGS, decode_as_text
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
    nothing SETs a session variable but the connection's own set-up, which
    must stay), and costs a round trip per release: about a sixth of a
    member page's CPU.
    """


#: How each kind of pool has PostgreSQL plan its prepared statements (see the module docstring).
PLANNED_PER_RUN = "force_custom_plan"
PLANNED_ONCE = "force_generic_plan"


def split_pool_size(max_size: int) -> tuple[int, int]:
    """(planned per run, planned once) maximum sizes sharing one source's budget of `max_size` connections.

    The odd one goes to the pool planning each run: its statements (reports,
    counts, a transaction waiting on a member's lock) hold a connection
    longer than a look-up does.
    """
    per_run = max(1, (max_size + 1) // 2)
    return per_run, max(1, max_size - per_run)


@dataclass
class Databases:
    """The open pools, by source name: `pools` plan each run, `planned_once(source)` once per connection."""

    urls: dict[str, str]
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)
    planned_once_pools: dict[str, asyncpg.Pool] = field(default_factory=dict)

    def __getitem__(self, source: str) -> asyncpg.Pool:
        return self.pools[source]

    def planned_once(self, source: str) -> asyncpg.Pool:
        """The source's pool for statements with one best plan for any values: planned once per connection."""
        return self.planned_once_pools[source]

    def all_pools(self) -> list[tuple[str, asyncpg.Pool]]:
        """(source, pool) for every open pool, both kinds."""
        return [*self.pools.items(), *self.planned_once_pools.items()]

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
        per_run_max, once_max = split_pool_size(max_size)
        for source in SOURCES:
            for pools, plan_mode, most in ((self.pools, PLANNED_PER_RUN, per_run_max),
                                           (self.planned_once_pools, PLANNED_ONCE, once_max)):
                pools[source] = await asyncpg.create_pool(
                    self.urls[source],
                    min_size=min(min_size, most),
                    max_size=most,
                    init=partial(_init_connection, source=source, plan_mode=plan_mode),
                    reset=_keep_session,
                    server_settings={"application_name": f"union-gateway/{source}", "timezone": "Asia/Shanghai",
                                     **TEXT_FORMAT_SETTINGS},
                )
        return self

    async def close(self) -> None:
        for _, pool in self.all_pools():
            await pool.close()
        self.pools.clear()
        self.planned_once_pools.clear()


async def _init_connection(conn: asyncpg.Connection, *, source: str, plan_mode: str) -> None:
    # First: setting a codec empties asyncpg's cache of introspected types.
    await decode_as_text(conn)
    # asyncpg introspects array types on their first use on each connection;
    # doing it here keeps those look-ups out of requests (and their counts).
    await conn.fetchval("SELECT 1 FROM unnest($1::text[], $2::int[], $3::bigint[]) LIMIT 0", [], [], [])
    # Session state kept for the connection's life: _keep_session skips RESET ALL.
    await conn.execute(f"SET plan_cache_mode = {plan_mode}")
    conn.add_query_logger(_query_logger(source, conn.get_reset_query()))


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
