"""Sniper reaction: N sniper orders wait for one token, then one launch of its pool.

Each of N WebSockets submits a sniper order for the same new mint (against SOL, every delay at
zero) and waits for its `waiting` event; then one `POST /api/sim/launch` opens the pool. Times
from the launch call: to each sniper's `submitted` event (its transaction sent), to the first
`submitted` of all (the first transaction), and to each terminal event.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
from solders.pubkey import Pubkey

from loadtest.ws_client import LeanSocket

LAUNCH = {"venue": "raydium", "symbol": "SNIPE", "decimals": 6, "quoteAsset": "SOL",
          "baseAmount": "1000000", "quoteAmount": "1000"}
"""A deep pool: a thousand 0.001 SOL buys move its price by about 0.1 %."""


def sniper_order(mint: str) -> dict:
    return {"type": "sniper", "side": "buy", "baseAsset": mint, "quoteAsset": "SOL", "amount": "0.001",
            "minLiquidity": "1", "slippageBps": 300, "expiresAt": 600}


class _Follower:
    """One sniper's socket: when its order waits, when it was submitted and when it ended."""

    def __init__(self, socket: LeanSocket) -> None:
        loop = asyncio.get_running_loop()
        self.waiting: asyncio.Future = loop.create_future()
        self.ended: asyncio.Future = loop.create_future()
        self.submitted_at: float | None = None
        self.delivered = 0
        socket.on_message = self._on_message

    def _on_message(self, text: str | None) -> None:
        event = json.loads(text) if text is not None else {"type": "error", "error": "socket closed"}
        self.delivered += event.get("seq") is not None
        status = event.get("status")
        if status == "waiting" and not self.waiting.done():
            self.waiting.set_result(True)
        elif status == "submitted":
            self.submitted_at = time.perf_counter()
        if event.get("type") == "error" or status in ("confirmed", "failed", "expired", "cancelled"):
            for done in (self.waiting, self.ended):
                if not done.done():
                    done.set_result(status or event.get("error"))


async def sniper_reaction(sockets: list[LeanSocket], http_url: str, key: str, window) -> dict:
    """Arm a sniper on every socket, launch, and time the reaction (ms from the launch call); what
    the engine uses is counted from just before the launch (`window`, bench.Window) until every
    sniper ended."""
    mint = str(Pubkey(os.urandom(32)))
    followers = [_Follower(socket) for socket in sockets]
    for socket in sockets:
        socket.send_text(json.dumps(sniper_order(mint)))
    await asyncio.gather(*(f.waiting for f in followers))
    await window.begin()
    async with httpx.AsyncClient(base_url=http_url, headers={"X-API-Key": key}, timeout=120) as client:
        # The launch goes over a connection already open, as a driver's would: a new client's first
        # request (connecting, the client's own set-up) took 20-35 ms here, none of it the engine's.
        (await client.get("/healthz")).raise_for_status()
        launched, launched_at = time.perf_counter(), time.time()
        response = await client.post("/api/sim/launch", json={**LAUNCH, "baseMint": mint})
        answered = time.perf_counter()
    response.raise_for_status()
    outcomes = await asyncio.gather(*(f.ended for f in followers))
    ended = time.perf_counter()
    await window.end()
    submitted = [(f.submitted_at - launched) * 1000 for f in followers if f.submitted_at is not None]
    return {"submitted_ms": submitted, "first_ms": min(submitted, default=float("nan")),
            "launch_answer_ms": (answered - launched) * 1000, "seconds": ended - launched,
            "confirmed": sum(o == "confirmed" for o in outcomes), "fired": response.json().get("fired"),
            "delivered": sum(f.delivered for f in followers), "launched_at": launched_at}
