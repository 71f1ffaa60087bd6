"""`union-gateway apikey create|list|revoke` as an operator runs them."""
from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from tests.running_gateway import REPO


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNION_GATEWAY_")}
    env["UNION_GATEWAY_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "gateway", "apikey", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_create_list_revoke_with_limits(database_url: str):
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO members.organizations (id, name, level) VALUES ('city', '无锡市总工会', 'CITY')")
    await conn.execute("SELECT members.refresh_organization_paths()")

    made = _cli(database_url, "create", "--name", "district app", "--org", "city", "--scopes",
                "members:read,claims:read", "--rate-points", "600", "--rate-window", "60", "--max-cost", "2000",
                "--trusted-documents-only", "--expires-days", "30")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("ugk_") and len(secret) > 40
    row = await conn.fetchrow("SELECT * FROM gateway.api_keys")
    assert row["name"] == "district app" and list(row["scopes"]) == ["members:read", "claims:read"]
    assert (row["rate_points"], row["rate_window_seconds"], row["max_cost"], row["trusted_documents_only"]) == (
        600, 60.0, 2000, True)
    assert row["expires_at"] is not None
    assert secret.encode() not in bytes(row["secret_hash"]) and secret not in str(dict(row))

    listed = _cli(database_url, "list")
    assert listed.returncode == 0 and row["id"] in listed.stdout and secret not in listed.stdout

    assert _cli(database_url, "revoke", row["id"]).returncode == 0
    assert await conn.fetchval("SELECT revoked_at IS NOT NULL FROM gateway.api_keys") is True
    again = _cli(database_url, "revoke", row["id"])
    assert again.returncode == 1
    await conn.close()


async def test_unknown_scope_or_organization_is_refused(database_url: str):
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO members.organizations (id, name, level) VALUES ('city', '无锡市总工会', 'CITY')")
    bad_scope = _cli(database_url, "create", "--name", "x", "--org", "city", "--scopes", "members:read,root")
    assert bad_scope.returncode != 0 and "root" in bad_scope.stderr
    bad_org = _cli(database_url, "create", "--name", "x", "--org", "nowhere", "--scopes", "members:read")
    assert bad_org.returncode != 0 and "nowhere" in bad_org.stderr
    assert await conn.fetchval("SELECT count(*) FROM gateway.api_keys") == 0
    await conn.close()
