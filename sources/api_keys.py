"""API keys: creation, listing, revocation and look-up (gateway.api_keys).

A key reads `ugk_<prefix>_<secret>`: the prefix (public, indexed, unique)
finds the row, and the SHA-256 of the whole key is compared in constant
time. SHA-256 rather than a slow password hash because the secret is 32
random bytes (256 bits): nothing to brute-force, and every request pays
for the check.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

KEY_PREFIX = "ugk"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    organization_id: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _split(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    # maxsplit 2: the secret is token_urlsafe, which may itself contain '_'.
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or len(parts[2]) < 32:
        return None
    return parts[1]


def _row_to_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"], name=row["name"], organization_id=row["organization_id"], scopes=tuple(row["scopes"]),
        created_at=row["created_at"], expires_at=row["expires_at"], revoked_at=row["revoked_at"],
    )


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    name: str,
    organization_id: str,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the secret, which is never stored."""
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = await conn.fetchrow(
        """INSERT INTO gateway.api_keys (id, name, prefix, secret_hash, organization_id, scopes, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        f"key_{prefix}", name, prefix, _hash(secret), organization_id, scopes, expires_at,
    )
    return _row_to_key(row), secret


#: Per-key limit columns (migrations/gateway/004); None keeps the settings' default.
LIMIT_COLUMNS = ("max_depth", "max_aliases", "max_root_fields", "max_tokens", "max_cost",
                 "rate_points", "rate_window_seconds", "trusted_documents_only")


async def set_limits(conn: asyncpg.Connection | asyncpg.Pool, key_id: str, **limits: object) -> None:
    """Store per-key limits on the key's row (only the ones given)."""
    given = {k: v for k, v in limits.items() if v is not None}
    unknown = set(given) - set(LIMIT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    if not given:
        return
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(given, start=2))
    await conn.execute(f"UPDATE gateway.api_keys SET {assignments} WHERE id = $1", key_id, *given.values())


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[ApiKey]:
    """Every key, newest first, without secrets."""
    rows = await conn.fetch("SELECT * FROM gateway.api_keys ORDER BY created_at DESC, id")
    return [_row_to_key(r) for r in rows]


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> bool:
    """Revoke a key at once; False when there is no such (unrevoked) key."""
    status = await conn.execute(
        "UPDATE gateway.api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return status.endswith(" 1")


class KeyAuthenticator:
    """Validates presented keys, caching a positive answer for a few seconds.

    The cache bounds how long a revocation takes to reach this replica
    (`ttl` seconds); a negative answer is never cached, so a new key works
    at once.
    """

    def __init__(self, pool: asyncpg.Pool, ttl: float = 2.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._cache: dict[bytes, tuple[float, ApiKey]] = {}

    async def authenticate(self, presented: str | None) -> ApiKey | None:
        """The live key `presented` stands for, or None."""
        if not presented:
            return None
        prefix = _split(presented)
        if prefix is None:
            return None
        digest = _hash(presented)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        row = await self._pool.fetchrow(
            """SELECT * FROM gateway.api_keys
               WHERE prefix = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())""",
            prefix,
        )
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), digest):
            self._cache.pop(digest, None)
            return None
        key = _row_to_key(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, key)
        return key
