"""The floor of an order's critical path on this machine, measured in the bench's own run.

    .venv/bin/python -m loadtest.bench_floor [--layout web-and-worker] [--orders 300] [--engine-root TREE]

An order's latency cannot be lower than the round trips it waits for one after another. This
measures what one of each costs here, each paced at 100 Hz like the load (an idle machine part
woken every 10 ms, not a hot loop), and multiplies by how many of each lie on the path:

* one durable commit: a one-row INSERT in autocommit (WAL flushed) on a fresh table, p50;
* one PostgreSQL read: `SELECT 1`, p50;
* one Redis round trip: PING through redis-py (the engine's client), p50;
* one idle process wake-up: a one-byte socket ping-pong with a second process, p50.

`floor_ms = commits × commit + pg_reads × read + redis_trips × redis + wakeups × wake`.

Run as a command, it checks the counts against an engine: orders one at a time (each sent 10 ms
after the previous one ended, so none overlaps another and nothing batches), and per order the
PostgreSQL transactions of its database (`pg_stat_database`), the engine's read and write
system calls (/proc/PID/io: what wakes its processes, exact whatever else the machine runs), its
CPU, and submit → confirmed against the floor measured just before. What a change to the path
saves shows here without the noise of a shared machine's load.

The counts come from the code path of a market order (zero delays) and are checked against a
run: 200 orders one at a time, web + worker, 8.3 PostgreSQL transactions per order in
`pg_stat_database` (7 writes, one pool read, the rest the drift tick and the reconciler). A
message handed from one process to another through Redis (a worker's BLMOVE returning, a
published event reaching the web process) is one way: half a round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import uvloop
from redis.asyncio import Redis

PACE_S = 0.01
SAMPLES = 200

MARKET_PATH = {
    "commits": (7, "pending (intake), routing, routed, building, submitted, the landing (ledger), confirmed"),
    "pg_reads": (1, "the pools read by quote"),
    "redis_trips": (10, ("admission script; 3 × enqueue script (quote, route, execute); 3 × GET of the dequeued job; "
                        "the terminal event's publish script; 3 × BLMOVE returning and the event's pub/sub push to "
                        "the web process, one way each (4 × ½)")),
    "wakeups": (1, "the client's WebSocket frame to the web process and the terminal event back"),
}
"""A market order, submit → confirmed: what it waits for one after another (the publishes of
the other events, marking a job active and finishing it happen beside the path)."""

SNIPER_PATH = {
    "commits": (6, "the launch (pools), triggered, routing, routed, building, submitted"),
    "pg_reads": (6, ("the launch's BEGIN, two row locks and two writes before its commit; trigger's read of the order; "
                    "the pools read by quote")),
    "redis_trips": (13, ("the awaited mint's set and the resting orders (2); the claim (SREM); the disarm; 3 × enqueue; "
                        "3 × GET; the submitted event's publish; 3 × BLMOVE and its pub/sub push (4 × ½)")),
    "wakeups": (1, "the launch request to the web process and the first event back"),
}
"""Launch call → the first sniper's `submitted` event (its transaction sent): the first sniper
fired is handed on before the launch goes on to the next."""


@dataclass
class Costs:
    """p50 and p99 (ms) of each kind of round trip, paced at 100 Hz."""

    commit: tuple[float, float]
    pg_read: tuple[float, float]
    redis: tuple[float, float]
    wakeup: tuple[float, float]

    def floor_ms(self, path: dict[str, tuple[int, str]]) -> float:
        unit = {"commits": self.commit[0], "pg_reads": self.pg_read[0], "redis_trips": self.redis[0],
                "wakeups": self.wakeup[0]}
        return sum(count * unit[kind] for kind, (count, _) in path.items())

    def describe(self, path: dict[str, tuple[int, str]]) -> str:
        parts = {"commits": self.commit, "pg_reads": self.pg_read, "redis_trips": self.redis, "wakeups": self.wakeup}
        terms = " + ".join(f"{count} {kind} × {parts[kind][0]:.3f}" for kind, (count, _) in path.items())
        return f"{terms} = {self.floor_ms(path):.2f} ms"


def _p(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def _paced(call) -> tuple[float, float]:
    """p50 / p99 ms of `call()` issued every PACE_S."""
    times = []
    next_at = time.perf_counter()
    for _ in range(SAMPLES):
        next_at += PACE_S
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return _p(times, 50), _p(times, 99)


_ECHO = "import socket,sys\ns=socket.socket(fileno=int(sys.argv[1]))\nwhile (b:=s.recv(1)):\n s.send(b)\n"


def _wakeup_cost() -> tuple[float, float]:
    """A one-byte ping-pong with a child process over a socket pair, one every PACE_S."""
    mine, theirs = socket.socketpair()
    child = subprocess.Popen([sys.executable, "-c", _ECHO, str(theirs.fileno())], pass_fds=[theirs.fileno()])
    theirs.close()
    try:
        mine.send(b"x")
        mine.recv(1)  # the child is up
        times = []
        next_at = time.perf_counter()
        for _ in range(SAMPLES):
            next_at += PACE_S
            time.sleep(max(0.0, next_at - time.perf_counter()))
            started = time.perf_counter()
            mine.send(b"x")
            mine.recv(1)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        mine.close()
        child.wait(5)
    return _p(times, 50), _p(times, 99)


async def measure(database_url: str, redis_url: str) -> Costs:
    """Each cost in turn (the database is the caller's, fresh: a probe table is made in it)."""
    connection = await asyncpg.connect(database_url)
    redis = Redis.from_url(redis_url)
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS floor_probe (id bigserial PRIMARY KEY, at timestamptz)")
        commit = await _paced(lambda: connection.execute("INSERT INTO floor_probe (at) VALUES (now())"))
        read = await _paced(lambda: connection.fetchval("SELECT 1"))
        await redis.ping()
        trip = await _paced(redis.ping)
    finally:
        await connection.close()
        await redis.aclose()
    wake = await asyncio.to_thread(_wakeup_cost)
    return Costs(commit, read, trip, wake)


def ratios(latencies_p50: float, latencies_p99: float, floor_ms: float) -> str:
    return f"{latencies_p50 / floor_ms:.1f}× / {latencies_p99 / floor_ms:.1f}×"


async def _transactions(admin_url: str, database: str) -> int:
    """Committed transactions of `database` so far (the statistics lag by up to a second)."""
    connection = await asyncpg.connect(admin_url)
    try:
        return await connection.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database)
    finally:
        await connection.close()


async def one_at_a_time(layout_name: str, orders: int, engine_root: Path) -> str:
    """The engine in `layout_name`, `orders` market orders one at a time: a report of what each cost."""
    from loadtest import bench  # the bench imports this module

    services = bench.Services(engine_root)
    layout = {"one-process": bench.ONE_PROCESS, "web-and-worker": bench.WEB_AND_WORKER,
              "two-web-two-workers": bench.TWO_WEB_TWO_WORKERS}[layout_name]
    made: list[str] = []
    fresh = services.fresh_database

    async def remembered() -> str:
        made.append(await fresh())
        return made[-1]

    services.fresh_database = remembered
    url = await services.fresh_database()
    try:
        costs = await measure(url, services.settings.redis_url)
    finally:
        await services.drop(url)
    counted: dict[str, int] = {}

    async def load(urls: list[str], key: str, window: bench.Window) -> bench.Result:
        sockets = await bench.open_sockets(urls, key, len(urls))
        database, admin = urlsplit(made[-1]).path.lstrip("/"), services.database_url("postgres")
        try:
            warm = bench.Result("")
            for n in range(10):
                await bench.round_trip(sockets[n % len(sockets)], bench.ORDERS[n % 6], time.perf_counter(), warm)
            await asyncio.sleep(1.5)
            counted["before"] = await _transactions(admin, database)
            result = bench.Result("")
            await window.begin()
            started = time.monotonic()
            for n in range(orders):
                await bench.round_trip(sockets[n % len(sockets)], bench.ORDERS[n % 6], time.perf_counter(), result)
                await asyncio.sleep(PACE_S)
            result.seconds = time.monotonic() - started
            await asyncio.sleep(1.5)
            counted["after"] = await _transactions(admin, database)
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
        return result

    r = await bench.engine_scenario(f"{layout_name}, one at a time", services, layout, load)
    p50, p99 = bench.percentile(r.latencies, 50), bench.percentile(r.latencies, 99)
    return (f"{r.name} ({engine_root}): {r.orders} orders, submit→confirmed p50 {p50:.1f} / p99 {p99:.1f} ms ="
            f" {ratios(p50, p99, costs.floor_ms(MARKET_PATH))} the floor ({costs.describe(MARKET_PATH)}); per order:"
            f" PostgreSQL transactions {(counted['after'] - counted['before']) / r.orders:.2f}, engine syscalls"
            f" {r.syscalls[0] / r.orders:.1f} read + {r.syscalls[1] / r.orders:.1f} write, CPU"
            f" {bench.cpu_per_order(r):.2f} ms ({bench.per_role(r.cpu_s, 1000 / r.orders, 2)}),"
            f" not confirmed {r.failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=("one-process", "web-and-worker", "two-web-two-workers"),
                        default="web-and-worker")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--engine-root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    print(uvloop.run(one_at_a_time(args.layout, args.orders, args.engine_root.resolve())))


if __name__ == "__main__":
    main()
