"""The caller as its API key identifies it: scopes and the organization subtree it may see."""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from sources.api_keys import ApiKey


def like_prefix(value: str) -> str:
    """A LIKE pattern matching strings that start with `value` (wildcards in it escaped)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking; immutable for the request."""

    key_id: str
    name: str
    scopes: frozenset[str]
    organization_id: str
    #: members.organizations.path of the key's organization, e.g. '/city/district/'.
    organization_path: str

    @property
    def sees_all(self) -> bool:
        """The CITY organization's key: its path has one segment, and visibility filters are skipped."""
        return self.organization_path.count("/") == 2

    @property
    def path_pattern(self) -> str:
        """LIKE pattern of every organization path under the key's organization."""
        return like_prefix(self.organization_path)

    def has(self, scope: str) -> bool:
        return scope in self.scopes


async def load_viewer(pool: asyncpg.Pool, *, key: ApiKey) -> Viewer | None:
    """The Viewer for a live key; None when its organization no longer exists."""
    path = await pool.fetchval("SELECT path FROM members.organizations WHERE id = $1", key.organization_id)
    if not path:
        return None
    return Viewer(key_id=key.id, name=key.name, scopes=frozenset(key.scopes),
                  organization_id=key.organization_id, organization_path=path)
