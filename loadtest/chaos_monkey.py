"""The chaos command: N orders through the runtime while workers are SIGKILLed and restarted
at random, Redis is flushed once and the web process is killed and restarted once; then
PostgreSQL and the simulated chain are checked and a table printed.

    python3 dev.py chaos [--orders 1000] [--workers 2] [--rate 40]

Acceptance: stuck 0, executed twice 0, events missing 0 (exit code 0 only then). The run
uses its own database (dropped afterwards unless --keep), its own port, a namespace of its own and
its own Redis database index: the "Redis flush" is FLUSHDB on database --redis-db (default 13) of
the server in REDIS_URL, not the database REDIS_URL names. It refuses to run, and to flush, while that
database holds keys no chaos run made (another engine's, anyone's): choose an empty one with
--redis-db. Child output goes to loadtest/out/chaos-*.log.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis

from loadtest.bench import Services, forget_keys
from shared.domain.states import TERMINAL_STATUSES

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "loadtest" / "out"
CHANGED_SETTINGS = {
    # Everything else is the engine's default: step timeouts, heartbeats, reconciler, simulated delays.
    "DEX_ORDERS_PER_MINUTE": ("100000000", "one client submits every order: the per-client limits would refuse most"),
    "DEX_MAX_IN_FLIGHT": ("1000000", "the same"),
    "DEX_LOG_LEVEL": ("WARNING", "the processes' logs stay readable (loadtest/out/chaos-processes.log)"),
}


CHAOS_KEY = re.compile(rb"^(saq:(job:)?)?chaos[0-9a-f]{8}:")
"""A key of a chaos run's namespace (`chaos` + 8 hex digits): the engine's own, or SAQ's for its queues."""


TRANSIENT_MS = 10_000
"""A key about to expire on its own (SAQ's `saq:abort:<job>` markers live 5 s, and are not namespaced)
is not worth refusing for: flushing it loses what seconds would have taken anyway."""


class UnsafeFlush(RuntimeError):
    """The Redis database chaos would flush holds keys that are not a chaos run's."""


async def refuse_foreign_keys(redis: Redis, redis_db: int) -> None:
    """UnsafeFlush if the database holds any key outside chaos runs' namespaces (two runs may share
    one: each survives the other's flush, as it survives its own)."""
    foreign = []
    async for key in redis.scan_iter(count=1_000):
        if not CHAOS_KEY.match(key) and not 0 < await redis.pttl(key) <= TRANSIENT_MS:
            foreign.append(key.decode(errors="replace"))
            if len(foreign) == 3:
                break
    if foreign:
        raise UnsafeFlush(f"Redis database {redis_db} holds keys no chaos run made (e.g. {', '.join(foreign)}): "
                          "chaos flushes it (FLUSHDB), so it refuses; choose an empty database with --redis-db")


@dataclass
class Chaos:
    kills: int = 0
    flushes: int = 0
    web_restarts: int = 0
    submit_retries: int = 0
    log: list[str] = field(default_factory=list)
    moments: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    """When each kind of blow landed (Unix time): the orders in flight then are the ones it interrupted."""

    def note(self, kind: str, text: str, started: float) -> None:
        self.log.append(f"{time.monotonic() - started:6.1f} s  {text}")
        self.moments[kind].append(time.time())


class Cluster:
    """The web process (no workers) and K worker processes, restartable."""

    def __init__(self, env: dict[str, str], port: int, workers: int) -> None:
        self.env, self.port = env, port
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.count = workers
        OUT.mkdir(parents=True, exist_ok=True)
        self.log = open(OUT / "chaos-processes.log", "ab")  # noqa: SIM115 - closed in stop()

    def _spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "local_runtime", *args], cwd=ROOT, env=self.env,
                                stdout=self.log, stderr=subprocess.STDOUT)

    async def start_web(self) -> None:
        self.web = self._spawn("start", "--workers", "none")
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("web process did not start: see loadtest/out/chaos-processes.log")

    def start_workers(self) -> None:
        self.workers = [self._spawn("worker", "--functions", "all") for _ in range(self.count)]

    def kill_worker(self, index: int) -> None:
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait()
        self.workers[index] = self._spawn("worker", "--functions", "all")

    async def restart_web(self) -> None:
        self.web.send_signal(signal.SIGKILL)
        self.web.wait()
        await self.start_web()

    def stop(self) -> None:
        for process in [self.web, *self.workers]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [self.web, *self.workers]:
            if process is not None:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.log.close()


async def submit_all(base: str, key: str, orders: int, rate: float, chaos: Chaos) -> dict[int, str]:
    """Submit every order at `rate`, retrying through outages with the same clientOrderId, so a
    retry never makes a second order. Returns n → acknowledged order id."""
    acknowledged: dict[int, str] = {}
    started = time.monotonic()

    async def one(client: httpx.AsyncClient, n: int) -> None:
        side = "sell" if n % 2 else "buy"
        body = {"type": "market", "side": side, "baseAsset": "SOL", "quoteAsset": "USDC",
                "amount": "0.75" if side == "sell" else "120", "slippageBps": 500, "clientOrderId": f"chaos-{n}"}
        if n % 97 == 0:  # large: a sell this size is split over both venues (yet moves no pool by the others' 5 %)
            body["amount"] = "300" if side == "sell" else "45000"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answer = await client.post(f"{base}/api/orders/execute", json=body, headers={"X-API-Key": key},
                                           timeout=10)
                if answer.status_code in (200, 201):
                    acknowledged[n] = answer.json()["orderId"]
                    return
                if answer.status_code < 500 and answer.status_code != 429:
                    raise RuntimeError(f"order {n} refused: {answer.status_code} {answer.text}")
            except httpx.HTTPError:
                pass
            chaos.submit_retries += 1
            await asyncio.sleep(0.3)

    async with httpx.AsyncClient() as client:
        tasks = []
        for n in range(orders):
            tasks.append(asyncio.create_task(one(client, n)))
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
        await asyncio.gather(*tasks)
    return acknowledged


async def make_chaos(cluster: Cluster, redis_url: str, chaos: Chaos, duration: float, kills: int,
                     flush: bool, web_restart: bool, rng: random.Random, redis_db: int) -> None:
    """Kills spread over the submission window; one FLUSHDB at 40 % (refused if the database holds
    keys no chaos run made by then), one web restart at 60 %."""
    started = time.monotonic()
    events = [(duration * (i + 1) / (kills + 1), "kill") for i in range(kills)]
    if flush:
        events.append((duration * 0.4, "flush"))
    if web_restart:
        events.append((duration * 0.6, "web"))
    for at, what in sorted(events):
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        if what == "kill":
            index = rng.randrange(len(cluster.workers))
            cluster.kill_worker(index)
            chaos.kills += 1
            chaos.note("worker kill", f"SIGKILL worker {index}, restarted", started)
        elif what == "flush":
            redis = Redis.from_url(redis_url)
            try:
                await refuse_foreign_keys(redis, redis_db)
                await redis.flushdb()
            finally:
                await redis.aclose()
            chaos.flushes += 1
            chaos.note("Redis flush", "FLUSHDB", started)
        else:
            await cluster.restart_web()
            chaos.web_restarts += 1
            chaos.note("web restart", "SIGKILL web process, restarted", started)


CHECKS = """
WITH o AS (SELECT * FROM orders WHERE id = ANY($1::uuid[])),
legs AS (SELECT id, coalesce(jsonb_array_length(plan->'legs'), 0) AS legs FROM o),
landed AS (SELECT order_id, count(*) FILTER (WHERE succeeded = 1) AS ok, count(*) AS txs
           FROM chain_transactions WHERE order_id = ANY($1::uuid[]) GROUP BY order_id),
ev AS (SELECT order_id, count(*) AS n, max(seq) AS top, count(DISTINCT seq) AS distinct_seqs,
              count(*) FILTER (WHERE status = 'confirmed') AS confirmed_events
       FROM order_events WHERE order_id = ANY($1::uuid[]) GROUP BY order_id),
last_ev AS (SELECT DISTINCT ON (order_id) order_id, status FROM order_events
            WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, seq DESC)
SELECT o.id::text, o.status, o.failure_reason, o.last_seq, legs.legs,
       coalesce(landed.ok, 0) AS ok_txs, coalesce(ev.n, 0) AS events, coalesce(ev.top, 0) AS top,
       coalesce(ev.distinct_seqs, 0) AS distinct_seqs, coalesce(ev.confirmed_events, 0) AS confirmed_events,
       last_ev.status AS last_status
FROM o JOIN legs ON legs.id = o.id LEFT JOIN landed ON landed.order_id = o.id
LEFT JOIN ev ON ev.order_id = o.id LEFT JOIN last_ev ON last_ev.order_id = o.id
"""


async def wait_terminal(database_url: str, ids: list[str], seconds: float) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            open_orders = await connection.fetchval(
                "SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status <> ALL($2::text[])",
                ids, list(TERMINAL_STATUSES))
            if open_orders == 0:
                return
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


DURATIONS = """
SELECT extract(epoch FROM o.created_at) AS created, extract(epoch FROM max(e.created_at)) AS ended
FROM orders o JOIN order_events e ON e.order_id = o.id
WHERE o.id = ANY($1::uuid[]) AND o.status = 'confirmed' GROUP BY o.id, o.created_at
"""


def extra_delays(durations: list[tuple[float, float]], moments: dict[str, list[float]]
                 ) -> tuple[dict[str, list[float]], float]:
    """For each kind of blow, the extra delay of every order it interrupted (in flight then: stored
    before, confirmed after) and no other kind did: its time from stored to confirmed beyond the
    median of the orders no blow landed on. Orders struck by blows of several kinds (a kill during
    a flush, say) are counted apart, under "several kinds"."""
    def kinds(span: tuple[float, float]) -> list[str]:
        return [kind for kind, at in moments.items() if any(span[0] <= t <= span[1] for t in at)]

    spared = sorted(ended - created for created, ended in durations if not kinds((created, ended)))
    normal = spared[len(spared) // 2] if spared else 0.0
    delays: dict[str, list[float]] = {kind: [] for kind in (*moments, SEVERAL)}
    for created, ended in durations:
        struck = kinds((created, ended))
        if struck:
            delays[struck[0] if len(struck) == 1 else SEVERAL].append(max(0.0, ended - created - normal))
    return {kind: sorted(values) for kind, values in delays.items()}, normal


SEVERAL = "blows of several kinds"


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))] if values else 0.0


async def verify(database_url: str, ids: list[str]) -> dict:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(CHECKS, ids)
        stored_total = await connection.fetchval("SELECT count(*) FROM orders")
        durations = [(float(r["created"]), float(r["ended"])) for r in await connection.fetch(DURATIONS, ids)]
    finally:
        await connection.close()
    statuses = collections.Counter(r["status"] for r in rows)
    reasons = collections.Counter((r["failure_reason"] or "?")[:60] for r in rows if r["status"] == "failed")
    stuck = [r["id"] for r in rows if r["status"] not in TERMINAL_STATUSES]
    twice = [r["id"] for r in rows
             if r["ok_txs"] > max(1, r["legs"]) or r["confirmed_events"] > 1
             or (r["status"] == "confirmed" and r["ok_txs"] != r["legs"])]
    missing = [r["id"] for r in rows
               if not (r["events"] == r["distinct_seqs"] == r["top"] == r["last_seq"])
               or (r["status"] in TERMINAL_STATUSES and r["last_status"] != r["status"])]
    return {"found": len(rows), "stored_total": stored_total, "statuses": statuses, "reasons": reasons,
            "stuck": stuck, "twice": twice, "missing": missing, "durations": durations}


async def run_chaos(orders: int = 1000, workers: int = 2, rate: float = 40, kills: int | None = None,
                    flush: bool = True, web_restart: bool = True, redis_db: int = 13, drain_s: float = 180,
                    keep: bool = False, seed: int = 1) -> dict:
    services = Services()
    redis_url = urlunsplit(urlsplit(services.settings.redis_url)._replace(path=f"/{redis_db}"))
    if flush:  # before anything starts
        redis = Redis.from_url(redis_url)
        try:
            await refuse_foreign_keys(redis, redis_db)
        finally:
            await redis.aclose()
    database_url = await services.fresh_database()
    port = 19000 + os.getpid() % 1000
    key = f"dex_chaos-{uuid.uuid4().hex}"
    namespace = f"chaos{uuid.uuid4().hex[:8]}"  # two runs on one Redis database never share jobs
    env = {**os.environ, **{name: value for name, (value, _) in CHANGED_SETTINGS.items()}, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PORT": str(port),
           "DEX_NAMESPACE": namespace, "DEX_DEV_API_KEY": key}
    cluster = Cluster(env, port, workers)
    chaos, rng = Chaos(), random.Random(seed)
    duration = orders / rate
    kills = max(1, int(duration / 3)) if kills is None else kills
    started = time.monotonic()
    try:
        await cluster.start_web()
        cluster.start_workers()
        submitting = asyncio.create_task(submit_all(f"http://127.0.0.1:{port}", key, orders, rate, chaos))
        await make_chaos(cluster, redis_url, chaos, duration, kills, flush, web_restart, rng, redis_db)
        acknowledged = await submitting
        await wait_terminal(database_url, list(acknowledged.values()), drain_s)
        report = await verify(database_url, list(acknowledged.values()))
    finally:
        cluster.stop()
        if not keep:
            await services.drop(database_url)
            await forget_keys(redis_url, namespace)  # the run's own Redis database index
    report.update(orders=orders, acknowledged=len(acknowledged), chaos=chaos,
                  elapsed=time.monotonic() - started)
    report["extra"], report["normal"] = extra_delays(report.pop("durations"), chaos.moments)
    return report


def table(report: dict) -> str:
    chaos: Chaos = report["chaos"]
    statuses = report["statuses"]
    reasons = ", ".join(f"{reason} ×{n}" for reason, n in report["reasons"].most_common()) or "—"
    rows = [
        ("orders submitted", report["orders"]),
        ("acknowledged", report["acknowledged"]),
        ("orders stored (all)", report["stored_total"]),
        ("confirmed", statuses.get("confirmed", 0)),
        ("failed", f"{statuses.get('failed', 0)} ({reasons})"),
        ("stuck (not terminal)", len(report["stuck"])),
        ("executed twice", len(report["twice"])),
        ("events missing", len(report["missing"])),
        *((f"orders in flight at {'a ' + kind + ' only' if kind != SEVERAL else kind}: {len(delays)},"
           " extra delay p50 / p99 / max",
           " / ".join(f"{percentile(delays, q):.1f} s" for q in (0.5, 0.99, 1.0)))
          for kind, delays in report["extra"].items()),
        ("stored → confirmed of the orders no blow landed on, p50", f"{report['normal']:.2f} s"),
        ("workers SIGKILLed", chaos.kills),
        ("Redis flushed", chaos.flushes),
        ("web process restarted", chaos.web_restarts),
        ("submissions retried", chaos.submit_retries),
        ("elapsed", f"{report['elapsed']:.0f} s"),
    ]
    changed = [(f"setting {name}={value}", why) for name, (value, why) in CHANGED_SETTINGS.items()]
    return "\n".join(["| | |", "| --- | ---: |", *(f"| {name} | {value} |" for name, value in rows + changed)])


def passed(report: dict) -> bool:
    return (not report["stuck"] and not report["twice"] and not report["missing"]
            and report["acknowledged"] == report["orders"] == report["stored_total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=40, help="orders per second submitted")
    parser.add_argument("--kills", type=int, default=None, help="worker kills (default: one per 3 s)")
    parser.add_argument("--redis-db", type=int, default=13,
                        help="the Redis database index (on REDIS_URL's server) the run uses and FLUSHDBs; "
                             "it must hold no keys but chaos runs' (default 13)")
    parser.add_argument("--no-flush", action="store_true")
    parser.add_argument("--no-web-restart", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database for inspection")
    args = parser.parse_args()
    try:
        report = asyncio.run(run_chaos(args.orders, args.workers, args.rate, args.kills, not args.no_flush,
                                       not args.no_web_restart, args.redis_db, keep=args.keep))
    except UnsafeFlush as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report["chaos"].log))
    print(table(report))
    for name in ("stuck", "twice", "missing"):
        if report[name]:
            print(f"{name}: {', '.join(report[name][:10])}")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
