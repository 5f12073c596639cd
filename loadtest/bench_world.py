"""Issue 16's two designs of the shared simulated world, under the same load, in one table.

    .venv/bin/python -m loadtest.bench_world [--seconds 20] [--in-flight 100] [--only A B]
                                             [--rpc-client streams|httpx] [--rpc-connections 2]

* (A) shared storage, as implemented: each client process builds its own PgMarketStore on its
  own asyncpg pool (10 connections, the engine's default) against one database; a quote loads
  the pair (coalesced SELECT) and prices it in the client, a landing is the store's batched
  transaction holding the pools' row locks.
* (B) one simulator service (loadtest/world_service.py, a measurement prototype) started here
  as a child process (uvicorn, uvloop, httptools) on a free port, holding the world in memory as
  the single writer and storing every landing with its pool's state in a group commit before it
  answers; the clients call it with WorldClient (JSON-RPC batches, reads and sends in separate
  lanes, keep-alive HTTP/1.1 over asyncio streams, or httpx).

Each design gets a fresh database (migrated, seeded with Market.initial()) and the same
workload from TWO client processes (as two worker processes would), each a closed loop of N
orders in flight for S seconds. An order is one quote of a small order (loadtest.bench.ORDERS:
SOL/USDC, SOL/USDT, JUP/USDC, sides alternating, both venues) then one landing of that swap on
the venue paying the most, with min_amount_out 3 % under its quote. No drift, no launches: only
swaps move the pools.

Reported per design: orders/s (orders answered, landed or refused, per second of the run);
p50/p95/p99 of the quote's and of the landing's latency, client side, in ms; CPU ms per order of
each process between the start and the end of the load (each client, the service, this
database's PostgreSQL backends, and every other `postgres` process: WAL writer, checkpointer —
and, on a shared machine, other people's backends; the total leaves that last one out); what
did not land and why; and the conservation check afterwards: for every pool, its reserves at the
start plus what the stored ledger says went in minus what went out equal its stored reserves,
every signature is stored once, and the ledger holds as many rows as the clients got answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import asyncpg
import uvloop

from loadtest.bench import ORDERS, CpuMeter, Services, percentile, tree
from loadtest.world_service import WorldClient, price
from shared.domain.chain import Transaction, transaction_signature
from shared.adapters.postgres.market_store import PgMarketStore
from shared.domain.tokens import KNOWN_TOKENS
from shared.domain.market import Market

ROOT = Path(__file__).resolve().parent.parent
SLIPPAGE_BPS = 300
CLIENTS = 2
DB_POOL_SIZE = 10
"""Each client process's asyncpg pool in (A): the engine's default DEX_DB_POOL_SIZE."""


@dataclass(frozen=True)
class Spec:
    mint_in: str
    mint_out: str
    amount_in: int


def specs() -> list[Spec]:
    """loadtest.bench.ORDERS as swaps: a sell sells the base, a buy spends the quote asset."""
    tokens = {token.symbol: token for token in KNOWN_TOKENS}
    found = []
    for order in ORDERS:
        base, quote = tokens[order["baseAsset"]], tokens[order["quoteAsset"]]
        sold, bought = (base, quote) if order["side"] == "sell" else (quote, base)
        found.append(Spec(sold.mint, bought.mint, int(Decimal(order["amount"]).scaleb(sold.decimals))))
    return found


# ---------------------------------------------------------------- a client process


async def client_process(args) -> None:
    """One load process: connect, say `ready`, wait for `go` on stdin, run the closed loop, print
    the raw figures as one JSON line, and exit at the next line on stdin."""
    if args.client == "A":
        db = await asyncpg.create_pool(args.database_url, min_size=DB_POOL_SIZE, max_size=DB_POOL_SIZE)
        store = PgMarketStore(db)

        async def quote(spec: Spec):
            market = await store.load(spec.mint_in, spec.mint_out)
            return price(market, spec.mint_in, spec.mint_out, spec.amount_in, time.time())[0]

        land = store.land
        close = db.close
    else:
        client = WorldClient(args.service_url, connections_per_lane=args.rpc_connections,
                             transport=args.rpc_client)
        await client.get_slot()  # the connections are open before the load starts

        async def quote(spec: Spec):
            return (await client.get_quote(spec.mint_in, spec.mint_out, spec.amount_in)).quotes

        land = client.send_transaction
        close = client.close

    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    orders = specs()
    quote_ms: list[float] = []
    land_ms: list[float] = []
    outcomes: Counter[str] = Counter()
    counter = 0
    stop_at = time.monotonic() + args.seconds

    async def loop() -> None:
        nonlocal counter
        while time.monotonic() < stop_at:
            spec = orders[counter % len(orders)]
            counter += 1
            order_id = str(uuid.uuid4())
            started = time.perf_counter()
            try:
                quotes = await quote(spec)
            except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                outcomes[f"quote error: {type(exc).__name__}: {str(exc)[:60]}"] += 1
                continue
            quoted = time.perf_counter()
            quote_ms.append((quoted - started) * 1000)
            if not quotes:
                outcomes["no quote"] += 1
                continue
            best = max(quotes, key=lambda q: (q.amount_out, q.liquidity))
            tx = Transaction(transaction_signature(order_id, 0), order_id, 0, best.venue, spec.mint_in, spec.mint_out,
                             spec.amount_in, best.amount_out * (10_000 - SLIPPAGE_BPS) // 10_000)
            try:
                landing = await land(tx)
            except Exception as exc:  # noqa: BLE001
                outcomes[f"landing error: {type(exc).__name__}: {str(exc)[:60]}"] += 1
                continue
            land_ms.append((time.perf_counter() - quoted) * 1000)
            outcomes["landed" if landing.succeeded else f"refused: {(landing.error or '')[:40]}"] += 1

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(args.in_flight)))
    seconds = time.monotonic() - started
    print(json.dumps({"seconds": seconds, "quote_ms": quote_ms, "land_ms": land_ms, "outcomes": outcomes}),
          flush=True)
    # Alive (and connected) until the driver has read every process's CPU time.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await close()


# ---------------------------------------------------------------- the driver


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    quote_ms: list[float] = field(default_factory=list)
    land_ms: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    cpu_s: dict[str, float] = field(default_factory=dict)
    conservation: str = ""

    @property
    def answered(self) -> int:
        """Orders whose landing was answered (landed or refused)."""
        return len(self.land_ms)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seed(url: str) -> None:
    db = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        await PgMarketStore(db).seed(Market.initial())
    finally:
        await db.close()


async def backends_of(url: str) -> list[int]:
    """The PostgreSQL backends connected to this database (but the one asking)."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                      " AND pid <> pg_backend_pid()")
        return [r["pid"] for r in rows]
    finally:
        await connection.close()


async def conservation(url: str, answered: int) -> str:
    """Stored reserves = reserves at the start + what the stored ledger put in − took out, for
    every pool and both its tokens; every signature stored once; a ledger row per answer."""
    initial = Market.initial()
    db = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        final = await PgMarketStore(db).load_all()
        flows = await db.fetch("SELECT venue, input_mint, output_mint, sum(amount_in) AS i, sum(amount_out) AS o"
                               " FROM chain_transactions WHERE succeeded = 1 GROUP BY 1, 2, 3")
        rows, signatures = await db.fetchrow("SELECT count(*), count(DISTINCT signature) FROM chain_transactions")
    finally:
        await db.close()
    expected = {key: {pool.mint_x: pool.reserve_of(pool.mint_x), pool.mint_y: pool.reserve_of(pool.mint_y)}
                for key, pool in initial.pools.items()}
    for flow in flows:
        reserves = expected[(flow["venue"], initial.pair(flow["input_mint"], flow["output_mint"]).key)]
        reserves[flow["input_mint"]] += int(flow["i"])
        reserves[flow["output_mint"]] -= int(flow["o"])
    off = [f"{venue}:{initial.pairs[key].base.symbol}/{initial.pairs[key].quote.symbol}"
           for (venue, key), reserves in expected.items()
           if {mint: final.pools[(venue, key)].reserve_of(mint) for mint in reserves} != reserves]
    verdict = "ok" if not off and rows == signatures else "FAILED"
    details = [f"{len(expected) - len(off)}/{len(expected)} pools balance"]
    if off:
        details.append("off: " + ", ".join(off))
    if rows != signatures:
        details.append(f"{rows - signatures} signatures stored twice")
    details.append(f"{rows} ledger rows, {answered} answers")
    return f"{verdict} ({'; '.join(details)})"


async def start_service(url: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    log = open(ROOT / "loadtest" / "out" / "bench-world-service.log", "ab")  # noqa: ASYNC230, SIM115 - lives with the process
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtest.world_service", "--database-url", url, "--port", str(port),
        cwd=ROOT, stdout=log, stderr=log)
    service_url = f"http://127.0.0.1:{port}"
    client = WorldClient(service_url, connections_per_lane=1)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                await client.get_slot()
                return process, service_url
            except OSError:
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("the world service did not start (see loadtest/out/bench-world-service.log)")
                await asyncio.sleep(0.2)
    finally:
        await client.close()


async def run_design(design: str, services: Services, args) -> Result:
    name = {"A": "(A) shared storage: PgMarketStore", "B": f"(B) world service ({args.rpc_client} client)"}[design]
    result = Result(name)
    url = await services.fresh_database()
    service = None
    clients: list[asyncio.subprocess.Process] = []
    try:
        await seed(url)
        roles: dict[str, list[int]] = {}
        extra = ["--database-url", url]
        if design == "B":
            service, service_url = await start_service(url)
            roles["service"] = tree(service.pid)
            extra = ["--service-url", service_url]
        for n in range(CLIENTS):
            clients.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "loadtest.bench_world", "--client", design, "--seconds", str(args.seconds),
                "--in-flight", str(args.in_flight), "--rpc-client", args.rpc_client,
                "--rpc-connections", str(args.rpc_connections), *extra,
                cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28))
            roles[f"client {n + 1}"] = [clients[-1].pid]
        for client in clients:
            line = await asyncio.wait_for(client.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"a client process did not start: {line[:200]!r}")
        backends = await backends_of(url)
        roles["pg backends"] = backends
        meter = CpuMeter(roles, own="bench")
        meter.start()
        for client in clients:
            client.stdin.write(b"go\n")
            await client.stdin.drain()
        outputs = await asyncio.gather(*(client.stdout.readline() for client in clients))
        cpu = meter.stop()
        for client in clients:
            client.stdin.write(b"exit\n")
            await client.stdin.drain()
            await client.wait()
        for output in outputs:
            figures = json.loads(output)
            result.seconds = max(result.seconds, figures["seconds"])
            result.quote_ms += figures["quote_ms"]
            result.land_ms += figures["land_ms"]
            result.outcomes.update(figures["outcomes"])
        cpu["pg other"] = cpu.pop("postgres") - cpu["pg backends"]
        cpu.pop("redis", None)
        result.cpu_s = cpu
        result.conservation = await conservation(url, result.answered)
    finally:
        for client in clients:
            if client.returncode is None:
                client.kill()
                await client.wait()
        if service is not None and service.returncode is None:
            service.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(service.wait(), 15)
            except TimeoutError:
                service.kill()
                await service.wait()
        await services.drop(url)
    return result


ROLES = ("client 1", "client 2", "service", "pg backends", "pg other", "bench")


def _spread(values: list[float]) -> str:
    return " / ".join(f"{percentile(values, p):.1f}" for p in (50, 95, 99)) if values else "—"


def table(results: list[Result]) -> str:
    lines = [
        ("| design | orders/s | quote p50 / p95 / p99 ms | landing p50 / p95 / p99 ms | CPU ms / order "
         "(all but pg other) | CPU ms / order by process | not landed | conservation |"),
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in results:
        orders = max(1, r.answered)
        per = {role: r.cpu_s[role] * 1000 / orders for role in ROLES if role in r.cpu_s}
        total = sum(v for role, v in per.items() if role != "pg other")
        not_landed = ", ".join(f"{why} {n}" for why, n in r.outcomes.most_common() if why != "landed") or "0"
        lines.append(
            f"| {r.name} | {r.answered / r.seconds:.0f} | {_spread(r.quote_ms)} | {_spread(r.land_ms)} | {total:.2f}"
            f" | {' · '.join(f'{role} {v:.2f}' for role, v in per.items())} | {not_landed} | {r.conservation} |")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--in-flight", type=int, default=100, help="orders in flight in each of the two client processes")
    parser.add_argument("--only", nargs="*", choices=("A", "B"), default=["A", "B"])
    parser.add_argument("--rpc-client", choices=("streams", "httpx"), default="streams",
                        help="(B) the client's HTTP: keep-alive HTTP/1.1 over asyncio streams, or httpx.AsyncClient")
    parser.add_argument("--rpc-connections", type=int, default=2,
                        help="(B) keep-alive connections per lane (reads, sends) in each client process")
    parser.add_argument("--client", choices=("A", "B"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--service-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        await client_process(args)
        return 0
    (ROOT / "loadtest" / "out").mkdir(parents=True, exist_ok=True)
    services = Services()
    results = []
    for design in args.only:
        results.append(await run_design(design, services, args))
        print(f"  {results[-1].name}: done", file=sys.stderr)
    print(f"{CLIENTS} client processes × {args.in_flight} orders in flight, {args.seconds:g} s per design;"
          f" {os.cpu_count()} CPUs")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
