"""PostgreSQL going away under the running runtime and coming back (a TCP proxy in front of it is cut)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared.settings import Settings
from tests.conftest import DATABASE_URL, REDIS_URL, _admin, forget_namespace, run_sync
from tests.e2e.runtime import Runtime, connect, free_port, receive_json, receive_until_terminal

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5"}
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


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


@pytest.fixture
def behind_proxy():
    """A runtime whose PostgreSQL is reached through a cuttable proxy. Orders take ~1 s (the
    confirmation); a step's deadline is short (3 s × 3 attempts + 1 s) and the reconciler runs
    every second, so an order whose step gave up during the outage is re-driven soon after."""
    target = urlsplit(DATABASE_URL)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.restore()
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    namespace = f"e2e{uuid.uuid4().hex[:8]}"
    direct = urlunsplit(target._replace(path=f"/{name}"))
    via_proxy = urlunsplit(target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}",
                                           path=f"/{name}"))
    runtime = Runtime({
        "REDIS_URL": REDIS_URL, "DATABASE_URL": via_proxy, "DEX_NAMESPACE": namespace,
        "DEX_SIM_DRIFT_INTERVAL_MS": "0", "DEX_SIM_QUOTE_LATENCY_MS_RAYDIUM": "0",
        "DEX_SIM_QUOTE_LATENCY_MS_METEORA": "0", "DEX_SIM_QUOTE_JITTER_MS": "0", "DEX_SIM_BUILD_DELAY_MS": "0",
        "DEX_SIM_SUBMIT_DELAY_MS": "0", "DEX_SIM_CONFIRM_DELAY_MS": "1000", "DEX_SIM_CONFIRM_JITTER_MS": "0",
        "DEX_EXECUTE_JOB_TIMEOUT_S": "3", "DEX_STALL_GRACE_S": "1", "DEX_RECONCILE_INTERVAL_S": "1",
    }).start()
    try:
        yield runtime, proxy, direct
    finally:
        runtime.stop()
        proxy.cut()
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        run_sync(forget_namespace(Settings(redis_url=REDIS_URL, namespace=namespace)))


async def fetch(url: str, sql: str, *args):
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


def assert_503_naming_postgres(answer) -> None:
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert "PostgreSQL" in body["error"] and body["field"] is None
    assert answer.headers["Retry-After"].isdigit()


async def test_while_postgres_is_down_nothing_is_taken_and_afterwards_everything_completes_once(behind_proxy):
    """While it is away every way in answers 503 naming PostgreSQL and stores nothing, a valid key is never
    mistaken for a bad one, and an order caught mid-execution still ends once; afterwards orders are accepted
    again within seconds, and a client retrying with its idempotency key gets one order."""
    runtime, proxy, direct = behind_proxy
    unseen_key = await runtime.create_key(f"unseen-{uuid.uuid4().hex[:6]}")  # this process never looked it up
    idempotency = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}

    caught = runtime.post_order(SELL).json()["orderId"]
    assert runtime.wait_for_status(caught, {"submitted"}, seconds=5)["status"] == "submitted"
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        proxy.cut()  # the order is waiting for its confirmation: it will need PostgreSQL to finish
        outage_began = time.monotonic()

        assert_503_naming_postgres(runtime.post_order(SELL))
        assert_503_naming_postgres(runtime.post_order(SELL, idempotency))
        assert_503_naming_postgres(runtime.post_order(SELL, {"X-API-Key": unseen_key}))  # not a 401
        assert_503_naming_postgres(runtime.get(f"/api/orders/{caught}"))
        health = runtime.get("/healthz")
        assert health.status_code == 503 and health.json()["postgres"].startswith("unreachable")
        assert health.json()["redis"] == "ok"
        await socket.send(json.dumps(SELL))
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 503 and "PostgreSQL" in refusal["error"]
        stored = await fetch(direct, "SELECT id FROM orders")
        assert [str(row["id"]) for row in stored] == [caught]  # nothing acknowledged, nothing stored

        await asyncio.sleep(max(0.0, 2 - (time.monotonic() - outage_began)))  # the caught order's step fails
        proxy.restore()

        # Back: a client retrying with its key is accepted within seconds (stale pool connections
        # may still answer 503 once or twice), and its retries after that are repeats.
        deadline, accepted = time.monotonic() + 10, None
        while accepted is None:
            answer = runtime.post_order(SELL, idempotency)
            if answer.status_code == 201:
                accepted = answer.json()["orderId"]
            else:
                assert_503_naming_postgres(answer)
                assert time.monotonic() < deadline, "intake did not recover within 10 s of PostgreSQL's return"
                await asyncio.sleep(0.2)
        again = runtime.post_order(SELL, idempotency)
        assert again.status_code == 200 and again.json()["orderId"] == accepted
        assert runtime.post_order(SELL, {"X-API-Key": unseen_key}).status_code == 201

        await socket.send(json.dumps(SELL))  # the socket that got the 503 takes orders again
        assert [e["status"] for e in await receive_until_terminal(socket, timeout=20)] == FLOW

    for order_id in (caught, accepted):
        assert runtime.wait_for_status(order_id, {"confirmed", "failed"}, seconds=25)["status"] == "confirmed"
    events = runtime.get(f"/api/orders/{caught}/events").json()
    assert [e["status"] for e in events] == FLOW and [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    landed = await fetch(direct, "SELECT order_id, count(*) AS n FROM chain_transactions GROUP BY order_id")
    assert all(row["n"] == 1 for row in landed) and len(landed) == 4
    assert len(await fetch(direct, "SELECT id FROM orders")) == 4


async def test_a_stream_opened_while_postgres_is_down_gets_an_error_503(behind_proxy):
    runtime, proxy, _ = behind_proxy
    order_id = runtime.post_order(SELL).json()["orderId"]
    assert runtime.wait_for_status(order_id, {"confirmed"}, seconds=10)["status"] == "confirmed"
    proxy.cut()
    try:
        async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=0") as socket:
            message = await receive_json(socket, timeout=10)
        assert message["type"] == "error" and message["status"] == 503 and "PostgreSQL" in message["error"]
    finally:
        proxy.restore()
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=4") as socket:
        assert [e["seq"] for e in await receive_until_terminal(socket)] == [5, 6]
