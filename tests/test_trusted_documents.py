"""Trusted documents: the manifest command, documentId requests, trusted-only keys, and Apollo's APQ handshake."""
from __future__ import annotations

import json

import asyncpg
import pytest
from typer.testing import CliRunner

from gateway import cli
from sources.trusted_documents import InvalidDocument, check_manifest, document_hash
from tests.gql import builder  # noqa: F401 - fixture
from tests.safety import codes, key_with, post, served, still_serves

MEMBERS = "query Members { members(first: 2) { totalCount edges { node { id name } } } }"
VIEWER = "query Me { viewer { keyId } }"


def manifest_file(tmp_path, documents: list[str]) -> str:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({document_hash(d): d for d in documents}, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_documents_load_and_list_commands(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("UNION_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("UNION_GATEWAY_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    path = manifest_file(tmp_path, [MEMBERS, VIEWER])
    loaded = runner.invoke(cli, ["documents", "load", path])
    assert loaded.exit_code == 0, loaded.output
    assert "2 added, 0 already registered" in loaded.output
    again = runner.invoke(cli, ["documents", "load", path])
    assert "0 added, 2 already registered" in again.output
    listed = runner.invoke(cli, ["documents", "list"])
    assert listed.exit_code == 0
    assert f"sha256:{document_hash(MEMBERS)}" in listed.output and "Members" in listed.output
    # A wrong hash rejects the whole manifest, naming the entry.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"0" * 64: "{ viewer { keyId } }", document_hash("{ plans { code } }"): "{ plans { code } }"}))
    rejected = runner.invoke(cli, ["documents", "load", str(bad)])
    assert rejected.exit_code == 1
    assert f"{'0' * 64}: the hash is not the SHA-256 of its document" in rejected.output
    listed = runner.invoke(cli, ["documents", "list"])
    assert "plans" not in listed.output


def test_manifest_checks():
    with pytest.raises(InvalidDocument, match="not a hex SHA-256"):
        check_manifest({"abc": "{ viewer { keyId } }"})
    with pytest.raises(InvalidDocument, match="Syntax Error"):
        check_manifest({document_hash("{ viewer {"): "{ viewer {"})
    assert check_manifest({"sha256:" + document_hash(VIEWER): VIEWER}) == [(document_hash(VIEWER), VIEWER, "Me")]


async def register(database_url: str, *documents: str) -> None:
    from sources.trusted_documents import load_manifest

    conn = await asyncpg.connect(database_url)
    try:
        await load_manifest(conn, {document_hash(d): d for d in documents})
    finally:
        await conn.close()


async def test_a_trusted_only_key_runs_its_registered_operations_and_nothing_else(
        settings, urls, builder, databases, database_url):  # noqa: F811
    await builder.employer("e1", "g1")
    await builder.member("m1", "g1", "e1")
    await register(database_url, MEMBERS)
    third_party = await key_with(databases.members, trusted_documents_only=True)
    async with served(settings, urls) as (client, _):
        response = await post(client, third_party, {"documentId": f"sha256:{document_hash(MEMBERS)}"})
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        assert response.json()["data"]["members"]["totalCount"] == 1
        assert response.json()["extensions"]["cost"]["requestedQueryCost"] == 3
        # Any text is refused before parsing, even the registered text itself.
        for body in [{"query": MEMBERS}, {"query": "{ viewer { keyId } }"}, {"query": "{ not graphql"}]:
            refused = await post(client, third_party, body)
            assert codes(refused) == ["FORBIDDEN"] and "trusted documents" in refused.json()["errors"][0]["message"]
        unknown = await post(client, third_party, {"documentId": f"sha256:{document_hash(VIEWER)}"})
        assert codes(unknown) == ["BAD_USER_INPUT"] and "No trusted document" in unknown.json()["errors"][0]["message"]
        # An APQ hash works only for a document an operator registered.
        apq = await post(client, third_party, {"extensions": {"persistedQuery": {
            "version": 1, "sha256Hash": document_hash(MEMBERS)}}})
        assert "errors" not in apq.json() and apq.json()["data"]["members"]["totalCount"] == 1
        register_attempt = await post(client, third_party, {"query": VIEWER, "extensions": {"persistedQuery": {
            "version": 1, "sha256Hash": document_hash(VIEWER)}}})
        assert codes(register_attempt) == ["FORBIDDEN"]


async def test_apq_handshake_for_a_first_party_key(settings, urls, builder, databases):  # noqa: F811
    first_party = await key_with(databases.members)
    third_party = await key_with(databases.members, trusted_documents_only=True)
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(VIEWER)}}
    async with served(settings, urls) as (client, _):
        missing = await post(client, first_party, {"extensions": persisted})
        [error] = missing.json()["errors"]
        assert error["message"] == "PersistedQueryNotFound" and error["extensions"]["code"] == "NOT_FOUND"
        wrong = await post(client, first_party, {"query": "{ plans { code } }", "extensions": persisted})
        assert codes(wrong) == ["BAD_USER_INPUT"]
        registered = await post(client, first_party, {"query": VIEWER, "extensions": persisted})
        assert registered.json()["data"]["viewer"]["keyId"].startswith("key_")
        by_hash = await post(client, first_party, {"extensions": persisted})
        assert "errors" not in by_hash.json() and by_hash.json()["data"]["viewer"]["keyId"]
        # Registered by a client, not vetted by an operator: a trusted-only key still may not run it.
        refused = await post(client, third_party, {"documentId": f"sha256:{document_hash(VIEWER)}"})
        assert codes(refused) == ["BAD_USER_INPUT"]
        both = await post(client, first_party, {"query": VIEWER, "documentId": f"sha256:{document_hash(VIEWER)}"})
        assert codes(both) == ["BAD_USER_INPUT"]
        await still_serves(client, first_party)
