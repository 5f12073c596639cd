"""`GET /metrics`: the engine's Prometheus metrics, every process's (no API key: scrapers), with
the depth of each function's SAQ queue read from Redis for the scrape; and the directory the
processes of one `start` share them through (shared/adapters/metrics.py)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import tempfile

from litestar import Request, Response, get

from functions.bootstrap import Services
from functions.pipeline import QUEUED_STEPS
from shared.adapters.metrics import clean_directory, mark_process_dead, render
from shared.settings import Settings

log = logging.getLogger("engine.metrics")
QUEUE_READ_TIMEOUT_S = 2.0
"""A scrape does not wait longer for Redis: the depths are left out, the rest is answered."""


@get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus text format: every process's counters and histograms, summed (multiprocess
    directory), and `dex_queue_jobs` read from the queues now."""
    services: Services = request.app.state.services
    depths = await queue_jobs(services)
    body, content_type = await asyncio.to_thread(render, depths)  # reads the processes' files: off the loop
    return Response(body, media_type=content_type)


async def queue_jobs(services: Services) -> dict[tuple[str, str], int] | None:
    """(function, state) -> SAQ jobs, for each function's queue (None: not SAQ, or Redis did not answer).
    `queued` waits for a worker, `active` runs, `scheduled` is a retry waiting out its backoff."""
    saq_queues = getattr(services.queues, "queues", None)  # SaqQueues: one EngineQueue per function
    if not saq_queues:
        return None
    queues = {function: saq_queues[function] for function in QUEUED_STEPS if function in saq_queues}
    try:
        async with asyncio.timeout(QUEUE_READ_TIMEOUT_S):
            counts = await asyncio.gather(*(_counts(queue) for queue in queues.values()))
    except Exception as exc:  # noqa: BLE001 - the rest of the scrape is still worth answering
        log.warning("queue depths not read for /metrics (%s: %s)", type(exc).__name__, exc)
        return None
    jobs = {}
    for function, (queued, active, incomplete) in zip(queues, counts, strict=True):
        jobs[(function, "queued")] = queued
        jobs[(function, "active")] = active
        jobs[(function, "scheduled")] = max(incomplete - queued - active, 0)
    return jobs


async def _counts(queue) -> tuple[int, int, int]:
    """SAQ's lists of queued and active jobs and its set of incomplete ones (queued, active or
    scheduled), read in one transaction so they agree."""
    async with queue.redis.pipeline(transaction=True) as pipe:
        pipe.llen(queue.namespace("queued")).llen(queue.namespace("active")).zcard(queue.namespace("incomplete"))
        queued, active, incomplete = await pipe.execute()
    return queued, active, incomplete


def engine_directory(settings: Settings) -> Settings:
    """The metrics directory of one `start` command's processes, as the settings' `metrics_dir`
    (for this process and the workers it spawns): DEX_METRICS_DIR, cleaned of what processes no
    longer running left in it (worker commands started separately with the same directory join
    it); when unset, a new temporary directory, removed when the command exits."""
    if settings.metrics_dir:
        clean_directory(settings.metrics_dir)
        atexit.register(mark_process_dead, settings.metrics_dir, os.getpid())  # its sockets no longer count
        return settings
    directory = tempfile.mkdtemp(prefix="dex-metrics-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return settings.with_changes(metrics_dir=directory)
