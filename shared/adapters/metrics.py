"""The metrics port on Prometheus (prometheus_client), and the scrape's exposition.

Every process of one engine (the web process, its worker processes, worker commands started
separately on the same machine) writes its values to files in one directory, prometheus_client's
multiprocess mode (`DEX_METRICS_DIR`; the start command makes one when it is empty), and the web
process's `GET /metrics` sums them: a counter counts what every process did, the open-sockets
gauge adds up the live processes' sockets ("livesum"). Without a directory (tests, a lone
process) the values stay in the process.

prometheus_client picks its mode when it is first imported, from PROMETHEUS_MULTIPROC_DIR: this
module imports it only once `use_directory` has run (the composition root calls it with the
settings' directory before the first metric exists), so nothing else may import it earlier.

The hot path's calls are cheap: each label combination's child is looked up once and kept, so a
call is one or two value writes (~1 µs each in multiprocess mode: a lock and a write to a
memory-mapped file).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable: where the process's value files go."""

STEP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""One run of a step: a millisecond with every simulated delay at zero, up to its timeout (60 s)."""
ORDER_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                   86400.0)
"""Creation to terminal: milliseconds for a market order with no delays, seconds with the simulated
chain's, up to a day for a resting limit or sniper order."""

FAILURE_LABELS = frozenset({"slippage", "no_route", "limit_price_not_met", "insufficient_liquidity", "timeout"})
"""The `reason` label's values besides "" (no failure) and "error" (anything else: a step that gave
up on an exception)."""
_PREFIX = re.compile(r"[A-Za-z_ ]+")
CONTENT_TYPE = "text/plain; version=0.0.4"
"""The text format every Prometheus reads (the body is the same in its 1.0.0 version: plain names)."""


@functools.lru_cache(maxsize=1024)
def failure_label(reason: str | None) -> str:
    """A stored failure reason ("slippage", "no_route: no venue …", "insufficient liquidity: …",
    "TimeoutError", "NoQuotes: …") as a bounded label."""
    if not reason:
        return ""
    match = _PREFIX.match(reason)
    head = match.group(0).strip().lower().replace(" ", "_") if match else ""
    if head == "timeouterror":
        return "timeout"
    return head if head in FAILURE_LABELS else "error"


def use_directory(directory: str) -> None:
    """Write this process's metrics under `directory` (created if missing), with every other
    process of the engine: prometheus_client's multiprocess mode. Must run before the first
    metric is created in this process."""
    os.makedirs(directory, exist_ok=True)
    os.environ[MULTIPROC_ENV] = directory
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported already (by a test, say): switch the value class it hands out
        values.ValueClass = values.get_value_class()


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


@functools.cache
def _instruments() -> dict[str, Any]:
    """The metrics, created once per process (prometheus_client refuses a name twice)."""
    from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

    disable_created_metrics()  # no `_created` series beside every counter and histogram (a single process shows them)
    return {
        "taken": Counter("dex_orders_taken", "Orders stored (repeats of an idempotency key are not), by type",
                         ["kind"]),
        "finished": Counter("dex_orders_finished",
                            "Orders that reached a terminal status, by type, status and failure reason "
                            "(reason empty unless failed or partially filled)",
                            ["kind", "status", "reason"]),
        "order_seconds": Histogram("dex_order_duration_seconds",
                                   "From the order's creation to its terminal status, by type and status",
                                   ["kind", "status"], buckets=ORDER_BUCKETS_S),
        "step_seconds": Histogram("dex_step_duration_seconds", "One run of a step on one message (any outcome)",
                                  ["step"], buckets=STEP_BUCKETS_S),
        "retries": Counter("dex_step_retries", "Step runs that failed with attempts left (delivered again)",
                           ["step"]),
        "give_ups": Counter("dex_step_give_ups", "Steps that failed on their last attempt (the order fails)",
                            ["step"]),
        "redriven": Counter("dex_reconciler_redriven", "Stuck orders the reconciler sent to a step again", ["step"]),
        "refused": Counter("dex_orders_refused", "Orders refused at admission, by limit (rate, in_flight)",
                           ["reason"]),
        "published": Counter("dex_events_published", "Order events sent on Redis pub/sub"),
        "unpublished": Counter("dex_events_publish_failed",
                               "Order events whose publish failed (subscribers catch up from PostgreSQL)"),
        "replayed": Counter("dex_events_replayed",
                            "Order events a stream read from PostgreSQL (catch-up, a repaired gap) rather than live"),
        "sockets": Gauge("dex_websockets_open", "Open WebSockets, by route (summed over live processes)", ["route"],
                         multiprocess_mode="livesum"),
    }


class PrometheusMetrics:
    """The metrics port: each call finds its label child in a dict (made on first use) and
    increments or observes it."""

    def __init__(self) -> None:
        self._m = _instruments()
        self._children: dict[tuple, Any] = {}
        self._published = self._m["published"]
        self._unpublished = self._m["unpublished"]
        self._replayed = self._m["replayed"]

    def _child(self, name: str, *labels: str) -> Any:
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._m[name].labels(*labels)
        return child

    def order_taken(self, kind: str) -> None:
        self._child("taken", kind).inc()

    def order_finished(self, kind: str, status: str, failure: str | None, seconds: float) -> None:
        self._child("finished", kind, status, failure_label(failure)).inc()
        self._child("order_seconds", kind, status).observe(max(seconds, 0.0))

    def step_took(self, step: str, seconds: float) -> None:
        self._child("step_seconds", step).observe(seconds)

    def step_retried(self, step: str) -> None:
        self._child("retries", step).inc()

    def step_gave_up(self, step: str) -> None:
        self._child("give_ups", step).inc()

    def redriven(self, step: str) -> None:
        self._child("redriven", step).inc()

    def refused(self, reason: str) -> None:
        self._child("refused", reason).inc()

    def events_published(self, count: int) -> None:
        self._published.inc(count)

    def events_unpublished(self, count: int) -> None:
        self._unpublished.inc(count)

    def events_replayed(self, count: int) -> None:
        if count:
            self._replayed.inc(count)

    def socket_opened(self, route: str) -> None:
        self._child("sockets", route).inc()

    def socket_closed(self, route: str) -> None:
        self._child("sockets", route).dec()


class NullMetrics:
    """Counts nothing (a cloud function: nothing scrapes it)."""

    def order_taken(self, kind: str) -> None: ...
    def order_finished(self, kind: str, status: str, failure: str | None, seconds: float) -> None: ...
    def step_took(self, step: str, seconds: float) -> None: ...
    def step_retried(self, step: str) -> None: ...
    def step_gave_up(self, step: str) -> None: ...
    def redriven(self, step: str) -> None: ...
    def refused(self, reason: str) -> None: ...
    def events_published(self, count: int) -> None: ...
    def events_unpublished(self, count: int) -> None: ...
    def events_replayed(self, count: int) -> None: ...
    def socket_opened(self, route: str) -> None: ...
    def socket_closed(self, route: str) -> None: ...


def prometheus_metrics(directory: str) -> PrometheusMetrics:
    """The port for this process: in `directory` with the engine's other processes (empty: in
    this process only)."""
    if directory:
        use_directory(directory)
    return PrometheusMetrics()


def render(queue_jobs: Mapping[tuple[str, str], int] | None = None) -> tuple[bytes, str]:
    """The scrape and its content type (UTF-8): every process's metrics (summed from the directory
    in multiprocess mode, else this process's registry), plus the queue depths read for it
    ((function, state) -> jobs)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector

    _instruments()  # every family is listed (at zero) even before anything happened
    if multiprocess_directory():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    if queue_jobs is not None:
        depth = GaugeMetricFamily("dex_queue_jobs", "SAQ jobs in each function's queue, by state (queued: waiting "
                                  "for a worker; active: running; scheduled: a retry waiting out its backoff); "
                                  "a job carries a batch of messages", labels=["function", "state"])
        for (function, state), jobs in sorted(queue_jobs.items()):
            depth.add_metric([function, state], jobs)
        extra = CollectorRegistry()
        extra.register(_Fixed([depth]))
        body += generate_latest(extra)
    return body, CONTENT_TYPE


class _Fixed:
    """A collector of families read before the scrape (the queue depths come from Redis)."""

    def __init__(self, families: list) -> None:
        self._families = families

    def collect(self):
        return iter(self._families)


_PID_FILE = re.compile(r"_(\d+)\.db$")


def clean_directory(directory: str) -> None:
    """Remove what processes no longer running left in `directory` (and any file named after this
    process's id: a process before it with the same id, as in a container restarted), keeping the
    files of processes that run (a worker command started separately that joined it)."""
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        match = _PID_FILE.search(path)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not _alive(pid):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_process_dead(directory: str, pid: int) -> None:
    """A process of the engine exited: its live gauges (open sockets) stop counting; its counters
    stay (a total never goes back)."""
    if not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)
