"""Queues and logs, as a user runs the engine: with DEX_LOG_FORMAT=json every line the web and worker
processes write is a JSON object, and an order's routing decision is one of them, carrying its
orderId and venue; with DEX_SAQ_UI=true SAQ's dashboard shows the engine's queues under /saq behind
the API key (absent otherwise); the demo, its output piped, prints its table and routing decisions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.pipeline import PIPELINE
from tests.e2e.runtime import ROOT, Runtime, private_runtime

pytestmark = pytest.mark.e2e
ORDER = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "2.5"}


class LoggedRuntime(Runtime):
    """The runtime with everything its processes write (web and worker, stdout and stderr) in a file
    of its own."""

    def __init__(self, env: dict[str, str], output: Path) -> None:
        super().__init__(env)
        self.output = output

    def spawn(self) -> LoggedRuntime:
        self.log = open(self.output, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "local_runtime", "start", *self.args], cwd=ROOT,
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def lines(self) -> list[str]:
        return [line for line in self.output.read_text().splitlines() if line.strip()]


def started(output: Path, **env: str) -> Iterator[LoggedRuntime]:
    with private_runtime(lambda base: LoggedRuntime(base, output), start_s=60, DEX_SIM_ZERO_DELAYS="true",
                         DEX_SIM_DRIFT_INTERVAL_MS="0", DEX_LOG_FORMAT="json", DEX_ORDERS_PER_MINUTE="100000",
                         DEX_MAX_IN_FLIGHT="10000", **env) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def dashboard_runtime(tmp_path_factory) -> Iterator[LoggedRuntime]:
    """JSON logs and SAQ's dashboard on."""
    yield from started(tmp_path_factory.mktemp("logs") / "runtime.log", DEX_SAQ_UI="true")


@pytest.fixture
def json_runtime(tmp_path) -> Iterator[LoggedRuntime]:
    """JSON logs, the dashboard left off (the default)."""
    yield from started(tmp_path / "runtime.log")


def test_every_line_of_every_process_is_json_and_the_routing_decision_carries_the_order(json_runtime):
    runtime = json_runtime
    assert runtime.get("/saq").status_code == 404  # the dashboard is off unless DEX_SAQ_UI says otherwise
    assert runtime.post_order({**ORDER, "amount": "abc"}).status_code == 422  # a refusal is logged too
    placed = runtime.post_order(ORDER)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["orderId"]
    order = runtime.wait_for_status(order_id, {"confirmed", "failed"})
    assert order["status"] == "confirmed", order
    runtime.stop()  # start-up to shutdown, web process and worker process alike

    lines = runtime.lines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line!r}")
    assert all(isinstance(r, dict) and {"ts", "logger", "level", "message"} <= r.keys() for r in records), records
    assert all(r["ts"].endswith("Z") and r["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
               for r in records)
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "stdout"} <= loggers, loggers  # uvicorn's own lines; what was printed
    said = [r["message"] for r in records if r["logger"] == "stdout"]
    assert any(m.startswith("development API key") for m in said), said  # the web process
    assert any(m.startswith("worker ready") for m in said), said  # the worker process
    assert any(" 422 " in r["message"] and "amount" in r["message"] for r in records if r["logger"] == "litestar")

    decisions = [r for r in records if r["message"] == "routed" and r.get("orderId") == order_id]
    assert len(decisions) == 1, decisions  # one object, its fields keys of the line
    decision = decisions[0]
    assert decision["venue"] == order["venue"] and decision["level"] == "INFO"
    assert isinstance(decision["expectedAmountOut"], int) and decision["reason"]
    assert set(decision["effectivePrices"]) == {"raydium", "meteora"}
    assert [leg["venue"] for leg in decision["legs"]] == ([order["venue"]] if order["venue"] != "split"
                                                          else ["raydium", "meteora"])


def test_the_dashboard_shows_the_engine_queues_behind_the_key(dashboard_runtime):
    runtime = dashboard_runtime
    namespace = runtime.env["DEX_NAMESPACE"]
    assert httpx.get(f"{runtime.base}/saq", timeout=10).status_code == 401
    assert httpx.get(f"{runtime.base}/saq/api/queues", timeout=10).status_code == 401
    with httpx.Client(base_url=runtime.base, timeout=10) as browser:
        page = browser.get("/saq", params={"apiKey": runtime.api_key})  # as a browser opens it: the key in the address
        assert page.status_code == 200 and "/saq/static/app.js" in page.text
        queues = browser.get("/saq/api/queues")  # as SAQ's script asks: the cookie only
        assert queues.status_code == 200
    names = {queue["name"] for queue in queues.json()["queues"]}
    assert names == {f"{namespace}:{step}" for step in PIPELINE} | {f"{namespace}:maintenance"}
    with_header = httpx.get(f"{runtime.base}/saq/api/queues/{namespace}:quote", headers=runtime.headers, timeout=10)
    assert with_header.status_code == 200 and with_header.json()["queue"]["name"] == f"{namespace}:quote"


def test_the_demo_piped_prints_its_table_and_every_routing_decision(dashboard_runtime):
    runtime = dashboard_runtime
    result = subprocess.run([sys.executable, "-m", "local_runtime", "demo", "--url", runtime.base], cwd=ROOT,
                            env={**os.environ, "DEX_API_KEY": runtime.api_key, "TERM": "xterm-256color"},
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # not a terminal: no styling, no cursor moves
    assert out.count("[order ") >= 5 * 6  # one line per event: sent, pending … confirmed
    assert "Demo orders" in out and out.count("│ confirmed │") == 5  # the table, once, at the end
    decisions = out.split("Routing decisions", 1)[1]
    for number, label in enumerate(("sell 1.5 SOL → USDC", "buy 250 USDC → SOL", "sell 12.25 SOL → USDT",
                                    "buy 1000 USDC → JUP", "sell 25000000 BONK → SOL"), start=1):
        assert f"{number}. {label}: " in decisions, decisions
    assert decisions.count(", confirmed") == 5
    assert decisions.count("effective price (") == 5 and decisions.count("advantage: ") == 5
    assert decisions.count("   filled: ") == 5
    # the runtime's log: the demo's routing decisions are JSON objects with their orderId
    routed = [json.loads(line) for line in runtime.lines() if '"message":"routed"' in line]
    assert len(routed) >= 5 and all(r["orderId"] and r["venue"] for r in routed)
