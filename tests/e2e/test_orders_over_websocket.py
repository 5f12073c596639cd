"""A user's view: orders over WebSockets and HTTP against the running local runtime."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from solders.pubkey import Pubkey

from tests.e2e.runtime import Runtime, close_code, connect, private_runtime, receive_json, receive_until_terminal
from tests.unit.test_asyncapi import fitting

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5", "slippageBps": 100}
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


async def test_ten_concurrent_websocket_orders_all_confirm_with_gapless_events(runtime):
    async def one(i: int) -> list[dict]:
        async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
            await socket.send(json.dumps({**SELL, "amount": f"1.{i}"}))
            return await receive_until_terminal(socket)

    results = await asyncio.gather(*(one(i) for i in range(10)))
    order_ids = set()
    for events in results:
        assert [e["status"] for e in events] == FLOW
        assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
        assert len({e["orderId"] for e in events}) == 1
        order_ids.add(events[0]["orderId"])
        confirmed = events[-1]["data"]
        assert set(confirmed) >= {"txHash", "venue", "amountIn", "amountOut", "executionPrice"}
        assert 86 <= len(confirmed["txHash"]) <= 88
    assert len(order_ids) == 10


async def test_pending_event_comes_first_and_carries_the_order_id(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(SELL))
        first = await receive_json(socket)
    assert first["status"] == "pending" and first["seq"] == 1
    assert runtime.get(f"/api/orders/{first['orderId']}").status_code == 200


async def test_post_then_stream_replays_after_seq_and_ends_at_terminal(runtime):
    response = runtime.post_order(SELL)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    order_id = body["orderId"]
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=0") as socket:
        full = await receive_until_terminal(socket)
    assert [e["status"] for e in full] == FLOW
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=3") as socket:
        tail = await receive_until_terminal(socket)
    assert [e["seq"] for e in tail] == [4, 5, 6]
    assert tail == full[3:]


async def test_the_order_socket_takes_a_subscribe_as_the_clouds_socket_does(runtime):
    """`{"action":"subscribe","orderId","after"}` on the order socket: the events after `after`, then
    the end; another client's order is the 404 an unknown one gets; a bad `after` a 422 naming it."""
    order_id = runtime.post_order(SELL).json()["orderId"]
    runtime.wait_for_status(order_id, {"confirmed"})
    other_key = await runtime.create_key(f"other-{uuid.uuid4().hex[:8]}")
    async with connect(f"{runtime.ws_base}/api/orders/execute", api_key=other_key) as socket:
        await socket.send(json.dumps({"action": "subscribe", "orderId": order_id}))
        refused = await receive_json(socket)
    assert (refused["type"], refused["status"], refused["field"]) == ("error", 404, "orderId")
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps({"action": "subscribe", "orderId": order_id, "after": "x"}))
        bad = await receive_json(socket)
        await socket.send(json.dumps({"action": "subscribe", "orderId": order_id, "after": 2}))
        tail = await receive_until_terminal(socket)
    assert (bad["status"], bad["field"]) == (422, "after")
    assert [e["seq"] for e in tail] == [3, 4, 5, 6] and tail == runtime.get(f"/api/orders/{order_id}/events?after=2").json()


async def test_order_and_events_are_readable_over_http(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(SELL))
        events = await receive_until_terminal(socket)
    order_id = events[0]["orderId"]
    order = runtime.get(f"/api/orders/{order_id}").json()
    assert order["status"] == "confirmed"
    assert order["amountIn"] == 1_500_000_000
    assert order["txSignature"] == events[-1]["data"]["txHash"]
    assert runtime.get(f"/api/orders/{order_id}/events").json() == events
    assert [e["seq"] for e in runtime.get(f"/api/orders/{order_id}/events?after=4").json()] == [5, 6]


async def test_several_orders_share_one_socket(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        for amount in ("1", "2", "3"):
            await socket.send(json.dumps({**SELL, "amount": amount}))
        by_order: dict[str, list[int]] = {}
        while len(by_order) < 3 or any(seqs[-1] != 6 for seqs in by_order.values()):
            event = await receive_json(socket)
            by_order.setdefault(event["orderId"], []).append(event["seq"])
    assert all(seqs == [1, 2, 3, 4, 5, 6] for seqs in by_order.values())


def test_health_and_openapi(runtime):
    assert runtime.get("/healthz").json() == {"status": "ok", "redis": "ok", "postgres": "ok"}
    schema = runtime.get("/schema/openapi.json").json()
    assert "/api/orders/execute" in schema["paths"]


def test_unknown_order_is_404_naming_the_field(runtime):
    for path in ("/api/orders/00000000-0000-7000-8000-000000000000", "/api/orders/not-a-uuid/events"):
        response = runtime.get(path)
        assert response.status_code == 404
        assert response.json()["field"] == "orderId"


# --- the AsyncAPI document: served, linked, and what really goes over the sockets fits it ----------

LIMIT = {"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1",
         "limitPrice": "999", "expiresAt": 600}
SOL_USDC = {"baseAsset": "SOL", "quoteAsset": "USDC"}


@pytest.fixture(scope="module")
def asyncapi(runtime) -> dict:
    return httpx.get(f"{runtime.base}/schema/asyncapi.json", timeout=10).json()


def fits(document: dict, operation: str, messages: list[dict]) -> list[str]:
    """The message each of `messages` is (each must fit exactly one of the operation's)."""
    names = [fitting(document, operation, message) for message in messages]
    assert all(len(fit) == 1 for fit in names), list(zip(names, messages, strict=True))
    return [fit[0] for fit in names]


def test_the_asyncapi_document_is_served_without_a_key_and_linked_from_openapi(runtime, asyncapi):
    response = httpx.get(f"{runtime.base}/schema/asyncapi.json", timeout=10)  # no X-API-Key
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["servers"]["engine"]["variables"]["host"]["default"] == f"127.0.0.1:{runtime.port}"
    assert {c["address"] for c in asyncapi["channels"].values()} == {"/api/orders/execute",
                                                                     "/api/orders/{orderId}/stream"}
    openapi = runtime.get("/schema/openapi.json").json()
    assert "/schema/asyncapi.json" in openapi["info"]["description"]
    assert "/schema/asyncapi.json" not in openapi["paths"]


async def test_an_order_and_a_refusal_on_the_order_socket_fit_the_asyncapi_document(runtime, asyncapi):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps({**SELL, "amount": "-1"}))
        refusal = await receive_json(socket)
        await socket.send(json.dumps(SELL))
        events = await receive_until_terminal(socket)
    assert refusal["status"] == 422 and [e["status"] for e in events] == FLOW
    assert fits(asyncapi, "sendOrderEvents", [refusal, *events]) == ["error"] + ["event"] * len(FLOW)
    confirmed = events[-1]
    assert fitting(asyncapi, "sendOrderEvents", {**confirmed, "data": {**confirmed["data"], "amountOut": "1"}}) == []


async def test_a_cancel_and_its_acknowledgement_fit_the_asyncapi_document(runtime, asyncapi):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(LIMIT))
        pending, waiting = await receive_json(socket), await receive_json(socket)
        cancel = {"action": "cancel", "orderId": pending["orderId"]}
        assert fitting(asyncapi, "cancelOrder", cancel) == ["cancel"]
        await socket.send(json.dumps(cancel))
        answers = [await receive_json(socket), await receive_json(socket)]  # the ack and the event, either first
        await socket.send(json.dumps(cancel))
        again = await receive_json(socket)
    assert again["status"] == 409
    names = fits(asyncapi, "sendOrderEvents", [pending, waiting, *answers, again])
    assert names[:2] == ["event", "event"] and sorted(names[2:4]) == ["cancelAck", "event"] and names[4] == "error"


async def test_a_replay_after_a_seq_and_a_bad_after_fit_the_asyncapi_document(runtime, asyncapi):
    order_id = runtime.post_order(SELL).json()["orderId"]
    runtime.wait_for_status(order_id, {"confirmed"})
    closes = asyncapi["channels"]["stream"]["x-close-codes"]
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=2") as socket:
        replayed = await receive_until_terminal(socket)
        assert str(await close_code(socket)) in closes
    assert [e["seq"] for e in replayed] == [3, 4, 5, 6]
    assert fits(asyncapi, "sendStream", replayed) == ["event"] * 4
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=-1") as socket:
        refusal = await receive_json(socket)
        assert await close_code(socket) == 1008 and "`after` is not a seq" in closes["1008"]
    assert refusal["field"] == "after" and fits(asyncapi, "sendStream", [refusal]) == ["error"]


async def test_resting_orders_events_fit_the_asyncapi_document(runtime, asyncapi):
    """A limit order fired by the price, one that expires, a sniper refusing a thin launch and
    buying a deep one: every event on their streams."""
    runtime.post("/api/sim/prices", {**SOL_USDC, "price": "150"})
    fired = runtime.post_order({**LIMIT, "limitPrice": "200"}).json()["orderId"]
    expiring = runtime.post_order({**LIMIT, "expiresAt": 1}).json()["orderId"]
    mint = str(Pubkey(hashlib.sha256(uuid.uuid4().bytes).digest()))
    sniper = runtime.post_order({"type": "sniper", "side": "buy", "baseAsset": mint, "quoteAsset": "SOL",
                                 "amount": "0.5", "minLiquidity": "50", "expiresAt": 600}).json()["orderId"]
    for order_id in (fired, sniper):
        runtime.wait_for_status(order_id, {"waiting"})
    runtime.post("/api/sim/prices", {**SOL_USDC, "price": "205"})
    runtime.post("/api/sim/prices", {**SOL_USDC, "price": "150"})
    launch = {"baseMint": mint, "decimals": 6, "quoteAsset": "SOL", "baseAmount": "1000000"}
    assert runtime.post("/api/sim/launch", {**launch, "venue": "raydium", "quoteAmount": "20"}).json()["refused"] == 1
    assert runtime.post("/api/sim/launch", {**launch, "venue": "meteora", "quoteAmount": "100"}).json()["fired"] == 1
    streams = []
    for order_id in (fired, expiring, sniper):
        async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream") as socket:
            streams.append(await receive_until_terminal(socket))
    assert [[e["status"] for e in events][:4] for events in streams] == [
        ["pending", "waiting", "triggered", "routing"], ["pending", "waiting", "expired"],
        ["pending", "waiting", "waiting", "triggered"]]
    for events in streams:
        assert fits(asyncapi, "sendStream", events) == ["event"] * len(events)


@pytest.fixture(scope="module")
def slow_chain_runtime() -> Iterator[Runtime]:
    """A runtime of its own with the simulated chain's default delays (a transaction takes seconds to
    land), so a test can move one pool between an order's routing and its landing."""
    with private_runtime(DEX_SIM_DRIFT_INTERVAL_MS="0", DEX_SIM_CONFIRM_DELAY_MS="2000",
                         DEX_SIM_CONFIRM_JITTER_MS="0") as server:
        yield server


async def test_a_partial_fill_ends_its_stream_saying_what_was_sold_bought_and_left(slow_chain_runtime):
    """A split sell whose Meteora pool is moved against it while its transactions land: the Raydium
    leg lands, the Meteora leg fails its floor. The order ends `partially_filled` on its socket, in
    seq order, its terminal event alone saying what was sold (amountIn), bought (amountOut), at what
    price, and what is left (unfilledAmountIn); the order as stored says the same."""
    runtime = slow_chain_runtime
    sol_usdc = {"baseAsset": "SOL", "quoteAsset": "USDC"}
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps({**sol_usdc, "type": "market", "side": "sell", "amount": "3000"}))
        events = [await receive_json(socket)]
        while events[-1]["status"] != "submitted":
            events.append(await receive_json(socket))
        routed = next(e for e in events if e["status"] == "routed")["data"]
        assert {leg["venue"] for leg in routed["legs"]} == {"raydium", "meteora"}, routed  # the size splits
        moved = runtime.post("/api/sim/prices", {**sol_usdc, "price": "100", "venue": "meteora"})
        assert moved.status_code == 200, moved.text  # a price the Meteora leg's floor cannot meet now
        spot = Decimal(moved.json()["spot"]["raydium"])  # Raydium's, unchanged
        events += await receive_until_terminal(socket)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "partially_filled", events[-1]
    done = events[-1]["data"]
    assert done["amountIn"] + done["unfilledAmountIn"] == done["requestedAmountIn"] == 3000 * 10**9
    raydium = next(leg for leg in routed["legs"] if leg["venue"] == "raydium")
    assert done["amountIn"] == raydium["amountIn"] and done["amountOut"] >= raydium["minAmountOut"] > 0
    price = (Decimal(done["amountOut"]) / 10**6) / (Decimal(done["amountIn"]) / 10**9)
    assert abs(Decimal(done["executionPrice"]) - price) <= Decimal("0.000001") * price and price < spot
    stored = runtime.get(f"/api/orders/{events[0]['orderId']}").json()
    assert (stored["status"], stored["filledAmountIn"], stored["amountOut"]) == (
        "partially_filled", done["amountIn"], done["amountOut"])
