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
from pathlib import Path

import asyncpg
import httpx
import websockets

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"confirmed", "failed", "cancelled", "expired"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Runtime:
        self.log = open(ROOT / ".pytest-runtime.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runtime", "start"], cwd=ROOT, env=self.env,
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
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    # --- the API, as a client uses it ---
    def post_order(self, body: bytes | dict, headers: dict | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.base}/api/orders/execute", content=content, headers=headers, timeout=10)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=10)

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, timeout=10)

    def delete(self, path: str) -> httpx.Response:
        return httpx.delete(f"{self.base}{path}", timeout=10)

    def wait_for_status(self, order_id: str, wanted: set[str], seconds: float = 10) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            order = self.get(f"/api/orders/{order_id}").json()
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
        if message.get("status") in TERMINAL:
            return events


def connect(url: str):
    return websockets.connect(url, max_size=2**20)
