"""Every function in its own OS process, as on separate machines: the web process without
workers, one worker process per function; and the only `execute` worker killed mid-load."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest

from functions.chain import CHAIN
from tests.conftest import REDIS_URL, _admin, database_url, run_sync
from tests.e2e.runtime import ROOT, Runtime, stop_process

ORDER = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.25",
         "slippageBps": 300}
TERMINAL = {"confirmed", "failed", "cancelled", "expired"}


class WorkerProcess:
    def __init__(self, env: dict[str, str], functions: str) -> None:
        self.functions = functions
        self.log = open(ROOT / ".pytest-runtime.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_runtime", "worker", "--functions", functions],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log,
        )
        line = self.process.stdout.readline().decode()  # "worker ready: …" once its workers run
        assert line.startswith("worker ready"), f"worker {functions} did not start: {line!r}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@pytest.fixture
def cluster():
    """A web process with no workers and a database/namespace of its own; workers are added by the test."""
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    env = {
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": database_url(name),
        "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
        "DEX_SIM_DRIFT_INTERVAL_MS": "0",
        "DEX_ORDERS_PER_MINUTE": "100000",
        "DEX_MAX_IN_FLIGHT": "10000",
        # Fast recovery: a killed execute job is retried by SAQ's sweep after its timeout, or
        # re-driven by the reconciler; both are safe to overlap.
        "DEX_EXECUTE_JOB_TIMEOUT_S": "3",
        "DEX_RECONCILE_INTERVAL_S": "1",
        "DEX_STALL_GRACE_S": "1",
        "DEX_SIM_QUOTE_LATENCY_MS_RAYDIUM": "5",
        "DEX_SIM_QUOTE_LATENCY_MS_METEORA": "5",
        "DEX_SIM_QUOTE_JITTER_MS": "0",
        "DEX_SIM_BUILD_DELAY_MS": "20",
        "DEX_SIM_SUBMIT_DELAY_MS": "20",
        "DEX_SIM_CONFIRM_DELAY_MS": "1000",
        "DEX_SIM_CONFIRM_JITTER_MS": "50",
    }
    web = Runtime(env, args=("--workers", "none")).start()
    workers: list[WorkerProcess] = []
    yield web, workers
    for worker in workers:
        worker.stop()
    web.stop()
    web.forget_namespace()
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wait_all_terminal(web: Runtime, order_ids: list[str], seconds: float) -> dict[str, dict]:
    deadline = time.monotonic() + seconds
    pending = set(order_ids)
    done: dict[str, dict] = {}
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            order = web.get(f"/api/orders/{order_id}").json()
            if order["status"] in TERMINAL:
                done[order_id] = order
                pending.discard(order_id)
        time.sleep(0.1)
    assert not pending, f"{len(pending)} orders not finished"
    return done


async def landed_per_order(web: Runtime) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(web.env["DATABASE_URL"])
    try:
        rows = await connection.fetch("SELECT order_id::text, count(*) AS n FROM chain_transactions GROUP BY 1")
        return {r["order_id"]: r["n"] for r in rows}
    finally:
        await connection.close()


def test_each_function_in_its_own_process_confirms_every_order(cluster):
    web, workers = cluster
    env = web.env
    for name in CHAIN:
        workers.append(WorkerProcess(env, name))
    assert len({w.process.pid for w in workers} | {web.process.pid}) == len(CHAIN) + 1
    order_ids = [web.post_order(ORDER).json()["orderId"] for _ in range(20)]
    done = wait_all_terminal(web, order_ids, 30)
    assert {o["status"] for o in done.values()} == {"confirmed"}
    for order_id in order_ids:
        assert [e["seq"] for e in web.get(f"/api/orders/{order_id}/events").json()] == [1, 2, 3, 4, 5, 6]


def test_killing_the_only_execute_worker_mid_load_loses_and_doubles_nothing(cluster):
    web, workers = cluster
    env = web.env
    workers.append(WorkerProcess(env, "intake,trigger,quote,route"))
    executor = WorkerProcess(env, "execute")
    workers.append(executor)
    order_ids = [web.post_order(ORDER).json()["orderId"] for _ in range(30)]
    time.sleep(0.5)  # orders now wait for their confirmation: between "submitted" and "confirmed"
    executor.kill()
    caught = [i for i in order_ids if web.get(f"/api/orders/{i}").json()["status"] in {"building", "submitted"}]
    assert caught, "the kill should land while some orders are mid-execution"
    order_ids += [web.post_order(ORDER).json()["orderId"] for _ in range(10)]  # accepted while none runs
    time.sleep(0.5)
    workers.append(WorkerProcess(env, "execute"))
    done = wait_all_terminal(web, order_ids, 60)
    assert {o["status"] for o in done.values()} == {"confirmed"}
    landed = run_sync(landed_per_order(web))
    assert all(landed.get(order_id) == 1 for order_id in order_ids), landed  # each order's transaction once
    for order_id in order_ids:
        seqs = [e["seq"] for e in web.get(f"/api/orders/{order_id}/events").json()]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 6
