"""Five simultaneous orders over five WebSockets: every event, then each routing decision."""

from __future__ import annotations

import asyncio
import json

import websockets
from shared.domain.states import TERMINAL_STATUSES

DEMO_ORDERS = (
    {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5", "slippageBps": 100},
    {"type": "market", "side": "buy", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "250", "slippageBps": 50},
    {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDT", "amount": "12.25"},
    {"type": "market", "side": "buy", "baseAsset": "JUP", "quoteAsset": "USDC", "amount": "1000", "slippageBps": 75},
    {"type": "market", "side": "sell", "baseAsset": "BONK", "quoteAsset": "SOL", "amount": "25000000"},
)


async def _one(ws_url: str, number: int, order: dict, api_key: str) -> list[dict]:
    events = []
    async with websockets.connect(ws_url, additional_headers={"X-API-Key": api_key}) as socket:
        await socket.send(json.dumps(order))
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if message.get("type") == "error":
                print(f"[order {number}] error: {message}")
                return events
            events.append(message)
            data = json.dumps(message["data"], separators=(",", ":"))
            print(f"[order {number}] {message['orderId'][:8]} seq={message['seq']} {message['status']:<9} {data}")
            if message["status"] in TERMINAL_STATUSES:
                return events


async def run_demo(base_url: str, api_key: str) -> int:
    ws_url = base_url.replace("http", "ws", 1).rstrip("/") + "/api/orders/execute"
    results = await asyncio.gather(*(_one(ws_url, i + 1, order, api_key) for i, order in enumerate(DEMO_ORDERS)))
    print("\nRouting decisions:")
    ok = True
    for number, (order, events) in enumerate(zip(DEMO_ORDERS, results, strict=True), start=1):
        routed = next((e["data"] for e in events if e["status"] == "routed"), None)
        final = events[-1]["status"] if events else "no events"
        ok &= final == "confirmed"
        if routed is None:
            print(f"  {number}. {order['side']} {order['amount']} {order['baseAsset']}/{order['quoteAsset']}: {final}")
            continue
        print(
            f"  {number}. {order['side']} {order['amount']} {order['baseAsset']}/{order['quoteAsset']}"
            f" -> {routed['venue']} ({routed['reason']}; +{routed['advantageBps']} bps vs next,"
            f" effective {routed['effectivePrices']}) => {final}"
        )
    return 0 if ok else 1
