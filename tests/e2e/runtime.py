"""Starting the local runtime as a child process, and a small client for it, so e2e tests read
as user stories."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import msgspec
import redis
import websockets

from shared.adapters.postgres.api_keys import PgApiKeys
from shared.settings import Settings
from shared.domain.states import TERMINAL_STATUSES
from shared.domain.market import Market, Pool, pair_key
from tests.conftest import REDIS_URL, _admin, database_url, forget_namespace, run_sync

ROOT = Path(__file__).resolve().parents[2]
E2E_API_KEY = "dex_e2e-development-key"
"""The runtime's development key in e2e tests (DEX_DEV_API_KEY)."""


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM a child process still running, and SIGKILL it if it has not exited in 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime:
    python = sys.executable
    root = ROOT

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.env_overrides = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.env = {"DEX_DEV_API_KEY": E2E_API_KEY, **os.environ, **env, "PORT": str(self.port)}
        self.api_key = self.env["DEX_DEV_API_KEY"]
        self.headers = {"X-API-Key": self.api_key}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Runtime:
        return self.spawn().wait_healthy(timeout)

    def spawn(self) -> Runtime:
        """Start the process without waiting for it (several start in parallel; then `wait_healthy`)."""
        self.log = open(ROOT / ".pytest-runtime.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runtime", "start", *self.args], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        return self

    def wait_healthy(self, timeout: float = 30) -> Runtime:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runtime exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("runtime did not become healthy")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as on a crash (no lease released, nothing flushed)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if getattr(self, "log", None) is not None:
            self.log.close()

    def forget_namespace(self) -> None:
        """Delete this runtime's keys from the shared Redis (SAQ's cron jobs, the trigger index,
        limits), once no process of it runs: a test leaves nothing behind."""
        run_sync(forget_namespace(Settings(redis_url=self.env["REDIS_URL"], namespace=self.env["DEX_NAMESPACE"])))

    # --- the API, as a client uses it ---
    def post_order(self, body: bytes | dict, headers: dict | None = None) -> httpx.Response:
        """POST an order with the development key (unless `headers` carries another X-API-Key)."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.base}/api/orders/execute", content=content, headers={**self.headers, **(headers or {})},
                          timeout=10)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"X-API-Key": key or self.api_key}, timeout=10)

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers=self.headers, timeout=10)

    def delete(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.delete(f"{self.base}{path}", headers={"X-API-Key": key or self.api_key}, timeout=10)

    async def create_key(self, client_id: str, orders_per_minute: int | None = None,
                         max_in_flight: int | None = None) -> str:
        """A new API key for `client_id`, stored as the runtime stores keys (hashed)."""
        pool = await asyncpg.create_pool(self.env["DATABASE_URL"], min_size=1, max_size=1)
        try:
            return await PgApiKeys(pool).create(client_id, datetime.now(UTC), orders_per_minute=orders_per_minute,
                                                max_in_flight=max_in_flight)
        finally:
            await pool.close()

    def wait_for_status(self, order_id: str, wanted: set[str], seconds: float = 10, key: str | None = None) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            order = self.get(f"/api/orders/{order_id}", key=key).json()
            if order["status"] in wanted or time.monotonic() > deadline:
                return order
            time.sleep(0.05)

    async def count_orders(self) -> int:
        connection = await asyncpg.connect(self.env["DATABASE_URL"])
        try:
            return await connection.fetchval("SELECT count(*) FROM orders")
        finally:
            await connection.close()


async def receive_json(socket, timeout: float = 20) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def receive_until_terminal(socket, timeout: float = 20) -> list[dict]:
    """Every message on the socket up to and including a terminal event."""
    events = []
    while True:
        message = await receive_json(socket, timeout)
        events.append(message)
        if message.get("status") in TERMINAL_STATUSES:
            return events


@contextlib.contextmanager
def private_runtime(make: Callable[[dict[str, str]], Runtime] = Runtime, start_s: float = 30,
                    **env: str) -> Iterator[Runtime]:
    """A runtime started as a user starts it, on its own port, database (which it creates and
    migrates itself) and Redis namespace, with `env` on top; stopped, and its database and keys
    dropped, afterwards. `make`: the Runtime (sub)class or factory taking the environment."""
    from tests.conftest import REDIS_URL, _admin, database_url, run_sync  # the suite's servers

    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    server = make({"REDIS_URL": REDIS_URL, "DATABASE_URL": database_url(name),
                   "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}", **env}).start(start_s)
    try:
        yield server
    finally:
        server.stop()
        server.forget_namespace()
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def connect(url: str, api_key: str | None = E2E_API_KEY):
    headers = {} if api_key is None else {"X-API-Key": api_key}
    return websockets.connect(url, max_size=2**20, additional_headers=headers)


async def close_code(socket) -> int | None:
    """Read until the server closes the socket; the close code it sent (None: no close frame)."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    except websockets.ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


# --- several engine processes on one database, Redis and namespace ---

class WorkerProcess:
    """`python -m local_runtime worker --functions …`: SAQ workers (and the reconciler), no web server."""

    def __init__(self, env: dict[str, str], functions: str) -> None:
        self.functions = functions
        self.log = open(ROOT / ".pytest-runtime.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runtime", "worker", "--functions", functions],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 30) -> WorkerProcess:
        """Until it prints "worker ready: …" (its workers run)."""
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode() if readable else ""
        assert line.startswith("worker ready"), f"worker {self.functions} did not start: {line!r}"
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


class Cluster:
    """Engine processes — web processes on ports of their own, worker processes — sharing one
    database (a copy of the migrated template, or created by the first web process), one Redis
    and one namespace, as on separate machines. `close()` stops them all and leaves nothing behind."""

    def __init__(self, env: dict[str, str], template: str | None = None) -> None:
        self.database = f"dex_e2e_{uuid.uuid4().hex[:10]}"
        self.namespace = f"e2e{uuid.uuid4().hex[:8]}"
        if template is not None:
            run_sync(_admin(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"'))
        self.env = {
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": database_url(self.database),
            "DEX_NAMESPACE": self.namespace,
            "DEX_ORDERS_PER_MINUTE": "100000",
            "DEX_MAX_IN_FLIGHT": "10000",
            **env,
        }
        self.webs: list[Runtime] = []
        self.workers: list[WorkerProcess] = []

    def start(self, webs: int = 1, workers: Iterable[str] = (), web_args: tuple[str, ...] = ("--workers", "none"),
              timeout: float = 60) -> Cluster:
        """`webs` web processes and a worker process for each entry of `workers` (functions, as
        "quote" or "all"), started together; returns once every one serves."""
        started = [Runtime(self.env, args=web_args).spawn() for _ in range(webs)]
        self.webs += started
        spawned = [WorkerProcess({**os.environ, **self.env}, functions) for functions in workers]
        self.workers += spawned
        for web in started:
            web.wait_healthy(timeout)
        for worker in spawned:
            worker.wait_ready(timeout)
        return self

    def add_worker(self, functions: str) -> WorkerProcess:
        worker = WorkerProcess({**os.environ, **self.env}, functions)
        self.workers.append(worker)
        return worker.wait_ready()

    @property
    def processes(self) -> dict[int, Runtime | WorkerProcess]:
        """Every engine process still running, by pid."""
        return {p.pid: p for p in [*self.webs, *self.workers] if p.process.poll() is None}

    def close(self) -> None:
        for process in [*self.workers, *self.webs]:
            process.stop()
        run_sync(forget_namespace(Settings(redis_url=REDIS_URL, namespace=self.namespace)))
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))

    # --- the market lease ---
    def lease_holder(self) -> str | None:
        """The market lease's value ("hostname:pid"), or None while nobody holds it."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            value = client.get(f"{self.namespace}:market-driver")
        finally:
            client.close()
        return None if value is None else value.decode()

    def wait_lease_holder(self, seconds: float, not_pid: int | None = None) -> int | None:
        """The pid of the lease holder once one holds it (other than `not_pid`) within `seconds`, else None."""
        deadline = time.monotonic() + seconds
        while True:
            holder = self.lease_holder()
            if holder is not None and (pid := int(holder.rsplit(":", 1)[1])) != not_pid:
                return pid
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    async def fetch(self, query: str, *args) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.env["DATABASE_URL"])
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()


# --- conservation: what the pools gained and lost is what the ledger says the swaps paid in and took out ---

@dataclass(frozen=True)
class Balance:
    """One token of one pool: its reserve before and now, and the successful swaps' flows."""

    pool: str
    """venue and pair, e.g. "raydium SOL/USDC"."""
    token: str
    before: int
    after: int
    paid_in: int
    """Σ amount_in of successful ledger rows selling this token into the pool."""
    taken_out: int
    """Σ amount_out of successful ledger rows buying this token from the pool."""
    swaps: int

    @property
    def balanced(self) -> bool:
        return self.after - self.before == self.paid_in - self.taken_out


_FLOWS = """
SELECT venue, input_mint, output_mint, count(*) AS swaps, sum(amount_in) AS paid_in, sum(amount_out) AS taken_out
FROM chain_transactions WHERE succeeded = 1 GROUP BY 1, 2, 3
"""


async def pool_balances(database: str, before: Market | None = None) -> list[Balance]:
    """Per pool and token, read from PostgreSQL: the reserve in `before` (default `Market.initial()`,
    the world the engine seeds) and now in sim_pools, and the successful swaps' flows in
    chain_transactions. A pool absent from `before` (launched since) starts empty."""
    before = before or Market.initial()
    connection = await asyncpg.connect(database)
    try:
        pools = await connection.fetch("SELECT venue, pair_key, state FROM sim_pools ORDER BY pool_key")
        flows = await connection.fetch(_FLOWS)
        symbols = {r["mint"]: r["symbol"] for r in await connection.fetch("SELECT mint, symbol FROM sim_tokens")}
    finally:
        await connection.close()
    moved: dict[tuple[str, str, str], list[int]] = {}  # (venue, pair key, mint) -> [paid in, taken out, swaps]
    for row in flows:
        key = pair_key(row["input_mint"], row["output_mint"])
        paid = moved.setdefault((row["venue"], key, row["input_mint"]), [0, 0, 0])
        paid[0] += int(row["paid_in"])
        paid[2] += row["swaps"]
        taken = moved.setdefault((row["venue"], key, row["output_mint"]), [0, 0, 0])
        taken[1] += int(row["taken_out"])
    balances = []
    for row in pools:
        now = msgspec.msgpack.decode(row["state"], type=Pool)
        then = before.pools.get((row["venue"], row["pair_key"]))
        name = f"{row['venue']} {symbols.get(now.mint_x, now.mint_x[:6])}/{symbols.get(now.mint_y, now.mint_y[:6])}"
        for mint in (now.mint_x, now.mint_y):
            paid_in, taken_out, swaps = moved.pop((row["venue"], row["pair_key"], mint), [0, 0, 0])
            balances.append(Balance(name, symbols.get(mint, mint[:6]), 0 if then is None else then.reserve_of(mint),
                                    now.reserve_of(mint), paid_in, taken_out, swaps))
    assert not moved, f"ledger rows for pools that do not exist: {moved}"
    return balances


def balance_table(balances: list[Balance]) -> str:
    """The check as a small table (base units)."""
    header = ("pool", "token", "swaps in", "Δ reserve", "Σ in − Σ out", "ok")
    rows = [(b.pool, b.token, str(b.swaps), f"{b.after - b.before:+,}", f"{b.paid_in - b.taken_out:+,}",
             "yes" if b.balanced else "NO") for b in balances]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def assert_conserved(database: str, before: Market | None = None) -> list[Balance]:
    """Every pool's change in every reserve equals what successful swaps paid in minus what they took
    out, to the base unit; prints the table (pytest -s shows it)."""
    balances = run_sync(pool_balances(database, before))
    table = balance_table(balances)
    print(f"\nconservation per pool (base units; reserves vs Market.initial(), flows from chain_transactions)\n{table}")
    assert all(b.balanced for b in balances), table
    return balances
