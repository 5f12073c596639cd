"""Locust load test: each user holds one WebSocket, submits orders and waits for their events.

Request types in the stats: "pending" (submit → first event), "confirmed" (submit → terminal
event, market orders), "waiting" and "cancelled" (a resting limit order, then its cancel).
A failed or refused order counts as a failure with the reason.

    KEY=$(.venv/bin/python -m local_runtime apikey create --client load --per-minute 100000000 --in-flight 1000000)
    DEX_API_KEY=$KEY .venv/bin/locust -f loadtest/locustfile.py --headless -u 100 -r 20 -t 60s \
        --host ws://127.0.0.1:8000 --csv loadtest/out/locust-100
    DEX_API_KEY=$KEY .venv/bin/locust -f loadtest/locustfile.py --headless -u 5000 -r 250 -t 120s \
        --host ws://127.0.0.1:8000 --csv loadtest/out/locust-5000

Locust runs on gevent, so the WebSocket client is the synchronous websocket-client.
"""

from __future__ import annotations

import json
import os
import random
import time

import websocket
from locust import User, between, task
from shared.domain.states import TERMINAL_STATUSES

MARKETS = (  # base, quote, (sell sizes in thousandths of base), (buy sizes in thousandths of quote)
    ("SOL", "USDC", (10, 200), (1_500, 30_000)),
    ("SOL", "USDT", (10, 100), (1_500, 15_000)),
    ("JUP", "USDC", (1_000, 10_000), (850, 8_500)),
)
"""The market orders' pairs and sizes: small enough, and spread over pools and sides, that the
simulated pools absorb thousands of users' orders without prices moving past the orders'
slippage bound (the simulated market has no arbitrageur to pull them back)."""


def amount_text(thousandths: int) -> str:
    return f"{thousandths // 1000}.{thousandths % 1000:03d}"


def api_key() -> str:
    key = os.environ.get("DEX_API_KEY")
    if key:
        return key
    from local_runtime.auth import local_api_key

    return local_api_key()


class OrderUser(User):
    wait_time = between(0.5, 1.5)
    host = "ws://127.0.0.1:8000"

    def on_start(self) -> None:
        self.socket = websocket.create_connection(
            f"{self.host}/api/orders/execute", header=[f"X-API-Key: {api_key()}"], timeout=60,
            enable_multithread=False,
        )

    def on_stop(self) -> None:
        self.socket.close()

    def _fire(self, name: str, started: float, error: str | None = None, length: int = 0) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - started) * 1000,
            response_length=length, exception=None if error is None else Exception(error), context={},
        )

    def _submit(self, order: dict) -> tuple[float, dict]:
        started = time.perf_counter()
        self.socket.send(json.dumps(order))
        first = json.loads(self.socket.recv())
        if first.get("type") == "error":
            self._fire("pending", started, f"{first.get('status')} {first.get('error')}")
            return started, first
        self._fire("pending", started)
        return started, first

    def _until(self, wanted: set[str], started: float, name: str, order_id: str) -> dict:
        while True:
            event = json.loads(self.socket.recv())
            if event.get("orderId") != order_id:
                continue
            if event.get("status") in wanted | TERMINAL_STATUSES:
                error = None if event["status"] in wanted else f"{event['status']}: {event['data'].get('error')}"
                self._fire(name, started, error)
                return event

    @task(9)
    def market_order(self) -> None:
        base, quote, sells, buys = random.choice(MARKETS)
        side = random.choice(("sell", "buy"))
        amount = amount_text(random.randint(*(sells if side == "sell" else buys)))
        order = {"type": "market", "side": side, "baseAsset": base, "quoteAsset": quote, "amount": amount,
                 "slippageBps": 300}
        started, first = self._submit(order)
        if "orderId" in first:
            self._until({"confirmed"}, started, "confirmed", first["orderId"])

    @task(1)
    def limit_order_then_cancel(self) -> None:
        order = {"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5",
                 "limitPrice": "100000", "expiresAt": 120}  # far above the market: it rests
        started, first = self._submit(order)
        if "orderId" not in first:
            return
        self._until({"waiting"}, started, "waiting", first["orderId"])
        cancel_started = time.perf_counter()
        self.socket.send(json.dumps({"action": "cancel", "orderId": first["orderId"]}))
        self._until({"cancelled"}, cancel_started, "cancelled", first["orderId"])
