"""Metrics: what the service layer reports through the port (on fakes), and the Prometheus adapter
in multiprocess mode (processes of their own, sharing a directory)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from functions import reconcile
from functions.delivery import Outcome, deliver
from functions.pipeline import step_for
from shared.adapters.metrics import failure_label
from shared.domain.chain import ChainUnavailable
from shared.domain.clients import Admission, ApiClient
from shared.domain.errors import InputError
from shared.domain.messages import ExecuteRequest
from shared.domain.states import Status
from tests.fakes import fake_services

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ApiClient("client-a")
MARKET = b'{"type":"market","side":"sell","baseAsset":"SOL","quoteAsset":"USDC","amount":"1.5"}'
LIMIT = b'{"type":"limit","side":"sell","baseAsset":"SOL","quoteAsset":"USDC","amount":"1","limitPrice":"100000",' \
        b'"expiresAt":60}'
_encoder = msgspec.json.Encoder()


async def run_queued(services) -> list:
    """Deliver every message sent so far (and what they send on) through the delivery loop, as a
    worker would; the messages delivered."""
    delivered, sent = [], services.queues.sent
    while sent:
        message = sent.pop(0)
        await deliver(step_for(message), [_encoder.encode(message)], [1], services.ctx, services.queues.send)
        delivered.append(message)
    return delivered


async def test_a_market_order_is_counted_taken_timed_at_each_step_and_finished_once_by_kind():
    services = fake_services()
    metrics = services.ctx.metrics
    submitted = await services.desk.submit(MARKET, CLIENT)
    delivered = await run_queued(services)

    assert metrics.of("order_taken") == [("market",)]
    assert [step for step, _ in metrics.of("step_took")] == ["intake", "quote", "route", "execute"]
    assert all(seconds >= 0 for _, seconds in metrics.of("step_took"))
    [(kind, status, failure, seconds)] = metrics.of("order_finished")
    order = await services.ctx.orders.get(submitted.order_id)
    assert (kind, status, failure) == ("market", Status.CONFIRMED, None)
    assert seconds == (order.updated_at - order.created_at).total_seconds() > 0

    [execute] = [message for message in delivered if isinstance(message, ExecuteRequest)]
    await services.queues.send(execute)
    await run_queued(services)  # execute delivered again: nothing changes, nothing more is counted
    assert len(metrics.of("order_finished")) == 1
    assert len(metrics.of("step_took")) == 5


async def test_a_repeated_idempotency_key_is_not_a_new_order():
    services = fake_services()
    await services.desk.submit(MARKET, CLIENT, idempotency_key="same")
    await services.desk.submit(MARKET, CLIENT, idempotency_key="same")
    assert services.ctx.metrics.of("order_taken") == [("market",)]


async def test_a_cancelled_limit_order_finishes_by_its_kind():
    services = fake_services()
    submitted = await services.desk.submit(LIMIT, CLIENT)
    await run_queued(services)  # trigger: waiting
    await services.desk.cancel(submitted.order_id, CLIENT.client_id)
    assert services.ctx.metrics.of("order_taken") == [("limit",)]
    assert [call[:3] for call in services.ctx.metrics.of("order_finished")] == [("limit", Status.CANCELLED, None)]


class Refusing:
    """Client limits that refuse every order for `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def admit(self, client_id: str, per_minute: int, max_in_flight: int, order_id: str) -> Admission:
        return Admission(False, self.reason, 3)

    async def release(self, client_id: str, order_id: str) -> None:
        pass


@pytest.mark.parametrize("reason", ["rate", "in_flight"])
async def test_admission_refusals_are_counted_by_limit(reason):
    services = fake_services(limits=Refusing(reason))
    with pytest.raises(InputError) as refused:
        await services.desk.submit(MARKET, CLIENT)
    assert refused.value.status == 429
    assert services.ctx.metrics.of("refused") == [(reason,)]
    assert services.ctx.metrics.of("order_taken") == []


class FlakyChain:
    """A chain whose `build` fails `failures` times, then works as `inner` does."""

    def __init__(self, inner, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def build(self, tx) -> None:
        if self.failures:
            self.failures -= 1
            raise ChainUnavailable("chain unreachable")  # the chain port's own error (an OSError means Redis or PostgreSQL away)
        await self.inner.build(tx)

    async def send(self, tx) -> None:
        await self.inner.send(tx)

    async def confirm(self, tx, built_now: bool = False):
        return await self.inner.confirm(tx, built_now)


async def test_retries_and_giving_up_are_counted_by_step():
    services = fake_services()
    services = fake_services(chain=FlakyChain(services.ctx.chain, failures=10), market=services.market)
    ctx = services.ctx
    await services.desk.submit(MARKET, CLIENT)
    sent = services.queues.sent
    for _ in range(2):  # quote, route
        message = sent.pop(0)
        await deliver(step_for(message), [_encoder.encode(message)], [1], ctx, services.queues.send)
    execute_body = _encoder.encode(sent.pop(0))
    attempts = ctx.settings.job_attempts
    for attempt in range(1, attempts + 1):
        [outcome] = await deliver("execute", [execute_body], [attempt], ctx, services.queues.send)
        assert outcome is (Outcome.AGAIN if attempt < attempts else Outcome.DONE)
    assert ctx.metrics.of("step_retried") == [("execute",)] * (attempts - 1)
    assert ctx.metrics.of("step_gave_up") == [("execute",)]
    [(kind, status, failure, _)] = ctx.metrics.of("order_finished")
    assert (kind, status, failure_label(failure)) == ("market", Status.FAILED, "error")


async def test_the_reconciler_counts_each_order_it_re_drives_by_step():
    services = fake_services()
    ctx = services.ctx
    await services.desk.submit(MARKET, CLIENT)
    await services.desk.submit(MARKET, CLIENT)
    services.queues.sent.clear()  # both orders' messages lost: they stay pending
    ctx.clock._now += timedelta(hours=1)
    assert (await reconcile.run_round(ctx, services.queues))["redriven"] == 2
    assert ctx.metrics.of("redriven") == [("quote",), ("quote",)]


@pytest.mark.parametrize(("reason", "label"), [
    (None, ""),
    ("slippage", "slippage"),
    ("no_route: no venue returned a quote: raydium: pool too shallow", "no_route"),
    ("limit_price_not_met", "limit_price_not_met"),
    ("insufficient liquidity: 12 > 10", "insufficient_liquidity"),
    ("TimeoutError", "timeout"),
    ("NoQuotes: no venue returned a quote: raydium: down", "error"),
    ("ConnectionError: chain unreachable", "error"),
    ("ünïcode ✗ garbage", "error"),
])
def test_failure_reasons_become_a_bounded_label(reason, label):
    assert failure_label(reason) == label


WRITER = textwrap.dedent("""
    import sys
    from shared.adapters.metrics import prometheus_metrics
    metrics = prometheus_metrics(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        metrics.order_taken("market")
        metrics.step_took("quote", 0.003)
    metrics.order_finished("limit", "failed", "slippage", 2.0)
    metrics.events_published(6)
    metrics.socket_opened("execute")
    print("ok", flush=True)
    sys.stdin.read()  # stays alive (its socket open) until told to exit
""")


def _scrape(directory: Path) -> dict[tuple[str, tuple], float]:
    """Every sample of the directory's exposition, in a fresh process, as prometheus_client's parser reads it."""
    code = textwrap.dedent("""
        import json, sys
        from shared.adapters.metrics import render, use_directory
        use_directory(sys.argv[1])
        from prometheus_client.parser import text_string_to_metric_families
        body, _ = render({("quote", "queued"): 3})
        print(json.dumps([[s.name, sorted(s.labels.items()), s.value]
                          for family in text_string_to_metric_families(body.decode()) for s in family.samples]))
    """)
    out = subprocess.run([sys.executable, "-c", code, str(directory)], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return {(name, tuple(tuple(pair) for pair in labels)): value for name, labels, value in msgspec.json.decode(out)}


def test_processes_sharing_a_directory_are_summed_and_a_dead_ones_sockets_stop_counting(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(count)], cwd=ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE) for count in (2, 3)]
    try:
        assert [w.stdout.readline().strip() for w in writers] == ["ok", "ok"]
        samples = _scrape(tmp_path)
        assert samples[("dex_orders_taken_total", (("kind", "market"),))] == 5
        assert samples[("dex_step_duration_seconds_count", (("step", "quote"),))] == 5
        assert samples[("dex_step_duration_seconds_bucket", (("le", "0.005"), ("step", "quote")))] == 5
        assert samples[("dex_step_duration_seconds_bucket", (("le", "0.001"), ("step", "quote")))] == 0
        finished = ("dex_orders_finished_total", (("kind", "limit"), ("reason", "slippage"), ("status", "failed")))
        assert samples[finished] == 2
        assert samples[("dex_order_duration_seconds_sum", (("kind", "limit"), ("status", "failed")))] == 4.0
        assert samples[("dex_events_published_total", ())] == 12
        assert samples[("dex_websockets_open", (("route", "execute"),))] == 2
        assert samples[("dex_queue_jobs", (("function", "quote"), ("state", "queued")))] == 3

        first = writers[0]
        first.communicate("")  # exits
        from shared.adapters.metrics import mark_process_dead

        mark_process_dead(str(tmp_path), first.pid)
        samples = _scrape(tmp_path)
        assert samples[("dex_websockets_open", (("route", "execute"),))] == 1  # the live process's socket
        assert samples[("dex_orders_taken_total", (("kind", "market"),))] == 5  # counters never go back
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.communicate("")


def test_cleaning_a_directory_keeps_only_the_files_of_running_processes(tmp_path):
    from shared.adapters.metrics import clean_directory

    live = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "1"], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert live.stdout.readline().strip() == "ok"
        (tmp_path / "counter_999999999.db").write_bytes(b"\0" * 16)  # a process long gone
        (tmp_path / "notes.txt").write_text("not ours")
        clean_directory(str(tmp_path))
        left = sorted(path.name for path in tmp_path.iterdir())
        assert "counter_999999999.db" not in left and "notes.txt" in left
        assert f"counter_{live.pid}.db" in left and f"histogram_{live.pid}.db" in left
    finally:
        live.communicate("")


def test_the_grafana_dashboard_queries_only_series_the_engine_exposes():
    from shared.adapters.metrics import _instruments

    families = {metric._name: metric._type for metric in _instruments().values()} | {"dex_queue_jobs": "gauge"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exposed = {name + suffix for name, kind in families.items() for suffix in suffixes[kind]}
    dashboard = msgspec.json.decode((ROOT / "deploy" / "grafana-dashboard.json").read_bytes())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bdex_[a-z_]+", expr)}
    assert used <= exposed, sorted(used - exposed)
    assert {"dex_orders_taken_total", "dex_orders_finished_total", "dex_step_duration_seconds_bucket",
            "dex_order_duration_seconds_bucket", "dex_queue_jobs", "dex_orders_refused_total", "dex_step_retries_total",
            "dex_step_give_ups_total", "dex_websockets_open"} <= used
