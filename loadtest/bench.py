"""The bench: fixed scenarios on this machine, one results table, every figure a ratio on the
same hardware.

    python3 dev.py bench [--seconds 20] [--sockets 200] [--in-flight 5000] [--snipers 1000] [--only SCENARIO ...]
                         [--engine-root TREE]

Each scenario gets its own database and Redis namespace; all but the last run with every
simulated delay at zero (the engine alone):

* `engine, 1 process`: `local_runtime start --workers inline` (web + SAQ workers in one
  process), closed loop: each of N WebSockets submits a market order and waits for its
  terminal event.
* `engine, web + worker`: the web process without workers (`start --workers none`) and
  `worker --processes 1` (all four functions): one process per core.
* `engine, 2 web + 2 workers`: two web processes (each on its own port) and two worker
  processes on the one shared market, the load's sockets spread evenly over both ports
  (`two-web-two-workers`; runs right after `web-and-worker`, so they share the hour).
* `… one at a time`: the same with DEX_BATCH_MAX=1 (one message per SAQ job, one statement
  per status change, one publish per event): the baseline the batching is measured against.
* `… at 100 orders/s`: open loop at a fixed rate (the overhead target), web + worker
  (`rate-100`), in one process (`rate-100-one-process`) and 2 web + 2 workers
  (`rate-100-two-web-two-workers`). Each first measures the floor of an order's critical path
  (loadtest/bench_floor.py: one durable commit, one Redis round trip, one process wake-up, each
  paced at 100 Hz, times their counts on the path); the row shows p50 and p99 as multiples of it.
* `no queue, in-process`: the same four functions called one after another in this
  process on the real PostgreSQL and Redis (events stored and published), no SAQ, no
  WebSocket: the cost of the queue and the sockets.
* `5,000 in flight, default delays`: web + worker with the default simulated delays
  (2.4–2.9 s per order); 5,000 sockets each send one order at the same moment. When
  `web-and-worker` ran too, a line under the table gives the burst's CPU per order against it.
* `1,000 snipers, one launch`: web + worker, zero delays; 50 market orders first (a launch meets
  an engine that has traded), then `--snipers` sniper orders wait for one new token, then one
  `POST /api/sim/launch` over an open connection (loadtest/bench_sniper.py). Its latencies are
  launch → each sniper's `submitted`; the floor column compares the first transaction (the first
  `submitted`) with the floor of its path; lines under the table give that path's events; the
  stored figures are the snipers'.

`--engine-root TREE` starts the engine of another build (a `git worktree` of an older commit;
its migrations make the database) under this same bench, for before/after comparisons.

Every scenario over WebSockets first sends 50 orders it does not measure (`warm_sockets`: the
engine's connections open, statements prepared, code run once). What the processes use is
counted from then — the load's sockets open — until its last order ended (not their opening nor
their closing). Columns: orders/s; submit → confirmed p50/p95/p99 (client side); p50 and p99 ÷
the floor (where measured); per stage p50/p95/p99 from the stored event times (pending→routing
= queue hop + quotes, routing→routed, routed→submitted, submitted→confirmed); CPU milliseconds
per order of each process (web, worker — web1, web2, worker1, worker2 when there are two of
each —, PostgreSQL's own processes and the backends of the scenario's database (not other databases' on a shared server), Redis,
the load client) and peak resident MiB of the engine's processes; Redis commands per order
(INFO commandstats: the whole server's); events stored and delivered per order; orders not confirmed (from
the client's terminal events), with how many of the stored failures were `slippage`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
import uvloop
from redis.asyncio import Redis

from functions.bootstrap import bootstrap
from functions.desk import decode_order
from functions.pipeline import PIPELINE, step_for
from loadtest import bench_floor, bench_sniper, ws_client
from loadtest.ws_client import LeanSocket
from local_runtime.services import ensure_database, run_migrations
from shared.adapters.redis.connection import forget_namespace
from shared.domain.messages import NewOrder
from shared.domain.orders import FailureReason, Kind
from shared.domain.states import TERMINAL_STATUSES
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
ORDERS = tuple(
    {"type": "market", "side": side, "baseAsset": base, "quoteAsset": quote, "amount": amount, "slippageBps": 300}
    for base, quote, sell, buy in (("SOL", "USDC", "0.1", "15"), ("SOL", "USDT", "0.05", "7.5"), ("JUP", "USDC", "5", "4"))
    for side, amount in (("sell", sell), ("buy", buy))
)
"""Every scenario's orders, taken in turn: three pairs, both sides alternating, small sizes.
Orders quoted together (one batch) all see the same pool state, and the simulated market
has no arbitrageur: with 0.5 SOL orders on one pair, a batch of ~100 same-side orders moved
the pool past their 3 % slippage bound (and failed, correctly); these keep each pool within
~2 % even for 5,000 orders at once."""
STAGES = (("pending", "routing"), ("routing", "routed"), ("routed", "submitted"), ("submitted", "confirmed"))


@dataclass
class Result:
    name: str
    orders: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds used during the load, by process role (web, worker, postgres, redis, client)."""
    rss_mb: dict[str, float] = field(default_factory=dict)
    """Peak resident MiB during the load, by engine role (web, worker)."""
    syscalls: tuple[int, int] = (0, 0)
    """Read and write system calls of the engine's processes during the load (/proc/PID/io): what
    wakes them, counted exactly whatever else the machine runs."""
    redis_per_order: float = 0.0
    events_per_order: float = 0.0
    delivered: int = 0
    failed: int = 0
    slippage: int = 0
    """Stored orders not confirmed whose failure reason is `slippage`."""
    floor_ms: float | None = None
    """The floor of the order's critical path measured just before (bench_floor), if measured."""
    notes: list[str] = field(default_factory=list)
    """Lines printed under the table."""
    first_ms: float | None = None
    """A reaction's first transaction (the sniper row): what its floor ratio is of."""
    launched_at: float | None = None
    """The reaction's launch call (epoch seconds): the first order's events are timed from it."""


def percentile(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def proc_cpu_rss(pid: int) -> tuple[float, float]:
    """(CPU seconds used, resident MiB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return cpu, rss


def tree(pid: int) -> list[int]:
    """The process and its children (worker --processes N forks children)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(int(c) for c in children)]


def named(command: str) -> list[int]:
    """Every process whose command name is `command` (PostgreSQL's backends, redis-server)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == command:
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


def pss_mib(pids: list[int]) -> float:
    """Proportional set size of these processes together, MiB: shared pages (PostgreSQL's shared
    buffers, libraries) counted once across them, unlike a sum of RSS."""
    total_kib = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total_kib += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total_kib / 1024


def syscalls_of(pids: list[int]) -> tuple[int, int]:
    """Read and write system calls these processes made so far (syscr, syscw)."""
    reads = writes = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                counts = dict(line.split(": ") for line in f.read().splitlines())
        except (OSError, ValueError):
            continue
        reads, writes = reads + int(counts["syscr"]), writes + int(counts["syscw"])
    return reads, writes


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu_rss(pid)[0]
        except (OSError, StopIteration):
            continue
    return total


def postgres_of(database: str | None) -> list[int]:
    """PostgreSQL's processes serving `database`: its backends and the server's own (postmaster, WAL
    writer, checkpointer…), not the backends of other databases (the server is shared with other
    work on this machine). Every `postgres` process when `database` is None."""
    found = []
    for pid in named("postgres"):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        backend = any(peer in command for peer in ("127.0.0.1", "[local]", "::1", "localhost"))
        if database is None or not backend or f" {database} " in command:
            found.append(pid)
    return found


class CpuMeter:
    """CPU seconds of each role's processes between `start()` and `stop()`: the engine's own
    (by role), PostgreSQL's (the server's own processes and the backends of `database`),
    Redis's and this process's (`own`: the load client, or the engine when it runs here)."""

    def __init__(self, roles: dict[str, list[int]], own: str = "client", database: str | None = None) -> None:
        self.own = own
        self._roles = {**roles, "postgres": [], "redis": [], own: [os.getpid()]}
        self._database = database
        self._before: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        self._roles["postgres"] = postgres_of(self._database)
        self._roles["redis"] = named("redis-server")
        return {role: cpu_of(pids) for role, pids in self._roles.items()}

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        return {role: after[role] - self._before.get(role, 0.0) for role in after}


async def forget_keys(redis_url: str, namespace: str) -> None:
    """Delete every Redis key of an engine namespace a run used (the server is shared)."""
    redis = Redis.from_url(redis_url)
    try:
        await forget_namespace(redis, namespace)
    finally:
        await redis.aclose()


class Services:
    def __init__(self, engine_root: Path = ROOT) -> None:
        self.settings = load_settings()
        self.engine_root = engine_root
        """Whose `local_runtime` the scenarios start (another build's tree, e.g. a git worktree)."""

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.settings.database_url)._replace(path=f"/{name}"))

    async def fresh_database(self) -> str:
        url = self.database_url(f"dex_bench_{uuid.uuid4().hex[:8]}")
        await ensure_database(url)
        if self.engine_root == ROOT:
            run_migrations(url)
        else:  # that build's schema
            migrate = "import sys; from local_runtime.services import run_migrations; run_migrations(sys.argv[1])"
            await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", migrate, url], cwd=self.engine_root, check=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                    filter(None, (str(self.engine_root), os.environ.get("PYTHONPATH"))))},
                stdout=subprocess.DEVNULL)
        return url

    def one_process(self) -> tuple[str, ...]:
        """The one-process command of the engine's build (before `--workers inline`, `start` alone)."""
        cli = (self.engine_root / "local_runtime" / "cli.py").read_text()
        return ("start", "--workers", "inline") if '"inline"' in cli or "'inline'" in cli else ("start",)

    async def drop(self, url: str, namespace: str | None = None) -> None:
        """Remove what a scenario left: its database and (if named) its namespace's Redis keys."""
        name = urlsplit(url).path.lstrip("/")
        admin = await asyncpg.connect(self.database_url("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        if namespace is not None:
            await forget_keys(self.settings.redis_url, namespace)

    async def redis_calls(self) -> int:
        redis = Redis.from_url(self.settings.redis_url)
        try:
            stats = await redis.info("commandstats")
            return sum(v["calls"] for v in stats.values())
        finally:
            await redis.aclose()


async def stored_figures(url: str, result: Result) -> int:
    """Fill in what the database holds (events per order, stages, `slippage` failures); returns
    how many stored orders were not confirmed."""
    connection = await asyncpg.connect(url)
    # A reaction's figures are its snipers', not those of the market orders that warmed the engine up.
    kinds = [Kind.SNIPER.value] if result.launched_at is not None else [kind.value for kind in Kind]
    try:
        orders = await connection.fetchval("SELECT count(*) FROM orders WHERE kind = ANY($1::text[])", kinds) or 1
        events = await connection.fetchval("SELECT count(*) FROM order_events WHERE order_id IN"
                                           " (SELECT id FROM orders WHERE kind = ANY($1::text[]))", kinds)
        result.events_per_order = events / orders
        not_confirmed, result.slippage = await connection.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE failure_reason = $1) FROM orders WHERE status <> 'confirmed'",
            FailureReason.SLIPPAGE)
        for row in await connection.fetch("SELECT coalesce(failure_reason, status) AS why, count(*) AS n FROM orders"
                                          " WHERE status <> 'confirmed' GROUP BY 1 ORDER BY 2 DESC LIMIT 3"):
            print(f"  {result.name or 'scenario'}: {row['n']} not confirmed: {row['why'][:150]}", file=sys.stderr)
        if result.launched_at is not None:  # the path of the first order to reach `submitted`
            rows = await connection.fetch(
                "SELECT status, extract(epoch FROM created_at) AS at FROM order_events WHERE order_id ="
                " (SELECT order_id FROM order_events WHERE status = 'submitted' AND created_at >= to_timestamp($1)"
                " ORDER BY created_at LIMIT 1) AND created_at >= to_timestamp($1) ORDER BY seq", result.launched_at)
            result.notes.append("first transaction's path, ms after the launch call: " + ", ".join(
                f"{r['status']} {(float(r['at']) - result.launched_at) * 1000:.1f}" for r in rows))
        for start, end in STAGES:
            rows = await connection.fetch(
                "SELECT extract(epoch FROM b.created_at - a.created_at) * 1000 AS ms FROM order_events a"
                " JOIN order_events b ON a.order_id = b.order_id AND b.status = $2 WHERE a.status = $1"
                " AND a.order_id IN (SELECT id FROM orders WHERE kind = ANY($3::text[]))", start, end, kinds)
            result.stages[f"{start}→{end}"] = [float(r["ms"]) for r in rows]
    finally:
        await connection.close()
    return not_confirmed


@dataclass(frozen=True)
class Process:
    """One engine process of a scenario: its role in the table and its `local_runtime` command;
    a `web` one listens, each on its own port."""

    role: str
    command: tuple[str, ...]
    web: bool = False


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def start_processes(launches: list[tuple[tuple[str, ...], int | None]],
                          env: dict[str, str], root: Path = ROOT) -> list[subprocess.Popen]:
    """Start each `local_runtime` command of the build at `root` (with PORT set when it has a
    port) and wait until every port answers."""
    log = open(ROOT / "loadtest" / "out" / "bench-engine.log", "ab")  # noqa: SIM115 - lives with the processes
    if root != ROOT:  # that tree first (what else PYTHONPATH names after it: packages only that build needs)
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))}
    processes = [subprocess.Popen([sys.executable, "-m", "local_runtime", *command], cwd=root,
                                  env=env if port is None else {**env, "PORT": str(port)},
                                  stdout=log, stderr=subprocess.STDOUT) for command, port in launches]
    waiting = {port for _, port in launches if port is not None}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in processes):
            break
        waiting = {port for port in waiting if not await listening(port)}
        if not waiting:
            await asyncio.sleep(1.5)  # workers subscribe to their queues
            return processes
        await asyncio.sleep(0.2)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.wait(15)
    raise RuntimeError("the engine did not start (see loadtest/out/bench-engine.log)")


class _Seen(msgspec.Struct):
    """What the load client reads of each message (every message is decoded)."""

    type: str | None = None
    status: str | None = None
    seq: int | None = None


_seen = msgspec.json.Decoder(_Seen)


async def round_trip(socket: LeanSocket, order: dict, started: float, result: Result) -> None:
    """Send one order on an order socket and read its events up to the terminal one (or an
    error); the time from `started` goes into `result`."""
    done: asyncio.Future[_Seen | None] = asyncio.get_running_loop().create_future()

    def on_message(text: str | None) -> None:
        if done.done():
            return
        if text is None:
            done.set_result(None)
            return
        event = _seen.decode(text)
        result.delivered += event.seq is not None
        if event.type == "error" or event.status in TERMINAL_STATUSES:
            done.set_result(event)

    socket.on_message = on_message
    socket.send_text(json.dumps(order))
    event = await done
    if event is None:
        raise ConnectionError("the engine closed an order socket")
    result.latencies.append((time.perf_counter() - started) * 1000)
    result.orders += 1
    result.failed += event.status != "confirmed"


async def websocket_load(urls: list[str], key: str, window: Window, sockets: int, seconds: float,
                         rate: float | None) -> Result:
    """Closed loop (each socket: submit, wait for terminal, again) or, with `rate`, open loop;
    the sockets spread evenly over `urls`. Measured once the sockets are open and the engine is
    warm (`warm_sockets`), until the last order ended (`window`)."""
    result = Result("")
    stop_at = 0.0  # set once the sockets are open

    async def closed(socket) -> None:
        while time.monotonic() < stop_at:
            await one(socket, time.perf_counter())

    async def one(socket, started: float) -> None:
        await round_trip(socket, ORDERS[result.orders % len(ORDERS)], started, result)

    async def scheduled(idle: asyncio.Queue) -> None:
        started = time.perf_counter()  # waiting for a free socket counts: the load does not back off
        socket = await idle.get()
        try:
            await one(socket, started)
        finally:
            idle.put_nowait(socket)

    connections = await warm_sockets(urls, key, sockets)
    await window.begin()
    started = time.monotonic()
    stop_at = started + seconds
    try:
        if rate is None:
            await asyncio.gather(*(closed(s) for s in connections))
        else:
            idle: asyncio.Queue = asyncio.Queue()
            for socket in connections:
                idle.put_nowait(socket)
            pending, n = set(), 0
            while time.monotonic() < stop_at:
                pending.add(asyncio.create_task(scheduled(idle)))
                n += 1
                await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            await asyncio.gather(*pending)
        await window.end()
    finally:
        for socket in connections:
            await socket.close()
    result.seconds = time.monotonic() - started
    return result


async def open_sockets(urls: list[str], key: str, count: int) -> list:
    """`count` order sockets, the n-th on `urls[n % len(urls)]` (spread evenly), opened a few
    hundred at a time (the listen backlog is finite)."""
    headers = {"X-API-Key": key}
    sockets: list[LeanSocket] = []
    while len(sockets) < count:
        wave = range(len(sockets), min(count, len(sockets) + 250))
        sockets += await asyncio.gather(*(ws_client.connect(f"{urls[n % len(urls)]}/api/orders/execute", headers)
                                          for n in wave))
    return sockets


async def many_in_flight(urls: list[str], key: str, window: Window, sockets: int) -> Result:
    """Every socket sends one order at the same moment and waits for its terminal event: `sockets`
    orders in flight at once on as many open WebSockets (every order is quoted before any lands)."""
    result = Result("")
    connections = await warm_sockets(urls, key, sockets)
    await window.begin()
    started = time.monotonic()

    try:
        await asyncio.gather(*(round_trip(socket, ORDERS[n % len(ORDERS)], time.perf_counter(), result)
                               for n, socket in enumerate(connections)))
        await window.end()
    finally:
        await asyncio.gather(*(socket.close() for socket in connections))
    result.seconds = time.monotonic() - started
    return result


class MemorySampler:
    """Peak memory, sampled every half second in a thread of its own: the RSS of each engine role
    and the PSS of everything the engine runs on (its processes, PostgreSQL's, Redis's). Finding
    and reading those processes in /proc cost this process 37.5–51.5 ms of CPU per second, which is
    the bench's own work, not the load client's: `cpu_s` counts it, and the Window leaves it out."""

    def __init__(self, roles: dict[str, list[int]], database: str) -> None:
        self._roles, self._database = roles, database
        self.peak = dict.fromkeys((*roles, "all (PSS)"), 0.0)
        self.cpu_s = 0.0

    def _sample(self) -> None:
        started = time.thread_time()
        for role, pids in self._roles.items():
            self.peak[role] = max(self.peak[role], sum(proc_cpu_rss(p)[1] for p in pids))
        everything = [p for pids in self._roles.values() for p in pids] + postgres_of(self._database) + named(
            "redis-server")
        self.peak["all (PSS)"] = max(self.peak["all (PSS)"], pss_mib(everything))
        self.cpu_s += time.thread_time() - started

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self._sample)
            await asyncio.sleep(0.5)


class Window:
    """What the engine's processes use is counted from `begin()` (the load's sockets are open) to
    `end()` (its last order ended, before the sockets close): opening and closing connections is
    no order's work, and 5,000 sockets closing at once cost 0.7 s of CPU (web process and client).
    A load that never calls `end()` is counted until it returns. The memory sampler's CPU is not
    the client's."""

    def __init__(self, meter: CpuMeter, services: Services, engine: list[int], sampler: MemorySampler) -> None:
        self._meter, self._services, self._engine, self._sampler = meter, services, engine, sampler
        self._calls_before, self._syscalls_before, self._sampling_before = 0, (0, 0), 0.0
        self.cpu_s: dict[str, float] | None = None
        self.syscalls: tuple[int, int] = (0, 0)
        self.redis_calls = 0

    async def begin(self) -> None:
        self._sampling_before = self._sampler.cpu_s
        self._meter.start()
        self._syscalls_before = syscalls_of(self._engine)
        self._calls_before = await self._services.redis_calls()

    async def end(self) -> None:
        if self.cpu_s is not None:
            return
        self.redis_calls = await self._services.redis_calls() - self._calls_before
        self.cpu_s = self._meter.stop()
        self.cpu_s[self._meter.own] -= self._sampler.cpu_s - self._sampling_before
        self.syscalls = tuple(after - before for after, before in zip(syscalls_of(self._engine),
                                                                      self._syscalls_before, strict=True))


async def engine_scenario(name: str, services: Services, layout: tuple[Process, ...], load,
                          env: dict[str, str] | None = None) -> Result:
    """Start the engine's processes (`layout`; each web one on its own port) on a fresh database,
    run `load(urls, key, window)` against their web ports, and fill in what the processes used
    in the `window` (CPU by process role, system calls, Redis commands), peak memory and what was stored.
    Peak memory: RSS of each engine process, and the PSS of everything the engine runs on (its
    processes, PostgreSQL's, Redis's) together."""
    url = await services.fresh_database()
    database = urlsplit(url).path.lstrip("/")
    first_port = 18000 + os.getpid() % 1000
    ports = [first_port + n if p.web else None for n, p in enumerate(layout)]
    key = f"dex_bench-{uuid.uuid4().hex}"
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "DATABASE_URL": url, "DEX_NAMESPACE": namespace,
           "DEX_SIM_ZERO_DELAYS": "true", "DEX_DEV_API_KEY": key, "DEX_ORDERS_PER_MINUTE": "100000000",
           "DEX_MAX_IN_FLIGHT": "1000000", "DEX_WS_MAX_SOCKETS_PER_CLIENT": "100000", "DEX_LOG_LEVEL": "WARNING",
           **(env or {})}
    layout = tuple(Process(p.role, services.one_process(), p.web) if p.command == ONE_PROCESS_COMMAND else p
                   for p in layout)
    processes = await start_processes([(p.command, port) for p, port in zip(layout, ports, strict=True)], env,
                                      services.engine_root)
    roles = {p.role: tree(proc.pid) for p, proc in zip(layout, processes, strict=True)}
    memory = MemorySampler(roles, database)
    window = Window(CpuMeter(roles, database=database), services, [pid for pids in roles.values() for pid in pids],
                    memory)
    try:
        sampler = asyncio.create_task(memory.run())
        try:
            result = await load([f"ws://127.0.0.1:{port}" for port in ports if port is not None], key, window)
            await window.end()
        finally:
            sampler.cancel()
        result.redis_per_order = window.redis_calls / max(1, result.orders)
        result.cpu_s = window.cpu_s
        result.syscalls = window.syscalls
        result.rss_mb = memory.peak
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            proc.wait(15)
    await stored_figures(url, result)
    await services.drop(url, namespace)
    result.name = name
    return result


async def in_process_scenario(services: Services, concurrency: int, seconds: float) -> Result:
    """The four functions chained by direct calls on the real services: no queue, no socket."""
    url = await services.fresh_database()
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    settings = services.settings.with_changes(database_url=url, namespace=namespace,
                                              sim=services.settings.sim.__class__(zero_delays=True))
    world = await bootstrap(settings)
    requests = [decode_order(json.dumps(order)) for order in ORDERS]
    result = Result("no queue, in-process")
    stop_at = time.monotonic() + seconds
    meter = CpuMeter({}, own="engine", database=urlsplit(url).path.lstrip("/"))  # the engine runs here
    meter.start()
    calls_before = await services.redis_calls()

    async def worker() -> None:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            message = NewOrder(requests[result.orders % len(requests)], "bench", uuid.uuid4().hex)
            while message is not None:
                message = await PIPELINE[step_for(message)].handle(message, world.ctx)
            result.latencies.append((time.perf_counter() - started) * 1000)
            result.orders += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    result.redis_per_order = (await services.redis_calls() - calls_before) / max(1, result.orders)
    result.cpu_s = meter.stop()
    result.rss_mb = {"engine": proc_cpu_rss(os.getpid())[1]}
    await world.close()
    result.failed = await stored_figures(url, result)  # no client here: what the database holds
    await services.drop(url, namespace)
    return result


WEB = ("start", "--workers", "none")
WORKER = ("worker", "--processes", "1")
ONE_PROCESS_COMMAND = ("start", "--workers", "inline")
ONE_PROCESS = (Process("engine", ONE_PROCESS_COMMAND, web=True),)
"""`start` alone would also start a worker process (its default): inline is one process."""
WEB_AND_WORKER = (Process("web", WEB, web=True), Process("worker", WORKER))
TWO_WEB_TWO_WORKERS = (Process("web1", WEB, web=True), Process("web2", WEB, web=True),
                       Process("worker1", WORKER), Process("worker2", WORKER))
"""Two `worker --processes 1` rather than one `--processes 2`: each worker's CPU and RSS apart."""
ONE_AT_A_TIME = {"DEX_BATCH_MAX": "1"}
"""The baseline: one message per SAQ job, one statement per status change, one publish per event."""


def closed_loop(args):
    return lambda urls, key, window: websocket_load(urls, key, window, args.sockets, args.seconds, None)


def at_100_per_second(args):
    return lambda urls, key, window: websocket_load(urls, key, window, 50, args.seconds, rate=100)


def with_floor(path: dict, run):
    """Measure the floor of `path` (bench_floor) on a fresh database, then run the scenario."""

    async def measured(services: Services, args) -> Result:
        url = await services.fresh_database()
        try:
            costs = await bench_floor.measure(url, services.settings.redis_url)
        finally:
            await services.drop(url)
        result = await run(services, args)
        result.floor_ms = costs.floor_ms(path)
        result.notes.insert(0, f"{result.name}: floor {costs.describe(path)} (costs p50 at 100 Hz; p99 commit"
                               f" {costs.commit[1]:.2f}, Redis {costs.redis[1]:.2f}, wake-up {costs.wakeup[1]:.2f} ms)")
        return result

    return measured


def rate_100(name: str, layout: tuple[Process, ...]):
    return with_floor(bench_floor.MARKET_PATH, lambda services, args: engine_scenario(
        f"engine, {name}, at 100 orders/s", services, layout, at_100_per_second(args)))


async def warm_sockets(urls: list[str], key: str, count: int) -> list:
    """`count` order sockets (`open_sockets`) on an engine warmed up through them (`warm_up`): how
    every WebSocket scenario starts. The sockets are closed again if the warm-up fails."""
    sockets = await open_sockets(urls, key, count)
    try:
        await warm_up(sockets)
    except BaseException:
        await asyncio.gather(*(socket.close() for socket in sockets))
        raise
    return sockets


async def warm_up(sockets: list, count: int = 50) -> None:
    """`count` market orders at once, each to its terminal event, before anything is measured: a
    load or a launch meets an engine that has traded (its processes' statements prepared, their
    connections open, every step's code run once), not one fresh from its start. Unwarmed, the
    first dozen orders of a 100 orders/s row took 100-200 ms each (10-20 ms afterwards): the
    slowest 15 of its 1,500, which made its p99 a measure of the processes' start."""
    done = Result("")
    await asyncio.gather(*(round_trip(socket, ORDERS[n % len(ORDERS)], time.perf_counter(), done)
                           for n, socket in enumerate(sockets[:count])))
    if done.failed:
        raise RuntimeError(f"{done.failed} of the warm-up's {done.orders} orders did not confirm")


def snipers(args):
    """bench_sniper's launch against `args.snipers` waiting orders, as a Result: the latencies are
    launch → each sniper's `submitted`."""

    async def load(urls: list[str], key: str, window: Window) -> Result:
        sockets = await warm_sockets(urls, key, args.snipers)
        try:
            figures = await bench_sniper.sniper_reaction(sockets, urls[0].replace("ws://", "http://"), key, window)
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
        result = Result("", orders=args.snipers, seconds=figures["seconds"], latencies=figures["submitted_ms"],
                        delivered=figures["delivered"], failed=args.snipers - figures["confirmed"])
        result.notes.append(f"launch → first transaction (first `submitted`) {figures['first_ms']:.1f} ms; the launch"
                            f" call answered in {figures['launch_answer_ms']:.1f} ms ({figures['fired']} fired);"
                            f" last sniper ended {figures['seconds'] * 1000:.0f} ms after the launch")
        result.first_ms = figures["first_ms"]
        result.launched_at = figures["launched_at"]
        return result

    return load


SCENARIOS = {
    "one-process-unbatched": lambda services, args: engine_scenario(
        "engine, 1 process, one at a time", services, ONE_PROCESS, closed_loop(args), ONE_AT_A_TIME),
    "one-process": lambda services, args: engine_scenario(
        "engine, 1 process", services, ONE_PROCESS, closed_loop(args)),
    "web-and-worker-unbatched": lambda services, args: engine_scenario(
        "engine, web + worker, one at a time", services, WEB_AND_WORKER, closed_loop(args), ONE_AT_A_TIME),
    "web-and-worker": lambda services, args: engine_scenario(
        "engine, web + worker", services, WEB_AND_WORKER, closed_loop(args)),
    "two-web-two-workers": lambda services, args: engine_scenario(
        "engine, 2 web + 2 workers", services, TWO_WEB_TWO_WORKERS, closed_loop(args)),
    "rate-100": rate_100("web + worker", WEB_AND_WORKER),
    "rate-100-one-process": rate_100("1 process", ONE_PROCESS),
    "rate-100-two-web-two-workers": rate_100("2 web + 2 workers", TWO_WEB_TWO_WORKERS),
    "no-queue": lambda services, args: in_process_scenario(services, args.sockets, args.seconds),
    "5000-sockets": lambda services, args: engine_scenario(
        f"{args.in_flight:,} in flight, default delays", services, WEB_AND_WORKER,
        lambda urls, key, window: many_in_flight(urls, key, window, args.in_flight), {"DEX_SIM_ZERO_DELAYS": "false"}),
    "sniper": with_floor(bench_floor.SNIPER_PATH, lambda services, args: engine_scenario(
        f"{args.snipers:,} snipers, one launch (launch → submitted)", services, WEB_AND_WORKER, snipers(args))),
}


CPU_ROLES = ("web", "worker", "engine", "postgres", "redis", "client")


def _spread(values: list[float]) -> str:
    """p50 / p95 / p99 of `values`, in ms."""
    return " / ".join(f"{percentile(values, p):.1f}" for p in (50, 95, 99)) if values else "—"


def _role_order(role: str) -> int:
    """Where a role goes in a cell: CPU_ROLES' order, web1 and web2 where web goes."""
    kind = role.rstrip("0123456789")
    return CPU_ROLES.index(kind) if kind in CPU_ROLES else len(CPU_ROLES)


def per_role(figures: dict[str, float], scale: float, digits: int) -> str:
    roles = sorted(figures, key=_role_order)  # stable: web1 before web2, as the layout has them
    return " · ".join(f"{role} {figures[role] * scale:.{digits}f}" for role in roles)


def _against_floor(r: Result) -> str:
    """p50 and p99 as multiples of the floor (a reaction: its first transaction's)."""
    if r.floor_ms is None:
        return "—"
    if r.first_ms is not None:
        return f"{r.floor_ms:.1f} ms: first {r.first_ms / r.floor_ms:.1f}×"
    return f"{r.floor_ms:.1f} ms: {bench_floor.ratios(percentile(r.latencies, 50), percentile(r.latencies, 99), r.floor_ms)}"


def cpu_per_order(r: Result) -> float:
    return sum(r.cpu_s.values()) * 1000 / max(1, r.orders)


def burst_penalty(results: list[Result]) -> str | None:
    """The burst's CPU per order against steady load's (web + worker, closed loop) in this run."""
    by_name = {r.name: r for r in results}
    steady = by_name.get("engine, web + worker")
    burst = next((r for r in results if r.name.endswith("in flight, default delays")), None)
    if steady is None or burst is None:
        return None
    ratio = cpu_per_order(burst) / cpu_per_order(steady)
    engine = sum(burst.cpu_s.get(k, 0) for k in ("web", "worker")) / max(1, burst.orders) / (
        sum(steady.cpu_s.get(k, 0) for k in ("web", "worker")) / max(1, steady.orders))
    return (f"burst: {cpu_per_order(burst):.2f} ms of CPU per order against {cpu_per_order(steady):.2f} at steady load"
            f" (web + worker, closed loop): {ratio:.2f}× (the engine's processes alone {engine:.2f}×)")


def table(results: list[Result]) -> str:
    """One row per scenario; latencies in ms as p50 / p95 / p99."""
    stage_names = [f"{a}→{b}" for a, b in STAGES]
    lines = [
        "| scenario | orders/s | submit→confirmed | p50 / p99 ÷ floor | " + " | ".join(stage_names) + " | CPU ms / order | "
        "CPU ms / order by process | engine syscalls / order (read + write) | peak RSS MiB | Redis cmds / order | "
        "events stored / order | delivered / order | not confirmed |",
        "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in stage_names)
        + " | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        orders = max(1, r.orders)
        stages = " | ".join(_spread(r.stages.get(s, [])) for s in stage_names)
        delivered = f"{r.delivered / orders:.2f}" if r.delivered else "—"
        lines.append(
            f"| {r.name} | {r.orders / r.seconds:.0f} | {_spread(r.latencies)} | {_against_floor(r)} | {stages}"
            f" | {cpu_per_order(r):.2f} | {per_role(r.cpu_s, 1000 / orders, 2)}"
            f" | {f'{r.syscalls[0] / orders:.1f} + {r.syscalls[1] / orders:.1f}' if any(r.syscalls) else '—'}"
            f" | {per_role(r.rss_mb, 1, 0)} | {r.redis_per_order:.1f} | {r.events_per_order:.2f} | {delivered}"
            f" | {r.failed}{f' ({r.slippage} slippage)' if r.failed or r.slippage else ''} |"
        )
    notes = [note for r in results for note in r.notes]
    if (penalty := burst_penalty(results)) is not None:
        notes.append(penalty)
    return "\n".join(lines + [""] * bool(notes) + [f"* {note}" for note in notes])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--sockets", type=int, default=200, help="sockets (orders in flight) of the closed-loop scenarios")
    parser.add_argument("--in-flight", type=int, default=5000, help="orders (and sockets) of 5000-sockets")
    parser.add_argument("--snipers", type=int, default=1000, help="sniper orders waiting for the launch (sniper)")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS),
                        help="run only these scenarios (default: all, in this order)")
    parser.add_argument("--engine-root", type=Path, default=ROOT,
                        help="run the engine of the build in this tree (e.g. a git worktree of an older commit)"
                             " under this bench")
    args = parser.parse_args()
    (ROOT / "loadtest" / "out").mkdir(parents=True, exist_ok=True)
    services = Services(args.engine_root.resolve())
    results = [await SCENARIOS[name](services, args) for name in args.only]
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))  # the engine's loop: the load client costs ~15 % less CPU than on asyncio's
