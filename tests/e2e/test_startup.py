"""Starting: without Redis or PostgreSQL, one clear line saying which and how to fix it; several
processes at once on a new database, all of them up."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import DATABASE_URL, REDIS_URL, _admin, database_url, run_sync
from tests.e2e.runtime import ROOT, Runtime, free_port

CASES = [
    ("redis", {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DATABASE_URL": DATABASE_URL}, "Redis", "REDIS_URL"),
    (
        "postgres",
        {"REDIS_URL": REDIS_URL, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
        "PostgreSQL",
        "DATABASE_URL",
    ),
]


@pytest.mark.parametrize(("service", "env", "name", "variable"), CASES, ids=[c[0] for c in CASES])
def test_unreachable_service_stops_the_runtime_with_one_clear_line(service, env, name, variable):
    result = subprocess.run(
        [sys.executable, "-m", "local_runtime", "start"],
        cwd=ROOT,
        env={**os.environ, **env, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {name} is unreachable")
    assert variable in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_two_web_processes_started_together_on_a_new_database_both_come_up():
    """Each migrates under an advisory lock: the second waits for the first, then finds nothing to do
    (without the lock one of them failed on 'relation already exists', every time)."""
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    env = {"REDIS_URL": REDIS_URL, "DATABASE_URL": database_url(name), "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
           "DEX_SIM_ZERO_DELAYS": "true", "DEX_SIM_DRIFT_INTERVAL_MS": "0"}
    webs = [Runtime(env, args=("--workers", "none")) for _ in range(2)]
    try:
        for web in webs:
            web.spawn()
        for web in webs:
            web.wait_healthy(60)
        order = webs[1].post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                    "amount": "0.1"})
        assert order.status_code == 201, order.text
    finally:
        for web in webs:
            web.stop()
        webs[0].forget_namespace()
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
