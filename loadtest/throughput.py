"""A quick throughput probe (the full benchmark comes with issue 6).

Opens N WebSockets; each submits orders one after another and waits for the terminal
event. Prints orders/s and end-to-end latency percentiles. Against a runtime started
with DEX_SIM_ZERO_DELAYS=true it measures the engine alone.

    python -m loadtest.throughput --url ws://127.0.0.1:8000 --sockets 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import websockets

from local_runtime.auth import local_api_key
from shared.domain.states import TERMINAL_STATUSES

ORDER = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5",
         "slippageBps": 300}


async def client(url: str, key: str, stop_at: float, latencies: list[float], outcomes: dict[str, int]) -> None:
    async with websockets.connect(f"{url}/api/orders/execute", additional_headers={"X-API-Key": key}) as socket:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            await socket.send(json.dumps(ORDER))
            while True:
                event = json.loads(await socket.recv())
                if event.get("status") in TERMINAL_STATUSES or event.get("type") == "error":
                    break
            latencies.append(time.monotonic() - started)
            status = event.get("status", "error")
            outcomes[status] = outcomes.get(status, 0) + 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--api-key", default=None,
                        help="a key whose limits allow the load (default $DEX_API_KEY, else the development key)")
    args = parser.parse_args()
    key = args.api_key or local_api_key()
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    await asyncio.gather(*(client(args.url, key, started + args.seconds, latencies, outcomes)
                           for _ in range(args.sockets)))
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(f"orders: {len(latencies)} in {elapsed:.1f} s = {len(latencies) / elapsed:.0f} orders/s; outcomes {outcomes}")
    print(f"submit -> terminal: p50 {cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
