"""PostgreSQL going away under the running runtime and coming back (a TCP proxy in front of it is cut),
and a private PostgreSQL killed with SIGKILL and a private Redis restarted under load while sockets
follow their orders."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared.domain.states import TERMINAL_STATUSES
from shared.settings import Settings
from tests.conftest import DATABASE_URL, REDIS_URL, _admin, forget_namespace, run_sync
from tests.e2e.runtime import (
    Runtime,
    WorkerProcess,
    connect,
    free_port,
    receive_json,
    receive_until_terminal,
    stop_process,
)

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5"}
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


class CuttableProxy:
    """A TCP proxy to PostgreSQL on its own event loop thread; `cut()` closes the listener and
    every open connection, `restore()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def restore(self) -> None:
        async def listen():
            self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        self._call(listen())

    def cut(self) -> None:
        async def close():
            self.server.close()
            for writer in self.writers:
                writer.close()
            self.writers.clear()
        self._call(close())


@pytest.fixture
def behind_proxy():
    """A runtime whose PostgreSQL is reached through a cuttable proxy. Orders take ~1 s (the
    confirmation); a step's deadline is short (3 s × 3 attempts + 1 s) and the reconciler runs
    every second, so an order whose step gave up during the outage is re-driven soon after."""
    target = urlsplit(DATABASE_URL)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.restore()
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    namespace = f"e2e{uuid.uuid4().hex[:8]}"
    direct = urlunsplit(target._replace(path=f"/{name}"))
    via_proxy = urlunsplit(target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}",
                                           path=f"/{name}"))
    runtime = Runtime({
        "REDIS_URL": REDIS_URL, "DATABASE_URL": via_proxy, "DEX_NAMESPACE": namespace,
        "DEX_SIM_DRIFT_INTERVAL_MS": "0", "DEX_SIM_QUOTE_LATENCY_MS_RAYDIUM": "0",
        "DEX_SIM_QUOTE_LATENCY_MS_METEORA": "0", "DEX_SIM_QUOTE_JITTER_MS": "0", "DEX_SIM_BUILD_DELAY_MS": "0",
        "DEX_SIM_SUBMIT_DELAY_MS": "0", "DEX_SIM_CONFIRM_DELAY_MS": "1000", "DEX_SIM_CONFIRM_JITTER_MS": "0",
        "DEX_EXECUTE_JOB_TIMEOUT_S": "3", "DEX_STALL_GRACE_S": "1", "DEX_RECONCILE_INTERVAL_S": "1",
    }).start()
    try:
        yield runtime, proxy, direct
    finally:
        runtime.stop()
        proxy.cut()
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        run_sync(forget_namespace(Settings(redis_url=REDIS_URL, namespace=namespace)))


async def fetch(url: str, sql: str, *args):
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


def assert_503_naming_postgres(answer) -> None:
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert "PostgreSQL" in body["error"] and body["field"] is None
    assert answer.headers["Retry-After"].isdigit()


async def test_while_postgres_is_down_nothing_is_taken_and_afterwards_everything_completes_once(behind_proxy):
    """While it is away every way in answers 503 naming PostgreSQL and stores nothing, a valid key is never
    mistaken for a bad one, and an order caught mid-execution still ends once; afterwards orders are accepted
    again within seconds, and a client retrying with its idempotency key gets one order."""
    runtime, proxy, direct = behind_proxy
    unseen_key = await runtime.create_key(f"unseen-{uuid.uuid4().hex[:6]}")  # this process never looked it up
    idempotency = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}

    caught = runtime.post_order(SELL).json()["orderId"]
    assert runtime.wait_for_status(caught, {"submitted"}, seconds=5)["status"] == "submitted"
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        proxy.cut()  # the order is waiting for its confirmation: it will need PostgreSQL to finish
        outage_began = time.monotonic()

        assert_503_naming_postgres(runtime.post_order(SELL))
        assert_503_naming_postgres(runtime.post_order(SELL, idempotency))
        assert_503_naming_postgres(runtime.post_order(SELL, {"X-API-Key": unseen_key}))  # not a 401
        assert_503_naming_postgres(runtime.get(f"/api/orders/{caught}"))
        health = runtime.get("/healthz")
        assert health.status_code == 503 and health.json()["postgres"].startswith("unreachable")
        assert health.json()["redis"] == "ok"
        await socket.send(json.dumps(SELL))
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 503 and "PostgreSQL" in refusal["error"]
        stored = await fetch(direct, "SELECT id FROM orders")
        assert [str(row["id"]) for row in stored] == [caught]  # nothing acknowledged, nothing stored

        await asyncio.sleep(max(0.0, 2 - (time.monotonic() - outage_began)))  # the caught order's step fails
        proxy.restore()

        # Back: a client retrying with its key is accepted within seconds (stale pool connections
        # may still answer 503 once or twice), and its retries after that are repeats.
        deadline, accepted = time.monotonic() + 10, None
        while accepted is None:
            answer = runtime.post_order(SELL, idempotency)
            if answer.status_code == 201:
                accepted = answer.json()["orderId"]
            else:
                assert_503_naming_postgres(answer)
                assert time.monotonic() < deadline, "intake did not recover within 10 s of PostgreSQL's return"
                await asyncio.sleep(0.2)
        again = runtime.post_order(SELL, idempotency)
        assert again.status_code == 200 and again.json()["orderId"] == accepted
        assert runtime.post_order(SELL, {"X-API-Key": unseen_key}).status_code == 201

        await socket.send(json.dumps(SELL))  # the socket that got the 503 takes orders again
        assert [e["status"] for e in await receive_until_terminal(socket, timeout=20)] == FLOW

    for order_id in (caught, accepted):
        assert runtime.wait_for_status(order_id, {"confirmed", "failed"}, seconds=25)["status"] == "confirmed"
    events = runtime.get(f"/api/orders/{caught}/events").json()
    assert [e["status"] for e in events] == FLOW and [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    landed = await fetch(direct, "SELECT order_id, count(*) AS n FROM chain_transactions GROUP BY order_id")
    assert all(row["n"] == 1 for row in landed) and len(landed) == 4
    assert len(await fetch(direct, "SELECT id FROM orders")) == 4


async def test_a_stream_opened_while_postgres_is_down_gets_an_error_503(behind_proxy):
    runtime, proxy, _ = behind_proxy
    order_id = runtime.post_order(SELL).json()["orderId"]
    assert runtime.wait_for_status(order_id, {"confirmed"}, seconds=10)["status"] == "confirmed"
    proxy.cut()
    try:
        async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=0") as socket:
            message = await receive_json(socket, timeout=10)
        assert message["type"] == "error" and message["status"] == 503 and "PostgreSQL" in message["error"]
    finally:
        proxy.restore()
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=4") as socket:
        assert [e["seq"] for e in await receive_until_terminal(socket)] == [5, 6]


# --- a real PostgreSQL SIGKILL and a real Redis restart under load, with private servers ---------

def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (a temporary data directory, a free port, trust auth; as
    the `postgres` user when run as root, which PostgreSQL refuses). `kill()` is a crash: SIGKILL to the
    postmaster and every backend at once; `start()` again recovers on the same data directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="dex-pg-"))
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        subprocess.run([bin_dir / "initdb", "-D", self.data, "--auth=trust", "-U", "postgres", "--no-sync",
                        "-E", "UTF8"], user=self.user, check=True, capture_output=True)
        self.process: subprocess.Popen | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> float:
        """Start (or restart after a crash) and wait until it takes connections: the seconds that took."""
        began = time.monotonic()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.bin_dir / "postgres", "-D", self.data, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                 "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200"],
                user=self.user, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        while not run_sync(self._answers()):
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() - began < 30, "PostgreSQL did not start"
            time.sleep(0.05)
        return time.monotonic() - began

    async def _answers(self) -> bool:
        try:
            connection = await asyncpg.connect(self.url("postgres"), timeout=1)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A Redis server of this test's own, keeping nothing on disk: `shutdown()` loses every key, as a
    restarted cache would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self._cli("PING") != "PONG":
            assert time.monotonic() < deadline, "Redis did not start"
            time.sleep(0.05)

    def shutdown(self) -> None:
        self._cli("SHUTDOWN", "NOSAVE")
        self.process.wait(10)

    def _cli(self, *command: str) -> str:
        """redis-cli, which tries once (redis-py would retry a refused connection for seconds)."""
        done = subprocess.run(["redis-cli", "-p", str(self.port), *command], capture_output=True, text=True,
                              check=False)
        return done.stdout.strip()

    def close(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def private_services():
    """A PostgreSQL and a Redis started by this test, on free ports: the shared ones are never touched."""
    bin_dir = _postgres_bin()
    if bin_dir is None or shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin), redis-server and redis-cli")
    postgres, cache = PrivatePostgres(bin_dir), PrivateRedis()
    try:
        postgres.start()
        cache.start()
        yield postgres, cache
    finally:
        cache.close()
        postgres.close()


NO_DELAY_BUT_CONFIRMING = {
    "DEX_SIM_DRIFT_INTERVAL_MS": "0", "DEX_SIM_QUOTE_LATENCY_MS_RAYDIUM": "0", "DEX_SIM_QUOTE_LATENCY_MS_METEORA": "0",
    "DEX_SIM_QUOTE_JITTER_MS": "0", "DEX_SIM_BUILD_DELAY_MS": "0", "DEX_SIM_SUBMIT_DELAY_MS": "0",
    "DEX_SIM_CONFIRM_DELAY_MS": "1000", "DEX_SIM_CONFIRM_JITTER_MS": "0",
}
"""Every simulated delay zero but the confirmation's 1 s, so each socket has orders in flight when a server goes."""
SOCKETS = 24
ORDERS_PER_SOCKET = 12
SUBMIT_EVERY_S = 1.5
"""24 sockets, each placing an order every 1.5 s: 16 orders/s, 288 in all, over about 18 s."""
POSTGRES_KILLED_AT_S, POSTGRES_DOWN_S = 2.5, 6.0
REDIS_STOPPED_AT_S, REDIS_DOWN_S = 11.5, 3.0
ANSWER_WITHIN_S = 20


@dataclass
class Follower:
    """One client socket: what it submitted, how each submission was answered, every message after."""

    number: int
    submitted: list[str] = field(default_factory=list)  # clientOrderIds, in order
    accepted: dict[str, str] = field(default_factory=dict)  # clientOrderId -> orderId (got `pending`)
    refused: list[dict] = field(default_factory=list)  # (clientOrderId, error) of each refusal
    events: dict[str, list[dict]] = field(default_factory=dict)  # orderId -> its events, as received
    notices: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    order_errors: list[dict] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    answered: list[tuple[float, str]] = field(default_factory=list)  # (when, "pending" or "error")

    def finished(self) -> bool:
        return all(self.events[o] and self.events[o][-1]["status"] in TERMINAL_STATUSES
                   for o in self.accepted.values())


async def follow_orders(runtime: Runtime, follower: Follower, run: str, done_by: float) -> None:
    """Place ORDERS_PER_SOCKET orders on one socket, each after the previous one was answered (its
    `pending`, or an error), then keep the socket open until every accepted order has ended."""
    answers: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()

    async def receive(socket) -> None:
        async for raw in socket:
            message = json.loads(raw)
            if "seq" in message:
                follower.events.setdefault(message["orderId"], []).append(message)
                if message["status"] == "pending":
                    await answers.put(("pending", message))
            elif message["type"] == "notice":
                follower.notices.append(message)
            elif "orderId" in message:
                follower.order_errors.append(message)  # an error about an accepted order: what the issue saw
            else:
                follower.errors.append(message)
                await answers.put(("error", message))

    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        receiver = asyncio.create_task(receive(socket))
        await asyncio.sleep(follower.number * SUBMIT_EVERY_S / SOCKETS)  # the sockets' orders spread evenly
        for n in range(ORDERS_PER_SOCKET):
            client_order_id = f"{run}-{follower.number}-{n}"
            follower.submitted.append(client_order_id)
            await socket.send(json.dumps({**SELL, "amount": "0.05", "clientOrderId": client_order_id}))
            try:
                kind, answer = await asyncio.wait_for(answers.get(), ANSWER_WITHIN_S)
            except TimeoutError:
                follower.unanswered.append(client_order_id)
                break  # a later answer could not be told from this one's
            follower.answered.append((time.monotonic(), kind))
            if kind == "pending":
                assert answer["data"]["clientOrderId"] == client_order_id, answer
                follower.accepted[client_order_id] = answer["orderId"]
            else:
                follower.refused.append((client_order_id, answer))
            await asyncio.sleep(SUBMIT_EVERY_S)
        while not follower.finished() and time.monotonic() < done_by and not receiver.done():
            await asyncio.sleep(0.1)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver  # raises if the socket was closed under it


@pytest.mark.e2e
async def test_sockets_follow_their_orders_through_a_postgres_crash_and_a_redis_restart(private_services):
    """The issue's run, with real processes and real servers: 24 sockets place 288 orders while
    PostgreSQL is killed with SIGKILL (every process of it) and started again 6 s later on the same
    data directory (longer than a follower's 5 s of quiet before it reads PostgreSQL, so the reads of
    the orders in flight meet the outage), then Redis is shut down, losing every key, and started
    again 3 s later. Every
    order acknowledged with `pending` ends on the socket that placed it, its events in seq order with
    none missing or repeated (the same as stored); no accepted order is ever called "not accepted"
    (an `error` only ever answers a refused submission, and a refused submission stored nothing);
    each accepted order filled once."""
    postgres, cache = private_services
    env = {
        "REDIS_URL": cache.url, "DATABASE_URL": postgres.url("dex"), "DEX_NAMESPACE": "outage",
        **NO_DELAY_BUT_CONFIRMING,
        "DEX_ORDERS_PER_MINUTE": "100000", "DEX_MAX_IN_FLIGHT": "10000",
        "DEX_RECONCILE_INTERVAL_S": "1",  # the jobs Redis lost are sent again soon after it is back
    }
    web = Runtime(env, args=("--workers", "none")).start()
    worker = WorkerProcess({**os.environ, **env, "PORT": str(web.port)}, "all")
    try:
        worker.wait_ready()
        run = uuid.uuid4().hex[:8]
        followers = [Follower(n) for n in range(SOCKETS)]
        began = time.monotonic()
        load = asyncio.gather(*(follow_orders(web, f, run, began + 40) for f in followers))

        async def outages() -> dict[str, float]:
            await asyncio.sleep(POSTGRES_KILLED_AT_S)
            killed = time.monotonic()
            postgres.kill()
            await asyncio.sleep(POSTGRES_DOWN_S)
            await asyncio.to_thread(postgres.start)
            postgres_down = time.monotonic() - killed
            await asyncio.sleep(max(0.0, REDIS_STOPPED_AT_S - (time.monotonic() - began)))
            stopped = time.monotonic()
            await asyncio.to_thread(cache.shutdown)
            await asyncio.sleep(REDIS_DOWN_S)
            await asyncio.to_thread(cache.start)
            return {"postgres": postgres_down, "redis": time.monotonic() - stopped}

        down, _ = await asyncio.gather(outages(), load)
        took = time.monotonic() - began
    finally:
        worker.stop()
        web.stop()

    accepted = {c: o for f in followers for c, o in f.accepted.items()}
    refused = [c for f in followers for c, _ in f.refused]
    delivered = sum(len(events) for f in followers for events in f.events.values())
    print(f"\n{len(accepted)} of {SOCKETS * ORDERS_PER_SOCKET} orders acknowledged, {len(refused)} refused (503); "
          f"PostgreSQL down {down['postgres']:.1f} s, Redis down {down['redis']:.1f} s; {delivered} events and "
          f"{sum(len(f.notices) for f in followers)} notices delivered on {SOCKETS} sockets; {took:.1f} s")
    print("notices:", dict(collections.Counter(n["error"] for f in followers for n in f.notices)))
    timeline = collections.Counter((int(t - began), kind) for f in followers for t, kind in f.answered)
    print("acknowledged/refused per second:", " ".join(f"{s}s:{timeline[s, 'pending']}/{timeline[s, 'error']}"
                                                   for s in range(max(s for s, _ in timeline) + 1)))
    unanswered = [c for f in followers for c in f.unanswered]
    stored = await fetch(postgres.url("dex"), "SELECT id, idempotency_key, status, failure_reason FROM orders")
    assert unanswered == [], [r for r in stored if r["idempotency_key"] in unanswered]
    assert len(accepted) + len(refused) == SOCKETS * ORDERS_PER_SOCKET
    assert refused and len(accepted) >= SOCKETS * ORDERS_PER_SOCKET // 3  # both happened, in earnest
    assert any(f.notices for f in followers)  # followers read PostgreSQL while it was away, and waited
    for follower in followers:
        # An error only ever answered a refused submission: none was about an accepted order.
        assert follower.order_errors == []
        assert len(follower.errors) == len(follower.refused)
        assert all(e["status"] == 503 for e in follower.errors), follower.errors
        assert set(follower.events) == set(follower.accepted.values())  # no other order's events
        for events in follower.events.values():
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
            assert events[-1]["status"] in TERMINAL_STATUSES, events
        assert all(n["orderId"] in follower.events for n in follower.notices)

    assert {r["idempotency_key"]: str(r["id"]) for r in stored} == accepted  # refused ones stored nothing
    assert len(stored) == len(accepted)
    events = await fetch(postgres.url("dex"), "SELECT order_id, seq, status FROM order_events ORDER BY order_id, seq")
    received = {(o, e["seq"], e["status"]) for f in followers for o, es in f.events.items() for e in es}
    assert received == {(str(r["order_id"]), r["seq"], r["status"]) for r in events}  # as stored, all of it
    landed = await fetch(postgres.url("dex"),
                         "SELECT order_id, count(*) AS n FROM chain_transactions WHERE succeeded = 1 GROUP BY 1")
    assert all(r["n"] == 1 for r in landed)  # nothing filled twice
    confirmed = [r for r in stored if r["status"] == "confirmed"]
    print(f"{len(confirmed)} confirmed, {len(landed)} filled once; the others:",
          [(r["status"], r["failure_reason"]) for r in stored if r["status"] != "confirmed"])
    assert len(confirmed) == len(accepted)
