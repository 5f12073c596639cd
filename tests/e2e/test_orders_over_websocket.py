"""A user's view: orders over WebSockets and HTTP against the running local runtime."""

from __future__ import annotations

import asyncio
import json

from tests.e2e.runtime import connect, receive_json, receive_until_terminal

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
