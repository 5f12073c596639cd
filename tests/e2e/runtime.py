"""Starting the local runtime as a child process, and a small client for it, so e2e tests read
as user stories."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import websockets

from shared.db.api_keys import PgApiKeys
from shared.settings import Settings
from tests.conftest import forget_namespace, run_sync
from shared.states import TERMINAL_STATUSES

ROOT = Path(__file__).resolve().parents[2]
E2E_API_KEY = "dex_e2e-development-key"
"""The runtime's development key in e2e tests (DEX_DEV_API_KEY)."""


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM a child process still running, and SIGKILL it if it has not exited in 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime:
    python = sys.executable
    root = ROOT

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.env_overrides = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.env = {"DEX_DEV_API_KEY": E2E_API_KEY, **os.environ, **env, "PORT": str(self.port)}
        self.api_key = self.env["DEX_DEV_API_KEY"]
        self.headers = {"X-API-Key": self.api_key}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Runtime:
        self.log = open(ROOT / ".pytest-runtime.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runtime", "start", *self.args], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runtime exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("runtime did not become healthy")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.log.close()

    def forget_namespace(self) -> None:
        """Delete this runtime's keys from the shared Redis (SAQ's cron jobs, the trigger index,
        limits), once no process of it runs: a test leaves nothing behind."""
        run_sync(forget_namespace(Settings(redis_url=self.env["REDIS_URL"], namespace=self.env["DEX_NAMESPACE"])))

    # --- the API, as a client uses it ---
    def post_order(self, body: bytes | dict, headers: dict | None = None) -> httpx.Response:
        """POST an order with the development key (unless `headers` carries another X-API-Key)."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.base}/api/orders/execute", content=content, headers={**self.headers, **(headers or {})},
                          timeout=10)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"X-API-Key": key or self.api_key}, timeout=10)

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers=self.headers, timeout=10)

    def delete(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.delete(f"{self.base}{path}", headers={"X-API-Key": key or self.api_key}, timeout=10)

    async def create_key(self, client_id: str, orders_per_minute: int | None = None,
                         max_in_flight: int | None = None) -> str:
        """A new API key for `client_id`, stored as the runtime stores keys (hashed)."""
        pool = await asyncpg.create_pool(self.env["DATABASE_URL"], min_size=1, max_size=1)
        try:
            return await PgApiKeys(pool).create(client_id, datetime.now(UTC), orders_per_minute=orders_per_minute,
                                                max_in_flight=max_in_flight)
        finally:
            await pool.close()

    def wait_for_status(self, order_id: str, wanted: set[str], seconds: float = 10, key: str | None = None) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            order = self.get(f"/api/orders/{order_id}", key=key).json()
            if order["status"] in wanted or time.monotonic() > deadline:
                return order
            time.sleep(0.05)

    async def count_orders(self) -> int:
        connection = await asyncpg.connect(self.env["DATABASE_URL"])
        try:
            return await connection.fetchval("SELECT count(*) FROM orders")
        finally:
            await connection.close()


async def receive_json(socket, timeout: float = 20) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def receive_until_terminal(socket, timeout: float = 20) -> list[dict]:
    """Every message on the socket up to and including a terminal event."""
    events = []
    while True:
        message = await receive_json(socket, timeout)
        events.append(message)
        if message.get("status") in TERMINAL_STATUSES:
            return events


def connect(url: str, api_key: str | None = E2E_API_KEY):
    headers = {} if api_key is None else {"X-API-Key": api_key}
    return websockets.connect(url, max_size=2**20, additional_headers=headers)


async def close_code(socket) -> int | None:
    """Read until the server closes the socket; the close code it sent (None: no close frame)."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    except websockets.ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code
