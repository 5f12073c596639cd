"""PostgreSQL goes away under the running runtime (a TCP proxy in front of it is cut): intake
answers 503 and stores nothing; when it comes back, orders are accepted and complete."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.conftest import DATABASE_URL, REDIS_URL, _admin, run_sync
from tests.e2e.runtime import Runtime, free_port

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5"}


class CuttableProxy:
    """A TCP proxy to PostgreSQL on its own event loop thread; `cut()` closes the listener and
    every open connection, `restore()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def restore(self) -> None:
        async def listen():
            self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        self._call(listen())

    def cut(self) -> None:
        async def close():
            self.server.close()
            for writer in self.writers:
                writer.close()
            self.writers.clear()
        self._call(close())


def test_intake_refuses_with_503_while_postgres_is_down_and_recovers():
    target = urlsplit(DATABASE_URL)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.restore()
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    direct = urlunsplit(target._replace(path=f"/{name}"))
    via_proxy = urlunsplit(target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}",
                                           path=f"/{name}"))
    runtime = Runtime({"REDIS_URL": REDIS_URL, "DATABASE_URL": via_proxy, "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
                       "DEX_SIM_ZERO_DELAYS": "true", "DEX_SIM_DRIFT_INTERVAL_MS": "0"}).start()
    try:
        before = runtime.post_order(SELL).json()["orderId"]
        assert runtime.wait_for_status(before, {"confirmed"})["status"] == "confirmed"

        proxy.cut()
        refused = runtime.post_order(SELL)
        assert refused.status_code == 503, refused.text
        assert "PostgreSQL" in refused.json()["error"] and refused.headers["Retry-After"]
        assert runtime.get("/healthz").status_code == 503
        stored = run_sync(count_orders(direct))
        assert stored == 1  # nothing acknowledged, nothing stored

        proxy.restore()
        deadline, accepted = time.monotonic() + 15, None
        while accepted is None and time.monotonic() < deadline:
            answer = runtime.post_order(SELL)
            if answer.status_code == 201:
                accepted = answer.json()["orderId"]
            else:
                assert answer.status_code == 503
                time.sleep(0.2)
        assert accepted is not None, "intake did not recover after PostgreSQL came back"
        assert runtime.wait_for_status(accepted, {"confirmed"}, seconds=20)["status"] == "confirmed"
    finally:
        runtime.stop()
        runtime.forget_namespace()
        proxy.cut()
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def count_orders(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT count(*) FROM orders")
    finally:
        await connection.close()
