"""`GET /metrics` of the running runtime, as Prometheus scrapes it: no key, the text format (read
with prometheus_client's parser), and counters that move with the orders — the worker process's
included (the default layout runs the functions in a worker process beside the web process)."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.runtime import Cluster, connect, receive_json, receive_until_terminal

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5", "slippageBps": 100}
QUEUED_FUNCTIONS = ("trigger", "quote", "route", "execute")
TYPES = {
    "dex_orders_taken": "counter", "dex_orders_finished": "counter", "dex_order_duration_seconds": "histogram",
    "dex_step_duration_seconds": "histogram", "dex_events_published": "counter", "dex_queue_jobs": "gauge",
}


class Scrape:
    """One scrape, parsed: each family's type, and each sample's value by (name, labels)."""

    def __init__(self, base: str) -> None:
        answer = httpx.get(f"{base}/metrics", timeout=10)  # no API key: a scraper has none
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        self.types, self.samples = {}, {}
        for family in text_string_to_metric_families(answer.text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(base: str, check, seconds: float = 10) -> Scrape:
    """Scrape until `check(scrape)` holds (a worker's count lands a moment after the order's event)."""
    deadline = time.monotonic() + seconds
    while True:
        scrape = Scrape(base)
        if check(scrape) or time.monotonic() > deadline:
            return scrape
        time.sleep(0.1)


def test_metrics_are_prometheus_text_with_dex_names_types_and_every_queue(runtime):
    scrape = Scrape(runtime.base)
    assert scrape.types, "nothing exposed"
    assert all(name.startswith("dex_") for name in scrape.types), sorted(scrape.types)
    for name, kind in TYPES.items():
        if name in scrape.types:  # a family shows up once it has a sample
            assert scrape.types[name] == kind, (name, scrape.types[name])
    assert scrape.types["dex_queue_jobs"] == "gauge"
    for function in QUEUED_FUNCTIONS:
        for state in ("queued", "active", "scheduled"):
            assert (("dex_queue_jobs", frozenset({"function": function, "state": state}.items()))
                    in scrape.samples), (function, state)


async def test_an_order_moves_taken_finished_step_latencies_and_published_events_of_both_processes(runtime):
    before = Scrape(runtime.base)
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(SELL))
        events = await receive_until_terminal(socket)
    assert events[-1]["status"] == "confirmed"

    def moved(after: Scrape) -> bool:
        return after("dex_orders_finished_total", kind="market", status="confirmed", reason="") \
            > before("dex_orders_finished_total", kind="market", status="confirmed", reason="") \
            and after("dex_events_published_total") >= before("dex_events_published_total") + 6

    after = wait_for(runtime.base, moved)
    assert after.types["dex_orders_taken"] == "counter"
    assert after("dex_orders_taken_total", kind="market") == before("dex_orders_taken_total", kind="market") + 1
    assert after("dex_orders_finished_total", kind="market", status="confirmed", reason="") == \
        before("dex_orders_finished_total", kind="market", status="confirmed", reason="") + 1
    # intake runs in the web process; quote, route and execute only in the worker process
    for step in ("intake", "quote", "route", "execute"):
        assert after("dex_step_duration_seconds_count", step=step) == \
            before("dex_step_duration_seconds_count", step=step) + 1, step
        assert after("dex_step_duration_seconds_bucket", step=step, le="+Inf") == \
            after("dex_step_duration_seconds_count", step=step)
    assert after("dex_order_duration_seconds_count", kind="market", status="confirmed") == \
        before("dex_order_duration_seconds_count", kind="market", status="confirmed") + 1
    assert after("dex_order_duration_seconds_sum", kind="market", status="confirmed") > \
        before("dex_order_duration_seconds_sum", kind="market", status="confirmed")
    # six events: pending from the web process, the other five from the worker process
    assert after("dex_events_published_total") >= before("dex_events_published_total") + 6


async def test_open_sockets_are_a_gauge_and_a_stream_of_a_finished_order_is_replayed(runtime):
    order_id = runtime.post_order(SELL).json()["orderId"]
    assert runtime.wait_for_status(order_id, {"confirmed"})["status"] == "confirmed"
    before = Scrape(runtime.base)
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=0") as stream:
        replay = [await receive_json(stream) for _ in range(6)]
        async with connect(f"{runtime.ws_base}/api/orders/execute"):
            while_open = wait_for(runtime.base, lambda s: s("dex_websockets_open", route="execute") >= 1)
    assert [event["seq"] for event in replay] == [1, 2, 3, 4, 5, 6]
    assert while_open("dex_websockets_open", route="execute") == before("dex_websockets_open", route="execute") + 1
    assert while_open.types["dex_websockets_open"] == "gauge"
    after = wait_for(runtime.base, lambda s: s("dex_websockets_open", route="execute")
                     == before("dex_websockets_open", route="execute") and s("dex_websockets_open", route="stream")
                     == before("dex_websockets_open", route="stream"))
    assert after("dex_websockets_open", route="execute") == before("dex_websockets_open", route="execute")
    assert after("dex_events_replayed_total") == before("dex_events_replayed_total") + 6


async def test_refusals_over_the_rate_limit_are_counted(runtime):
    key = await runtime.create_key("metrics-rate", orders_per_minute=1, max_in_flight=10)
    before = Scrape(runtime.base)
    answers = [runtime.post_order(SELL, {"X-API-Key": key}).status_code for _ in range(2)]
    assert answers == [201, 429]
    after = Scrape(runtime.base)
    assert after("dex_orders_refused_total", reason="rate") == before("dex_orders_refused_total", reason="rate") + 1


@pytest.fixture
def joined(tmp_path):
    """A web process alone and a worker command started on its own, both given one DEX_METRICS_DIR."""
    cluster = Cluster({"DEX_SIM_ZERO_DELAYS": "true", "DEX_SIM_DRIFT_INTERVAL_MS": "0",
                       "DEX_METRICS_DIR": str(tmp_path / "metrics")})
    try:
        cluster.start(webs=1)  # creates the database
        cluster.add_worker("all")
        yield cluster
    finally:
        cluster.close()


async def test_a_worker_command_started_separately_joins_with_the_same_metrics_directory(joined, tmp_path):
    [web], [worker] = joined.webs, joined.workers
    order_id = web.post_order(SELL).json()["orderId"]
    assert web.wait_for_status(order_id, {"confirmed"})["status"] == "confirmed"
    after = wait_for(web.base, lambda s: s("dex_step_duration_seconds_count", step="execute") == 1)
    assert after("dex_step_duration_seconds_count", step="execute") == 1  # counted in the worker command only
    files = set(os.listdir(tmp_path / "metrics"))
    assert {f"histogram_{worker.pid}.db", f"counter_{worker.pid}.db", f"histogram_{web.pid}.db"} <= files
    worker.kill()  # its counts stay: a counter never goes back
    assert Scrape(web.base)("dex_step_duration_seconds_count", step="execute") == 1
