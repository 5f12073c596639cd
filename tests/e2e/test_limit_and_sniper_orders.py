"""Resting orders as a user meets them: limit orders that wait, fire, expire or are cancelled,
and sniper orders that buy a launch."""

from __future__ import annotations

import hashlib
import json

from solders.pubkey import Pubkey

from tests.e2e.runtime import connect, receive_until_terminal

LIMIT_SELL = {"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1",
              "limitPrice": "200", "expiresAt": 600}
NEW_MINT = str(Pubkey(hashlib.sha256(b"a token launched during the e2e tests").digest()))


def statuses(runtime, order_id: str) -> list[str]:
    return [e["status"] for e in runtime.get(f"/api/orders/{order_id}/events").json()]


async def test_limit_order_rests_then_fills_after_a_scripted_price_move(runtime):
    runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"})
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(LIMIT_SELL))
        order_id = json.loads(await socket.recv())["orderId"]
        assert runtime.wait_for_status(order_id, {"waiting"})["status"] == "waiting"
        moved = runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "205"}).json()
        assert moved["limitOrdersFired"] == 1
        events = await receive_until_terminal(socket)
    assert [e["status"] for e in events] == [
        "waiting", "triggered", "routing", "routed", "building", "submitted", "confirmed"]
    confirmed = events[-1]["data"]
    assert confirmed["amountOut"] >= 200_000_000  # never worse than the limit: 1 SOL for ≥ 200 USDC
    runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"})


def test_limit_order_that_is_not_reached_expires_on_time(runtime):
    order_id = runtime.post_order({**LIMIT_SELL, "limitPrice": "999", "expiresAt": 1}).json()["orderId"]
    order = runtime.wait_for_status(order_id, {"expired"}, seconds=5)
    assert order["status"] == "expired"
    assert statuses(runtime, order_id) == ["pending", "waiting", "expired"]


def test_cancel_a_waiting_order_then_cancelling_again_is_409(runtime):
    order_id = runtime.post_order({**LIMIT_SELL, "limitPrice": "999"}).json()["orderId"]
    runtime.wait_for_status(order_id, {"waiting"})
    response = runtime.delete(f"/api/orders/{order_id}")
    assert response.status_code == 200
    assert response.json() == {"orderId": order_id, "status": "cancelled"}
    again = runtime.delete(f"/api/orders/{order_id}")
    assert again.status_code == 409
    assert again.json()["field"] == "orderId"
    assert statuses(runtime, order_id) == ["pending", "waiting", "cancelled"]
    # Nothing fires for it afterwards.
    runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "1500"})
    runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"})
    assert statuses(runtime, order_id) == ["pending", "waiting", "cancelled"]


def test_cancelling_a_finished_order_is_409_and_changes_nothing(runtime):
    order_id = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                   "amount": "1"}).json()["orderId"]
    runtime.wait_for_status(order_id, {"confirmed"})
    response = runtime.delete(f"/api/orders/{order_id}")
    assert response.status_code == 409
    assert "confirmed" in response.json()["error"]
    assert statuses(runtime, order_id)[-1] == "confirmed"


async def test_cancel_over_websocket(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps({**LIMIT_SELL, "limitPrice": "999"}))
        order_id = json.loads(await socket.recv())["orderId"]
        runtime.wait_for_status(order_id, {"waiting"})
        await socket.send(json.dumps({"action": "cancel", "orderId": order_id}))
        messages = [json.loads(await socket.recv()) for _ in range(2)]
    kinds = {m.get("type") or m.get("status") for m in messages}
    assert {"cancelled"} <= kinds
    assert statuses(runtime, order_id) == ["pending", "waiting", "cancelled"]


def test_sniper_refuses_a_thin_launch_then_buys_a_deep_one(runtime):
    order = {"type": "sniper", "side": "buy", "baseAsset": NEW_MINT, "quoteAsset": "SOL", "amount": "0.5",
             "minLiquidity": "50", "expiresAt": 600}
    first = runtime.post_order(order).json()["orderId"]
    second = runtime.post_order({**order, "clientOrderId": "second-sniper"}).json()["orderId"]
    runtime.wait_for_status(second, {"waiting"})
    launch = {"baseMint": NEW_MINT, "symbol": "SNIPE", "decimals": 6, "quoteAsset": "SOL"}
    thin = runtime.post("/api/sim/launch", {**launch, "venue": "raydium", "baseAmount": "1000000",
                                            "quoteAmount": "20"})
    assert thin.status_code == 201 and thin.json()["refused"] == 2
    deep = runtime.post("/api/sim/launch", {**launch, "venue": "meteora", "baseAmount": "1000000",
                                            "quoteAmount": "100"}).json()
    assert deep["fired"] == 2
    for order_id in (first, second):
        done = runtime.wait_for_status(order_id, {"confirmed", "failed"})
        assert done["status"] == "confirmed"
        assert done["venue"] == "meteora"  # the launch that passed, not the thin one
        events = runtime.get(f"/api/orders/{order_id}/events").json()
        assert [e["status"] for e in events][:4] == ["pending", "waiting", "waiting", "triggered"]
        assert "minLiquidity" in events[2]["data"]["refused"]


def test_quote_endpoint_answers_in_jupiters_shape_and_splits_large_orders(runtime):
    runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"})
    small = runtime.get("/api/quote?inputMint=SOL&outputMint=USDC&amount=1&slippageBps=50").json()
    assert len(small["routePlan"]) == 1 and small["routePlan"][0]["percent"] == 100
    assert int(small["otherAmountThreshold"]) == int(small["outAmount"]) * 9_950 // 10_000
    large = runtime.get("/api/quote?inputMint=SOL&outputMint=USDC&amount=3000").json()
    assert len(large["routePlan"]) == 2
    assert sum(leg["percent"] for leg in large["routePlan"]) == 100
    assert int(large["outAmount"]) > max(int(v["outAmount"]) for v in large["venues"])
    bad = runtime.get("/api/quote?inputMint=SOL&outputMint=SOL&amount=1")
    assert bad.status_code == 422 and bad.json()["field"] == "outputMint"


async def test_large_market_order_executes_as_a_split(runtime):
    runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"})
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                      "amount": "3000", "slippageBps": 100}))
        events = await receive_until_terminal(socket)
    routed = next(e["data"] for e in events if e["status"] == "routed")
    assert routed["venue"] == "split" and len(routed["legs"]) == 2
    assert routed["splitGainBps"] >= 0 and routed["expectedAmountOut"] > routed["bestSingleAmountOut"]
    confirmed = events[-1]["data"]
    assert events[-1]["status"] == "confirmed" and len(confirmed["legs"]) == 2
    assert confirmed["amountOut"] == sum(leg["amountOut"] for leg in confirmed["legs"])
