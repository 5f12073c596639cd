"""Who may do what, against the running runtime: API keys, isolation between clients, rate
and in-flight limits shared through Redis, idempotency, WebSocket limits, reconnecting."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from tests.conftest import REDIS_URL, _admin, database_url, run_sync
from tests.e2e.runtime import Runtime, connect, receive_json, receive_until_terminal

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5"}
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


# --- keys ----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "dex_not-a-key"}])
def test_orders_need_a_known_key(runtime, headers):
    answer = httpx.post(f"{runtime.base}/api/orders/execute", json=SELL, headers=headers)
    assert answer.status_code == 401 and answer.json()["field"] == "X-API-Key"
    assert httpx.get(f"{runtime.base}/api/quote?inputMint=SOL&outputMint=USDC&amount=1",
                     headers=headers).status_code == 401


async def test_a_revoked_key_stops_working(runtime):
    key = await runtime.create_key(f"gone-{uuid.uuid4().hex[:6]}")
    assert runtime.post_order(SELL, {"X-API-Key": key}).status_code == 201
    revoke = await asyncio.create_subprocess_exec(
        runtime.python, "-m", "local_runtime", "apikey", "revoke", key, env=runtime.env, cwd=runtime.root,
        stdout=asyncio.subprocess.PIPE)
    assert (await revoke.communicate())[0].strip() == b"revoked"
    await asyncio.sleep(0)  # the web process caches a key for at most 30 s: a fresh process sees it at once
    fresh = Runtime({**runtime.env_overrides, "DEX_NAMESPACE": runtime.env["DEX_NAMESPACE"]},
                    args=("--workers", "none")).start()
    try:
        assert fresh.post_order(SELL, {"X-API-Key": key}).status_code == 401
    finally:
        fresh.stop()


async def test_websockets_take_the_key_in_the_query_and_refuse_without_one(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute", api_key=None) as socket:
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 401 and refusal["field"] == "X-API-Key"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd.code == 1008
    async with connect(f"{runtime.ws_base}/api/orders/execute?apiKey={runtime.api_key}", api_key=None) as socket:
        await socket.send(json.dumps(SELL))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW


async def test_a_client_sees_only_its_own_orders(runtime):
    alice = await runtime.create_key(f"alice-{uuid.uuid4().hex[:6]}")
    bob = await runtime.create_key(f"bob-{uuid.uuid4().hex[:6]}")
    order_id = runtime.post_order(SELL, {"X-API-Key": alice}).json()["orderId"]
    unknown = str(uuid.uuid4())
    for path in (f"/api/orders/{order_id}", f"/api/orders/{order_id}/events"):
        assert runtime.get(path, key=alice).status_code == 200
        hidden, absent = runtime.get(path, key=bob), runtime.get(path.replace(order_id, unknown), key=bob)
        assert hidden.status_code == absent.status_code == 404 and hidden.json() == absent.json()
    assert runtime.delete(f"/api/orders/{order_id}", key=bob).status_code == 404
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream", api_key=bob) as socket:
        assert (await receive_json(socket))["status"] == 404


# --- idempotency ---------------------------------------------------------------------------

def test_a_repeated_idempotency_key_returns_the_original_order(runtime):
    key = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    first = runtime.post_order(SELL, key)
    assert first.status_code == 201
    runtime.wait_for_status(first.json()["orderId"], {"confirmed"})
    again = runtime.post_order(SELL, key)
    assert again.status_code == 200
    body = again.json()
    assert body["repeat"] is True and body["orderId"] == first.json()["orderId"]
    assert [e["status"] for e in body["events"]] == FLOW
    conflict = runtime.post_order({**SELL, "amount": "0.6"}, key)
    assert conflict.status_code == 409 and conflict.json()["field"] == "Idempotency-Key"


async def test_a_repeated_client_order_id_on_a_websocket_replays_the_original(runtime):
    order = {**SELL, "clientOrderId": f"ws-{uuid.uuid4().hex}"}
    before = await runtime.count_orders()
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(order))
        first = await receive_until_terminal(socket)
        await socket.send(json.dumps(order))
        replay = await receive_until_terminal(socket)
        await socket.send(json.dumps({**order, "amount": "0.7"}))
        conflict = await receive_json(socket)
    assert replay == first and await runtime.count_orders() == before + 1
    assert conflict["status"] == 409 and conflict["field"] == "clientOrderId"
    other = await runtime.create_key(f"carol-{uuid.uuid4().hex[:6]}")
    assert runtime.post_order(order, {"X-API-Key": other}).status_code == 201  # keys are per client


# --- sizes and streams ---------------------------------------------------------------------

def test_an_order_over_the_assets_maximum_is_refused(runtime):
    answer = runtime.post_order({**SELL, "amount": "20000.5"})
    assert answer.status_code == 422 and answer.json()["field"] == "amount"


async def test_an_oversized_message_gets_an_error_and_the_socket_stays_usable(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps({**SELL, "clientOrderId": "x" * 100, "pad": "y" * 20_000}))
        assert (await receive_json(socket))["status"] == 413
        await socket.send(json.dumps(SELL))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW


async def test_reconnecting_with_the_last_seq_misses_nothing_and_repeats_nothing(runtime):
    order_id = runtime.post_order(SELL).json()["orderId"]
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=0") as socket:
        head = [await receive_json(socket) for _ in range(2)]  # then the connection drops
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after={head[-1]['seq']}") as socket:
        tail = await receive_until_terminal(socket)
    assert [e["seq"] for e in head + tail] == [1, 2, 3, 4, 5, 6]


# --- limits on a runtime with real delays ----------------------------------------------------

@pytest.fixture(scope="module")
def slow_runtime():
    """Default simulated delays (orders take ~2.5 s), small limits, two web processes on one
    database and Redis namespace."""
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    env = {"REDIS_URL": REDIS_URL, "DATABASE_URL": database_url(name), "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
           "DEX_SIM_DRIFT_INTERVAL_MS": "0", "DEX_WS_MAX_SOCKETS_PER_CLIENT": "2", "DEX_WS_IDLE_TIMEOUT_S": "1"}
    first = Runtime(env).start()
    second = Runtime(env, args=("--workers", "none")).start()
    yield first, second
    second.stop()
    first.stop()
    first.forget_namespace()
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_the_rate_limit_is_shared_by_web_processes_and_says_when_to_retry(slow_runtime):
    first, second = slow_runtime
    key = await first.create_key(f"rate-{uuid.uuid4().hex[:6]}", orders_per_minute=5, max_in_flight=100)
    codes = [web.post_order(SELL, {"X-API-Key": key}).status_code for web in (first, second, first, second, first)]
    assert codes == [201] * 5
    refused = second.post_order(SELL, {"X-API-Key": key})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "per minute" in refused.json()["error"]


async def test_orders_in_flight_are_limited_until_they_finish(slow_runtime):
    first, _ = slow_runtime
    key = await first.create_key(f"flight-{uuid.uuid4().hex[:6]}", orders_per_minute=100, max_in_flight=2)
    a, b = (first.post_order(SELL, {"X-API-Key": key}).json()["orderId"] for _ in range(2))
    third = first.post_order(SELL, {"X-API-Key": key})
    assert third.status_code == 429 and "in flight" in third.json()["error"]
    for order_id in (a, b):
        assert first.wait_for_status(order_id, {"confirmed"}, seconds=15, key=key)["status"] == "confirmed"
    assert first.post_order(SELL, {"X-API-Key": key}).status_code == 201


async def test_sockets_per_client_and_idle_sockets_are_limited(slow_runtime):
    first, _ = slow_runtime
    key = await first.create_key(f"sock-{uuid.uuid4().hex[:6]}", orders_per_minute=100, max_in_flight=100)
    async with connect(f"{first.ws_base}/api/orders/execute", api_key=key) as busy, \
            connect(f"{first.ws_base}/api/orders/execute", api_key=key) as idle:
        await busy.send(json.dumps(SELL))  # an order in progress (~2.5 s) keeps this socket open
        await asyncio.sleep(0.3)  # both sockets authenticated and counted
        async with connect(f"{first.ws_base}/api/orders/execute", api_key=key) as extra:
            assert (await receive_json(extra))["status"] == 429
        idle_error = await receive_json(idle, timeout=5)
        assert idle_error["status"] == 408
        events = await receive_until_terminal(busy, timeout=15)
        assert [e["status"] for e in events] == FLOW


async def test_several_clients_watching_one_order_each_get_every_event(runtime):
    order_id = runtime.post_order({**SELL, "amount": "0.55"}).json()["orderId"]

    async def watch() -> list[dict]:
        async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=0") as socket:
            return await receive_until_terminal(socket)

    streams = await asyncio.gather(*(watch() for _ in range(3)))
    assert all([e["seq"] for e in s] == [1, 2, 3, 4, 5, 6] for s in streams)
    assert streams[0] == streams[1] == streams[2]


async def test_a_socket_closed_for_idling_gives_its_slot_back(slow_runtime):
    first, _ = slow_runtime
    key = await first.create_key(f"idle-{uuid.uuid4().hex[:6]}", orders_per_minute=100, max_in_flight=100)
    for _ in range(3):  # the limit is 2 sockets: three rounds only work if every closed socket is released
        async with connect(f"{first.ws_base}/api/orders/execute", api_key=key) as a, \
                connect(f"{first.ws_base}/api/orders/execute", api_key=key) as b:
            assert [(await receive_json(s, timeout=5))["status"] for s in (a, b)] == [408, 408]
        await asyncio.sleep(0.2)
