"""The engine's public API as calls: HTTP with httpx, an order's event stream over a WebSocket that
resumes with `?after=<last seq seen>` when the connection drops before the order's end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import websockets

from client.config import socket_url

TERMINAL = frozenset({"confirmed", "partially_filled", "failed", "cancelled", "expired"})
"""An order's last status: the server sends no event after one of these."""
KEY_HEADER = "X-API-Key"


class ApiError(Exception):
    """The server refused: its status and its error body `{"error", "field"}`."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return str(self.body.get("error") or self.body.get("detail") or f"HTTP {self.status}")

    @property
    def field(self) -> str | None:
        return self.body.get("field")

    @property
    def unavailable(self) -> bool:
        """The server could not serve (5xx, e.g. 503 while Redis or PostgreSQL is down), rather than refused."""
        return self.status >= 500


class Unreachable(Exception):
    """No answer from the server (refused connection, timeout, a socket that kept dropping)."""


@dataclass(frozen=True)
class Backoff:
    """How the stream reconnects: waits from `first_s`, doubling up to `most_s`; it gives up after
    `attempts` reconnections in a row that bring no new event."""

    first_s: float = 0.25
    most_s: float = 4.0
    attempts: int = 12

    def delay(self, attempt: int) -> float:
        """The wait before reconnection number `attempt` (1, 2, …)."""
        return min(self.most_s, self.first_s * 2 ** (attempt - 1))


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text.strip() or f"HTTP {response.status_code}", "field": None}
    return body if isinstance(body, dict) else {"error": str(body), "field": None}


class Api:
    """One server, one key. Use as `async with Api(url, key) as api:`."""

    def __init__(self, base_url: str, key: str, timeout_s: float = 15.0, backoff: Backoff = Backoff()) -> None:
        self.base_url = base_url
        self.key = key
        self.backoff = backoff
        self._http = httpx.AsyncClient(base_url=base_url, headers={KEY_HEADER: key}, timeout=timeout_s)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *_) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None,
                   headers: dict | None = None) -> Any:
        """The answer's JSON; ApiError for a refusal, Unreachable when nothing answers."""
        try:
            response = await self._http.request(method, path, json=body, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, _body(response))
        return response.json()

    # --- orders ---
    async def submit(self, order: dict, idempotency_key: str | None = None) -> dict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.call("POST", "/api/orders/execute", body=order, headers=headers)

    async def order(self, order_id: str) -> dict:
        return await self.call("GET", f"/api/orders/{quote(order_id, safe='')}")

    async def orders(self, limit: int | None = None, before: str | None = None) -> dict:
        params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        return await self.call("GET", "/api/orders", params=params)

    async def cancel(self, order_id: str) -> dict:
        return await self.call("DELETE", f"/api/orders/{quote(order_id, safe='')}")

    async def quote(self, input_asset: str, output_asset: str, amount: str, slippage_bps: int | None) -> dict:
        params = {"inputMint": input_asset, "outputMint": output_asset, "amount": amount}
        if slippage_bps is not None:
            params["slippageBps"] = slippage_bps
        return await self.call("GET", "/api/quote", params=params)

    async def markets(self) -> dict:
        return await self.call("GET", "/api/markets")

    # --- keys ---
    async def create_key(self, request: dict) -> dict:
        return await self.call("POST", "/api/keys", body=request)

    async def keys(self) -> dict:
        return await self.call("GET", "/api/keys")

    async def revoke_key(self, key_id: str) -> dict:
        return await self.call("DELETE", f"/api/keys/{quote(key_id, safe='')}")

    # --- the event stream ---
    async def events(self, order_id: str, after: int = 0,
                     dropped: Callable[[int, int, float, str], None] | None = None) -> AsyncIterator[dict]:
        """The order's events after seq `after`, each once, up to its terminal one. When the socket
        drops first, it reconnects with `?after=<last seq seen>` after a wait (`dropped(last seq,
        attempt, wait_s, why)` hears of each); Unreachable after `backoff.attempts` tries in a row
        without a new event; ApiError when the server refuses (an error message on the socket)."""
        last, attempt = after, 0
        while True:
            url = f"{socket_url(self.base_url)}/api/orders/{quote(order_id, safe='')}/stream?after={last}"
            try:
                async with websockets.connect(url, additional_headers={KEY_HEADER: self.key}, open_timeout=10,
                                              max_size=2**22) as socket:
                    async for raw in socket:
                        message = json.loads(raw)
                        if message.get("type") == "error":
                            raise ApiError(int(message.get("status") or 400), message)
                        if message["seq"] <= last:
                            continue
                        last, attempt = message["seq"], 0
                        yield message
                        if message["status"] in TERMINAL:
                            return
                why = "the server closed the stream before the order's end"
            except websockets.InvalidStatus as exc:  # refused before the upgrade
                status = exc.response.status_code
                if status < 500:
                    raise ApiError(status, {"error": f"the stream was refused with HTTP {status}"}) from None
                why = f"HTTP {status}"
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                why = str(exc) or type(exc).__name__
            attempt += 1
            if attempt > self.backoff.attempts:
                raise Unreachable(f"the stream of order {order_id} dropped {attempt - 1} times in a row"
                                  f" without a new event (last: {why})")
            wait_s = self.backoff.delay(attempt)
            if dropped is not None:
                dropped(last, attempt, wait_s, why)
            await asyncio.sleep(wait_s)
