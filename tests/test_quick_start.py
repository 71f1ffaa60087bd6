"""The README's quick start: `union-gateway serve` on a fresh checkout, no URL set."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.running_gateway import REPO, free_port


def _start(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNION_GATEWAY_", "OTEL_"))}
    env["UNION_GATEWAY_HOME"] = str(home)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/readyz never answered:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def _demo_key(log: Path) -> str:
    keys = [line.strip() for line in log.read_text().splitlines() if line.strip().startswith("ugk_")]
    assert keys, "serve printed no demo API key"
    return keys[-1]


def test_serve_on_embedded_defaults_answers_with_demo_data_and_key(tmp_path: Path):
    home = tmp_path / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _start(home, port, log)
    try:
        _wait_ready(url, proc, log)
        key = _demo_key(log)
        assert f"{url}/graphql" in log.read_text()
        response = httpx.post(url + "/graphql", headers={"Authorization": f"Bearer {key}"}, timeout=30, json={
            "query": '{ viewer { name organization { name } } member(id: "M-DEMO-WANG") { name }'
                     ' members(first: 1) { totalCount } }'})
        data = response.json()["data"]
        assert data["viewer"]["organization"]["name"] == "无锡市总工会"
        assert data["member"]["name"].startswith("王")
        assert data["members"]["totalCount"] >= 1000
        # The demo settlement is claimable against the built-in simulator: RULES.md's worked example.
        claim = httpx.post(url + "/graphql", headers={"Authorization": f"Bearer {key}"}, timeout=30, json={
            "query": 'mutation { submitHospitalizationClaim(input: {memberId: "M-DEMO-WANG",'
                     ' settlementId: "SETL-DEMO-WANG"}) { status totalPayout lines { benefit amount } } }'}).json()
        assert claim["data"]["submitHospitalizationClaim"]["status"] == "APPROVED", claim
        assert claim["data"]["submitHospitalizationClaim"]["totalPayout"] == "34343.00"
    finally:
        assert _stop(proc) == 0
    assert (home / "pgdata" / "PG_VERSION").exists()
    assert not list((home / "pgdata").glob("postmaster.pid")), "the embedded PostgreSQL was left running"

    # A second start reuses the data (no second seed) and the same demo key.
    log2 = tmp_path / "serve2.log"
    proc = _start(home, port, log2)
    try:
        _wait_ready(url, proc, log2)
        assert "loaded demo data" not in log2.read_text()
        assert _demo_key(log2) == key
    finally:
        assert _stop(proc) == 0
