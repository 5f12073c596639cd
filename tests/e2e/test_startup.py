"""Starting: without Redis or PostgreSQL, one clear line saying which and how to fix it; several
processes at once on a new database, all of them up; a taken port refused before anything else
(`python3 dev.py start` too); `python3 dev.py wait`; one development key, written where asked."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import httpx
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


# --- a taken port, waiting for health, the development key ---

def _listening_socket() -> socket.socket:
    """A port another program holds, as an engine still running would."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held


def test_start_on_a_taken_port_stops_at_once_and_leaves_the_key_file_alone(tmp_path):
    """Before it migrates or registers anything: PostgreSQL here does not even answer."""
    key_file = tmp_path / "dev-api-key"
    with _listening_socket() as held:
        result = subprocess.run(
            [sys.executable, "-m", "local_runtime", "start", "--dev-key-file", str(key_file)], cwd=ROOT,
            env={**os.environ, "PORT": str(held.getsockname()[1]), "REDIS_URL": REDIS_URL,
                 "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot listen on 127.0.0.1:"), result.stderr
    assert "another engine" in lines[0]
    assert not key_file.exists()


def test_dev_py_start_on_a_taken_port_refuses_before_anything_else():
    key_file = ROOT / ".dev-api-key"
    before = key_file.stat().st_mtime_ns if key_file.exists() else None
    with _listening_socket() as held:
        port = held.getsockname()[1]
        result = subprocess.run([sys.executable, "dev.py", "start"], cwd=ROOT, env={**os.environ, "PORT": str(port)},
                                capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: 127.0.0.1:{port} is already in use"), result.stderr
    assert "[dev]" not in result.stderr  # nothing installed, no service started
    assert (key_file.stat().st_mtime_ns if key_file.exists() else None) == before


def test_dev_py_wait_gives_up_when_nothing_answers():
    result = subprocess.run([sys.executable, "dev.py", "wait", "0.5"], cwd=ROOT,
                            env={**os.environ, "PORT": str(free_port())}, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "nothing healthy on http://127.0.0.1:" in result.stderr


def _status(runtime: Runtime, key: str) -> int:
    return httpx.get(f"{runtime.base}/api/orders", headers={"X-API-Key": key}, timeout=10).status_code


def test_each_start_writes_its_development_key_and_revokes_the_previous_one(tmp_path):
    """The file holds the key that works, with DEX_DEV_API_KEY set or not; the previous development
    key stops working; a key the dev client made itself keeps working."""
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    key_file = tmp_path / ".dev-api-key"
    env = {"REDIS_URL": REDIS_URL, "DATABASE_URL": database_url(name), "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
           "DEX_SIM_ZERO_DELAYS": "true", "DEX_SIM_DRIFT_INTERVAL_MS": "0"}
    args = ("--workers", "none", "--dev-key-file", str(key_file))
    web = Runtime({**env, "DEX_DEV_API_KEY": ""}, args=args)
    try:
        web.start(60)
        first = key_file.read_text().strip()
        assert first.startswith("dex_") and key_file.stat().st_mode & 0o077 == 0
        made = httpx.post(f"{web.base}/api/keys", json={"label": "laptop"}, headers={"X-API-Key": first}, timeout=10)
        assert made.status_code == 201, made.text
        web.stop()

        web = Runtime({**env, "DEX_DEV_API_KEY": ""}, args=args).start(60)
        waited = subprocess.run([sys.executable, "dev.py", "wait", "10"], cwd=ROOT,
                                env={**os.environ, "PORT": str(web.port)}, capture_output=True, text=True, timeout=30, check=False)
        assert waited.returncode == 0, waited.stderr
        second = key_file.read_text().strip()
        assert second != first
        assert (_status(web, second), _status(web, first), _status(web, made.json()["apiKey"])) == (200, 401, 200)
        web.stop()

        web = Runtime({**env, "DEX_DEV_API_KEY": "dex_chosen-development-key"}, args=args).start(60)
        assert key_file.read_text().strip() == "dex_chosen-development-key"
        assert (_status(web, "dex_chosen-development-key"), _status(web, second)) == (200, 401)
        listed = httpx.get(f"{web.base}/api/keys", headers={"X-API-Key": "dex_chosen-development-key"}, timeout=10)
        active = [k["label"] for k in listed.json()["keys"] if k["revokedAt"] is None]
        assert sorted(active) == ["development key", "laptop"]
    finally:
        web.stop()
        web.forget_namespace()
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
