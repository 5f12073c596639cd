"""The chaos command: the crash-safety proof.

N market orders go through the runtime — a web process (no workers) and K worker processes
(every function) — while workers are SIGKILLed and restarted at random, the Redis database
is flushed once and the web process is SIGKILLed and restarted once. Then PostgreSQL and
the simulated chain's ledger are checked and a table printed:

    .venv/bin/python -m loadtest.chaos --orders 1000 [--workers 2] [--rate 40] [--seed 7]

Acceptance (exit code 0 only then): stuck 0, executed twice 0, events missing 0 — and every
order acknowledged, every acknowledgement stored, every sampled live stream gapless.

* acknowledged: the web process answered 201 (new) or 200 (a repeat of the order's
  clientOrderId: a retry after a lost answer or a restarting web process). Submissions are
  retried through 503s and connection errors with the same clientOrderId, so a retry never
  makes a second order.
* stuck: acknowledged and not confirmed/failed/cancelled/expired after the drain timeout.
* executed twice: more successful ledger transactions than legs in its plan, more than one
  terminal or `confirmed` event, or confirmed without every leg landed (or with an amount
  out that is not the ledger's sum); or two acknowledgements of one clientOrderId naming
  different orders.
* events missing: the order's event seqs are not exactly 1..last_seq, or its last event's
  status is not the order's status.
* live streams: a sample of orders is followed over `ws /api/orders/{id}/stream?after=N`
  from the moment each is acknowledged (reconnecting with after=<last seq> when the web
  process dies); each must deliver seqs 1..n once each, in order, ending with the terminal
  event, identical to what PostgreSQL holds.

Everything is isolated: a database of its own (dex_chaos_<random>, dropped afterwards unless
--keep), a Redis database index of its own (--redis-db, FLUSHDB before and after), a free
port. Children's output: loadtest/out/chaos-<run>/ (one file per process start). Step
timeouts are short and the reconciler frequent (see CHAOS_ENV), and the simulated chain has
small real delays, so kills land mid-step — between `submitted` and `confirmed` too — and
recovery shows within seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import websockets
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "loadtest" / "out"
TERMINAL = frozenset({"confirmed", "failed", "cancelled", "expired"})
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/dex_engine"

CHAOS_ENV = {
    # Short step timeouts and a frequent reconciler: a step's deadline is 3 s × 3 attempts + 2 s.
    "DEX_TRIGGER_JOB_TIMEOUT_S": "3", "DEX_QUOTE_JOB_TIMEOUT_S": "3", "DEX_ROUTE_JOB_TIMEOUT_S": "3",
    "DEX_EXECUTE_JOB_TIMEOUT_S": "3", "DEX_RECONCILE_INTERVAL_S": "2", "DEX_STALL_GRACE_S": "2",
    "DEX_JOB_ATTEMPTS": "3", "DEX_JOB_RETRY_DELAY_MS": "100",
    # Small but real delays, so a kill lands mid-step (quote, build, submit, confirm).
    "DEX_SIM_ZERO_DELAYS": "false",
    "DEX_SIM_QUOTE_LATENCY_MS_RAYDIUM": "5", "DEX_SIM_QUOTE_LATENCY_MS_METEORA": "8", "DEX_SIM_QUOTE_JITTER_MS": "5",
    "DEX_SIM_BUILD_DELAY_MS": "20", "DEX_SIM_SUBMIT_DELAY_MS": "20", "DEX_SIM_CONFIRM_DELAY_MS": "100",
    "DEX_SIM_CONFIRM_JITTER_MS": "100",
    "DEX_SIM_DRIFT_INTERVAL_MS": "0",  # each process has its own copy of the market: keep them alike
    "DEX_SIM_QUOTE_FAILURE_PERMILLE": "0", "DEX_SIM_CHAIN_FAILURE_PERMILLE": "0",
    # The load client is not what this run limits.
    "DEX_ORDERS_PER_MINUTE": "100000000", "DEX_MAX_IN_FLIGHT": "1000000",
    "DEX_WORKER_CONCURRENCY": "50",
    "DEX_LOG_LEVEL": "WARNING",
}
STALL_S = 2.0
"""A gap this long between two events of an order means it sat until something recovered it."""


# --------------------------------------------------------------------------- configuration


@dataclass
class ChaosConfig:
    orders: int = 1000
    workers: int = 2
    rate: float = 40.0
    """Orders submitted per second (open loop)."""
    kills: int | None = None
    """Worker SIGKILLs while orders flow; None: one every ~kill_every_s (randomised)."""
    kill_every_s: float = 3.0
    flush: bool = True
    web_restart: bool = True
    schedule: list[tuple[float, str]] | None = None
    """A fixed schedule instead of the random one: (fraction of the submission window, "kill" |
    "flush" | "web"); kills, flush and web_restart are then ignored."""
    redis_db: int = 13
    drain_s: float = 120.0
    """How long to wait, after the last acknowledgement, for every order to end."""
    streams: int = 20
    """Orders followed live over the stream WebSocket."""
    seed: int | None = None
    keep: bool = False
    env: dict[str, str] = field(default_factory=dict)
    """More environment for the children (overrides CHAOS_ENV)."""
    quiet: bool = False


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Children get SIGKILL if this process dies without cleaning up (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class Cluster:
    """The web process (workers none) and K worker processes, each restartable; every start
    gets its own log file."""

    def __init__(self, env: dict[str, str], port: int, workers: int, out: Path) -> None:
        self.env, self.port, self.out = env, port, out
        self.web: Child | None = None
        self.workers: list[Child | None] = [None] * workers
        self.generation: collections.Counter[str] = collections.Counter()
        self.finished: list[Child] = []
        out.mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, *args: str) -> Child:
        self.generation[name] += 1
        path = self.out / f"{name}-{self.generation[name]}.log"
        with open(path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "local_runtime", *args], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,  # our stops, not the terminal's Ctrl-C
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        return Child(name, process, path, time.monotonic())

    async def start_web(self, timeout: float = 60) -> float:
        """Start the web process and wait until /healthz answers 200; returns seconds taken."""
        started = time.monotonic()
        self.web = self._spawn("web", "start", "--workers", "none")
        async with httpx.AsyncClient() as client:
            while time.monotonic() < started + timeout:
                if not self.web.alive():
                    raise RuntimeError(f"the web process exited with {self.web.process.returncode}: "
                                       f"see {self.web.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                    if answer.status_code == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the web process did not become healthy: see {self.web.log_path}")

    def start_worker(self, slot: int) -> Child:
        child = self._spawn(f"worker{slot}", "worker", "--functions", "all")
        self.workers[slot] = child
        return child

    async def wait_ready(self, child: Child, timeout: float = 60) -> None:
        """A worker prints "worker ready" once it consumes its queues."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "worker ready" in child.log_path.read_text(errors="replace"):
                return
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}: see {child.log_path}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{child.name} did not get ready: see {child.log_path}")

    def kill(self, child: Child) -> None:
        os.kill(child.pid, signal.SIGKILL)
        child.process.wait()
        self.finished.append(child)

    def children(self) -> list[Child]:
        return [c for c in (self.web, *self.workers) if c is not None]

    def stop(self) -> None:
        """SIGTERM every child still running, SIGKILL what has not ended in 10 s."""
        running = [c for c in self.children() if c.alive()]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
        deadline = time.monotonic() + 10
        for child in running:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.finished.extend(self.children())
        self.web, self.workers = None, [None] * len(self.workers)

    def logs(self) -> list[Path]:
        return sorted(self.out.glob("*.log"))


# --------------------------------------------------------------------------- the client side


def order_body(n: int) -> dict:
    """Order n: mostly small SOL/USDC, alternating sides (the pools stay near their price),
    some SOL/USDT and JUP/USDC, and now and then a large USDT/USDC order (the sells split
    across both venues). Large orders have a pair of their own: every process has its own
    copy of the simulated pools (a quote made in one worker is executed against another's),
    and large SOL trades made the copies disagree by more than the slippage allowed."""
    side = "sell" if n % 2 else "buy"
    rng = random.Random(n)
    if n % 50 in (7, 8):  # large: a sell of 60,000 USDT splits across both venues
        base, quote, amount = "USDT", "USDC", "60000"
    elif n % 10 == 3:
        base, quote = "SOL", "USDT"
        amount = f"{rng.uniform(0.1, 2):.3f}" if side == "sell" else f"{rng.uniform(15, 300):.2f}"
    elif n % 10 == 6:
        base, quote = "JUP", "USDC"
        amount = f"{rng.uniform(10, 500):.2f}" if side == "sell" else f"{rng.uniform(10, 400):.2f}"
    else:
        base, quote = "SOL", "USDC"
        amount = f"{rng.uniform(0.05, 3):.4f}" if side == "sell" else f"{rng.uniform(10, 450):.2f}"
    return {"type": "market", "side": side, "baseAsset": base, "quoteAsset": quote, "amount": amount,
            "slippageBps": 500, "clientOrderId": f"chaos-{n}"}


@dataclass
class Submission:
    n: int
    order_id: str | None = None
    answer: int | None = None  # 201 new, 200 repeat
    attempts: int = 0
    last_error: str = ""
    refused: str | None = None
    ids_seen: set[str] = field(default_factory=set)


@dataclass
class Stream:
    order_id: str
    seqs: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    connects: int = 0
    errors: list[str] = field(default_factory=list)
    done: bool = False

    def problem(self) -> str | None:
        if not self.done:
            return f"no terminal event ({self.errors[-1] if self.errors else 'timed out'})"
        if self.seqs != list(range(1, len(self.seqs) + 1)):
            return f"seqs {self.seqs}"
        if self.statuses[-1] not in TERMINAL:
            return f"ended with {self.statuses[-1]}"
        return None


class Client:
    def __init__(self, port: int, key: str, deadline_s: float) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        self.headers = {"X-API-Key": key}
        self.deadline_s = deadline_s
        self.http = httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        self.posting = 0
        """POSTs sent and not answered yet (the web restart aims at a moment with some)."""

    async def close(self) -> None:
        await self.http.aclose()

    async def submit(self, n: int, on_ack) -> Submission:
        """POST order n until it is acknowledged, retrying (same clientOrderId) through 5xx,
        429 and connection errors — a retry after a lost answer must get the same order."""
        sub = Submission(n)
        body = order_body(n)
        deadline = time.monotonic() + self.deadline_s
        while time.monotonic() < deadline:
            sub.attempts += 1
            self.posting += 1
            try:
                answer = await self.http.post(f"{self.base}/api/orders/execute", json=body, headers=self.headers,
                                              timeout=10)
            except httpx.HTTPError as exc:
                sub.last_error = type(exc).__name__
                answer = None
            finally:
                self.posting -= 1
            if answer is not None:
                if answer.status_code in (200, 201):
                    order_id = answer.json()["orderId"]
                    sub.ids_seen.add(order_id)
                    sub.order_id, sub.answer = order_id, answer.status_code
                    on_ack(sub)
                    return sub
                sub.last_error = f"{answer.status_code} {answer.text[:120]}"
                if answer.status_code < 500 and answer.status_code != 429:
                    sub.refused = sub.last_error
                    return sub
            await asyncio.sleep(0.2)
        return sub

    async def follow(self, order_id: str, until: float) -> Stream:
        """Follow the order's stream from seq 0 to its terminal event, reconnecting with
        after=<last seq> whenever the socket drops (a web restart)."""
        stream = Stream(order_id)
        while time.monotonic() < until and not stream.done:
            last = stream.seqs[-1] if stream.seqs else 0
            stream.connects += 1
            try:
                async with websockets.connect(f"{self.ws}/api/orders/{order_id}/stream?after={last}",
                                              additional_headers=self.headers, open_timeout=5) as ws:
                    while time.monotonic() < until:
                        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, until - time.monotonic())))
                        if message.get("type") == "error":
                            stream.errors.append(f"error {message.get('status')}: {message.get('error')}")
                            break
                        stream.seqs.append(message["seq"])
                        stream.statuses.append(message["status"])
                        if message["status"] in TERMINAL:
                            stream.done = True
                            break
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                stream.errors.append(type(exc).__name__)
            if not stream.done:
                await asyncio.sleep(0.2)
        return stream


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    config: ChaosConfig
    seed: int
    run_dir: Path
    database_url: str = ""
    redis_url: str = ""
    submissions: list[Submission] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    kills: int = 0
    flushes: int = 0
    web_restarts: int = 0
    web_down_s: float = 0.0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    reasons: collections.Counter = field(default_factory=collections.Counter)
    stored_total: int = 0
    not_stored: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stream_problems: dict[str, str] = field(default_factory=dict)
    stalls: dict[str, int] = field(default_factory=dict)
    redrives: int = 0
    logged_errors: collections.Counter = field(default_factory=collections.Counter)
    elapsed_s: float = 0.0
    drain_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f} s  {text}"
        self.timeline.append(line)
        if not self.config.quiet:
            print(line, file=sys.stderr, flush=True)

    @property
    def acknowledged(self) -> list[Submission]:
        return [s for s in self.submissions if s.order_id is not None]

    @property
    def ack_ids(self) -> list[str]:
        return [s.order_id for s in self.acknowledged]

    def passed(self) -> bool:
        return (not self.stuck and not self.twice and not self.missing and not self.not_stored
                and len(self.acknowledged) == self.config.orders == self.stored_total
                and not self.stream_problems)

    def table(self) -> str:
        acked = self.acknowledged
        repeats = sum(1 for s in acked if s.answer == 200)
        reasons = ", ".join(f"{reason} ×{n}" for reason, n in self.reasons.most_common()) or "—"
        stalls = ", ".join(f"{status} {n}" for status, n in sorted(self.stalls.items(), key=lambda kv: -kv[1])) or "—"
        followed = len(self.streams)
        reconnects = sum(max(0, s.connects - 1) for s in self.streams)
        errors = ", ".join(f"{what} ×{n}" for what, n in self.logged_errors.most_common(4)) or "—"
        rows = [
            ("orders submitted", self.config.orders),
            ("acknowledged", f"{len(acked)} ({len(acked) - repeats} × 201, {repeats} × 200 repeat)"),
            ("acknowledged but not stored", len(self.not_stored)),
            ("orders stored", self.stored_total),
            ("confirmed", self.statuses.get("confirmed", 0)),
            ("failed", f"{self.statuses.get('failed', 0)} ({reasons})"),
            ("**stuck**", f"**{len(self.stuck)}**"),
            ("**executed twice**", f"**{len(self.twice)}**"),
            ("**events missing**", f"**{len(self.missing)}**"),
            ("live streams gapless to terminal", f"{followed - len(self.stream_problems)} of {followed} "
                                                 f"({reconnects} reconnects)"),
            (f"orders recovered after a stall > {STALL_S:.0f} s, by status", stalls),
            ("reconciler re-drives (worker logs)", self.redrives),
            ("workers SIGKILLed and restarted", self.kills),
            ("Redis FLUSHDB", self.flushes),
            ("web process SIGKILLed and restarted", f"{self.web_restarts} (down {self.web_down_s:.1f} s)"
             if self.web_restarts else 0),
            ("submission attempts retried", sum(s.attempts - 1 for s in self.submissions)),
            ("ERROR log lines (children)", errors),
            ("drain after the last acknowledgement", f"{self.drain_s:.1f} s"),
            ("elapsed", f"{self.elapsed_s:.1f} s"),
        ]
        return "\n".join(["| | |", "| --- | ---: |", *(f"| {name} | {value} |" for name, value in rows)])

    def details(self, limit: int = 10) -> str:
        lines = []
        for name, ids in (("stuck", self.stuck), ("executed twice", self.twice), ("events missing", self.missing),
                          ("acknowledged but not stored", self.not_stored)):
            if ids:
                lines.append(f"{name}: {', '.join(ids[:limit])}{' …' if len(ids) > limit else ''}")
        for order_id, problem in list(self.stream_problems.items())[:limit]:
            lines.append(f"stream {order_id}: {problem}")
        unacked = [s for s in self.submissions if s.order_id is None]
        for s in unacked[:limit]:
            lines.append(f"order {s.n} not acknowledged after {s.attempts} attempts: {s.refused or s.last_error}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- chaos


def plan_chaos(config: ChaosConfig, duration: float, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds from the first order, action): kills at random moments while orders flow, one
    FLUSHDB at 30–50 % of the window, one web restart at 55–75 %."""
    if config.schedule is not None:
        return sorted((fraction * duration, action) for fraction, action in config.schedule)
    events: list[tuple[float, str]] = []
    if config.kills is None:
        at = rng.uniform(0.5, 1.5) * config.kill_every_s
        while at < duration:
            events.append((at, "kill"))
            at += rng.uniform(0.5, 1.5) * config.kill_every_s
    else:
        events += [(rng.uniform(0.15, 0.9) * duration, "kill") for _ in range(config.kills)]
    if config.flush:
        events.append((rng.uniform(0.3, 0.5) * duration, "flush"))
    if config.web_restart:
        events.append((rng.uniform(0.55, 0.75) * duration, "web"))
    return sorted(events)


async def in_flight(pg: asyncpg.Connection) -> str:
    rows = await pg.fetch("SELECT status, count(*) AS n FROM orders WHERE status <> ALL($1::text[]) GROUP BY 1"
                          " ORDER BY 2 DESC", list(TERMINAL))
    return ", ".join(f"{r['status']} {r['n']}" for r in rows) or "nothing"


async def make_chaos(cluster: Cluster, client: Client, plan: list[tuple[float, str]], report: Report,
                     rng: random.Random, t0: float) -> None:
    pg = await asyncpg.connect(report.database_url)
    try:
        for at, action in plan:
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            moving = await in_flight(pg)
            if action == "kill":
                slot = rng.randrange(len(cluster.workers))
                victim = cluster.workers[slot]
                cluster.kill(victim)
                report.kills += 1
                cluster.start_worker(slot)
                report.note(f"SIGKILL {victim.name} (pid {victim.pid}, up {time.monotonic() - victim.started:.1f} s)"
                            f", restarted; in flight: {moving}")
            elif action == "flush":
                await _flushdb(report.redis_url)
                report.flushes += 1
                report.note(f"FLUSHDB {report.redis_url}; in flight: {moving}")
            else:
                # Aim at a moment with submissions in progress: each is either not stored (the
                # retry makes it) or stored and unanswered (the retry must get the same order).
                aim_until = time.monotonic() + 1
                while client.posting == 0 and time.monotonic() < aim_until:
                    await asyncio.sleep(0.001)
                posting = client.posting
                victim = cluster.web
                cluster.kill(victim)
                down = time.monotonic()
                report.note(f"SIGKILL web (pid {victim.pid}) with {posting} submissions in progress; "
                            f"in flight: {moving}")
                await cluster.start_web()
                report.web_down_s = time.monotonic() - down
                report.web_restarts += 1
                report.note(f"web restarted on the same port after {report.web_down_s:.1f} s")
    finally:
        await pg.close()


# --------------------------------------------------------------------------- checks

CHECKS = """
WITH o AS (SELECT * FROM orders WHERE id = ANY($1::uuid[])),
landed AS (SELECT order_id, count(*) FILTER (WHERE succeeded = 1) AS ok,
                  coalesce(sum(amount_out) FILTER (WHERE succeeded = 1), 0) AS ok_out
           FROM chain_transactions WHERE order_id = ANY($1::uuid[]) GROUP BY order_id),
ev AS (SELECT order_id, count(*) AS n, max(seq) AS top, min(seq) AS low, count(DISTINCT seq) AS distinct_seqs,
              count(*) FILTER (WHERE status = 'confirmed') AS confirmed_events,
              count(*) FILTER (WHERE status = ANY($2::text[])) AS terminal_events
       FROM order_events WHERE order_id = ANY($1::uuid[]) GROUP BY order_id),
last_ev AS (SELECT DISTINCT ON (order_id) order_id, status FROM order_events
            WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, seq DESC)
SELECT o.id::text AS id, o.status, o.failure_reason, o.last_seq, o.amount_out,
       coalesce(jsonb_array_length(o.plan->'legs'), 0) AS legs,
       coalesce(landed.ok, 0) AS ok_txs, coalesce(landed.ok_out, 0) AS ok_out,
       coalesce(ev.n, 0) AS events, coalesce(ev.top, 0) AS top, coalesce(ev.low, 0) AS low,
       coalesce(ev.distinct_seqs, 0) AS distinct_seqs, coalesce(ev.confirmed_events, 0) AS confirmed_events,
       coalesce(ev.terminal_events, 0) AS terminal_events, last_ev.status AS last_status
FROM o LEFT JOIN landed ON landed.order_id = o.id
LEFT JOIN ev ON ev.order_id = o.id LEFT JOIN last_ev ON last_ev.order_id = o.id
"""

STALLS = """
SELECT prev, count(DISTINCT order_id) AS n FROM (
    SELECT order_id, lag(status) OVER w AS prev, created_at - lag(created_at) OVER w AS gap
    FROM order_events WHERE order_id = ANY($1::uuid[]) WINDOW w AS (PARTITION BY order_id ORDER BY seq)
) steps WHERE gap > make_interval(secs => $2) GROUP BY prev
"""


async def wait_terminal(database_url: str, ids: list[str], seconds: float) -> int:
    """Wait until every order in `ids` is terminal (or `seconds` pass); returns how many are not."""
    pg = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + seconds
        while True:
            open_orders = await pg.fetchval(
                "SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status <> ALL($2::text[])",
                ids, list(TERMINAL))
            if open_orders == 0 or time.monotonic() > deadline:
                return open_orders
            await asyncio.sleep(0.25)
    finally:
        await pg.close()


async def verify(report: Report) -> None:
    ids = report.ack_ids
    pg = await asyncpg.connect(report.database_url)
    try:
        rows = await pg.fetch(CHECKS, ids, list(TERMINAL))
        report.stored_total = await pg.fetchval("SELECT count(*) FROM orders")
        report.stalls = {r["prev"]: r["n"] for r in await pg.fetch(STALLS, ids, STALL_S)}
        stored_events = {}
        for stream in report.streams:
            stored_events[stream.order_id] = [
                (r["seq"], r["status"]) for r in
                await pg.fetch("SELECT seq, status FROM order_events WHERE order_id = $1::uuid ORDER BY seq",
                               stream.order_id)]
    finally:
        await pg.close()
    found = {r["id"] for r in rows}
    report.not_stored = [i for i in ids if i not in found]
    for s in report.acknowledged:
        if len(s.ids_seen) > 1:  # two acknowledgements of one clientOrderId named different orders
            report.twice.append(f"{s.n}:{'/'.join(sorted(s.ids_seen))}")
    for r in rows:
        report.statuses[r["status"]] += 1
        if r["status"] == "failed":
            report.reasons[(r["failure_reason"] or "?")[:70]] += 1
        if r["status"] not in TERMINAL:
            report.stuck.append(r["id"])
        legs = r["legs"]
        if (r["ok_txs"] > legs or r["confirmed_events"] > 1 or r["terminal_events"] > 1
                or (r["status"] == "confirmed"
                    and (r["ok_txs"] != legs or legs == 0 or r["amount_out"] != r["ok_out"]))):
            report.twice.append(r["id"])
        if not (r["events"] == r["distinct_seqs"] == r["top"] == r["last_seq"] and r["low"] == 1) \
                or r["last_status"] != r["status"]:
            report.missing.append(r["id"])
    for stream in report.streams:
        problem = stream.problem()
        if problem is None and list(zip(stream.seqs, stream.statuses)) != stored_events[stream.order_id]:
            problem = f"streamed {list(zip(stream.seqs, stream.statuses))} != stored {stored_events[stream.order_id]}"
        if problem is not None:
            report.stream_problems[stream.order_id] = problem


_REDRIVES = re.compile(rb"reconciler re-drove (\d+) stuck orders")
_LEVEL = re.compile(rb" (ERROR|CRITICAL) ([\w.]+) (.{0,60})")


def read_logs(report: Report, logs: list[Path]) -> None:
    for path in logs:
        text = path.read_bytes()
        report.redrives += sum(int(m) for m in _REDRIVES.findall(text))
        for _level, logger, message in _LEVEL.findall(text):
            words = re.sub(rb"[0-9a-f-]{36}|\d+", b"#", message).decode(errors="replace").split(":")[0]
            report.logged_errors[f"{logger.decode()}: {words.strip()}"] += 1
        if b"Traceback" in text:
            report.logged_errors[f"Traceback in {path.name}"] += text.count(b"Traceback")


# --------------------------------------------------------------------------- the run


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


async def _drop_database(database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(_with_path(database_url, "/postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _flushdb(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def run_chaos(config: ChaosConfig | None = None, **options) -> Report:
    """Run the chaos scenario and return the checked report (see the module docstring).
    `options` are ChaosConfig fields, for callers that pass them one by one."""
    config = config or ChaosConfig(**options)
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(1_000_000)
    rng = random.Random(seed)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    report = Report(config, seed, OUT / f"chaos-{run_id}")
    report.redis_url = _with_path(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), f"/{config.redis_db}")
    report.database_url = _with_path(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
                                     f"/dex_chaos_{uuid.uuid4().hex[:10]}")
    port = free_port()
    key = f"dex_chaos-{uuid.uuid4().hex}"
    env = {**os.environ, **CHAOS_ENV, **config.env, "DATABASE_URL": report.database_url,
           "REDIS_URL": report.redis_url, "PORT": str(port), "HOST": "127.0.0.1", "DEX_NAMESPACE": "chaos",
           "DEX_DEV_API_KEY": key}
    cluster = Cluster(env, port, config.workers, report.run_dir)
    report.note(f"seed {seed}; {config.orders} orders at {config.rate:g}/s; web + {config.workers} workers on port "
                f"{port}; database {urlsplit(report.database_url).path[1:]}; Redis db {config.redis_db}; "
                f"logs {report.run_dir.relative_to(ROOT)}")
    await _flushdb(report.redis_url)
    client = Client(port, key, deadline_s=max(60.0, config.drain_s))
    streams: list[asyncio.Task] = []
    try:
        took = await cluster.start_web()  # creates and migrates the database
        for slot in range(config.workers):
            cluster.start_worker(slot)
        await asyncio.gather(*(cluster.wait_ready(w) for w in cluster.workers))
        report.note(f"web healthy after {took:.1f} s; {config.workers} workers ready")

        duration = config.orders / config.rate
        plan = plan_chaos(config, duration, rng)
        every = max(1, config.orders // config.streams) if config.streams else 0
        follow_until = time.monotonic() + duration + config.drain_s + 60

        def on_ack(sub: Submission) -> None:
            if every and sub.n % every == 0 and len(streams) < config.streams:
                streams.append(asyncio.create_task(client.follow(sub.order_id, follow_until)))

        t0 = time.monotonic()
        chaos = asyncio.create_task(make_chaos(cluster, client, plan, report, rng, t0))
        submitting = []
        for n in range(config.orders):
            await asyncio.sleep(max(0.0, t0 + n / config.rate - time.monotonic()))
            submitting.append(asyncio.create_task(client.submit(n, on_ack)))
        report.submissions = list(await asyncio.gather(*submitting))
        await chaos
        last_ack = time.monotonic()
        report.note(f"{len(report.acknowledged)} of {config.orders} acknowledged; draining")
        left = await wait_terminal(report.database_url, report.ack_ids, config.drain_s)
        report.drain_s = time.monotonic() - last_ack
        report.note(f"drained in {report.drain_s:.1f} s" if not left else f"{left} orders still open after "
                    f"{config.drain_s:.0f} s")
        done, pending = await asyncio.wait(streams, timeout=10) if streams else (set(), set())
        for task in pending:
            task.cancel()
        report.streams = [t.result() for t in done if not t.cancelled() and t.exception() is None]
        report.streams += [Stream("?", errors=["follow task did not finish"]) for _ in pending]
        await verify(report)
    finally:
        for task in streams:
            task.cancel()
        await client.close()
        cluster.stop()
        read_logs(report, cluster.logs())
        if not config.keep:
            with contextlib.suppress(Exception):
                await _drop_database(report.database_url)
            with contextlib.suppress(Exception):
                await _flushdb(report.redis_url)
        report.elapsed_s = time.monotonic() - report.started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=40, help="orders submitted per second (default 40)")
    parser.add_argument("--kills", type=int, default=None, help="worker SIGKILLs (default: one every ~3 s)")
    parser.add_argument("--kill-every", type=float, default=3.0, help="mean seconds between kills (default 3)")
    parser.add_argument("--no-flush", action="store_true", help="do not FLUSHDB the Redis database")
    parser.add_argument("--no-web-restart", action="store_true", help="do not kill and restart the web process")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database index used (flushed; default 13)")
    parser.add_argument("--drain", type=float, default=120, help="seconds to wait for every order to end")
    parser.add_argument("--streams", type=int, default=20, help="orders followed live over WebSocket")
    parser.add_argument("--seed", type=int, default=None, help="seed of the chaos schedule (default random)")
    parser.add_argument("--keep", action="store_true", help="keep the database and Redis data for inspection")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.workers < 1 or args.rate <= 0:
        parser.error("--orders, --workers and --rate must be positive")
    config = ChaosConfig(orders=args.orders, workers=args.workers, rate=args.rate, kills=args.kills,
                         kill_every_s=args.kill_every, flush=not args.no_flush, web_restart=not args.no_web_restart,
                         redis_db=args.redis_db, drain_s=args.drain, streams=args.streams, seed=args.seed,
                         keep=args.keep)

    async def run() -> Report:
        task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_chaos(config)

    try:
        report = asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: every child process stopped", file=sys.stderr)
        return 130
    print()
    print(report.table())
    details = report.details()
    if details:
        print()
        print(details)
    if config.keep:
        print(f"\nkept: {report.database_url}, {report.redis_url}")
    print(f"\n{'PASS' if report.passed() else 'FAIL'}: stuck {len(report.stuck)}, executed twice "
          f"{len(report.twice)}, events missing {len(report.missing)} (seed {report.seed}; logs "
          f"{report.run_dir.relative_to(ROOT)})")
    return 0 if report.passed() else 1


if __name__ == "__main__":
    sys.exit(main())
