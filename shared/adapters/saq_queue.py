"""The SAQ adapter: one Redis queue per function, a job per message, retries with backoff.

A job runs the step's `handle` and sends the result to the next step's queue, as the
chain table says. A failure is retried (exponential backoff) until the last attempt,
after which the order is marked failed with the reason; the worker never dies of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import msgspec
from saq import CronJob, Worker
from saq.queue.redis import RedisQueue

from functions import reconcile
from functions.chain import CHAIN, Step, message_key, run_attempt, step_for
from shared.context import Context
from shared.settings import Settings
from shared.wiring import new_redis

log = logging.getLogger("engine.saq")

_encoder = msgspec.json.Encoder()
JOB_TIMEOUT_MARGIN_S = 5
"""SAQ's own timeout sits above the step's, so the step times out first and can give up cleanly."""


class HostedWorker(Worker):
    """A SAQ worker that leaves SIGINT/SIGTERM to its host process (uvicorn, the CLI):
    SAQ's own handlers would replace the host's and then remove them, so the process
    would no longer stop on SIGTERM."""

    SIGNALS: list = []


class EngineQueue(RedisQueue):
    """SAQ's Redis queue, with a sweep that does not wait 5 s per stuck job for an abort the
    dead worker will never acknowledge (SAQ sweeps stuck jobs one by one: 20 jobs left by a
    killed worker took 100 s to come back). A live worker that overran its timeout is
    aborted all the same; if its run overlaps the retry, the steps' conditional transitions
    make that harmless."""

    SWEEP_ABORT_WAIT_S = 0.2

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        return await super().sweep(lock, abort=self.SWEEP_ABORT_WAIT_S)

    async def notify(self, job) -> None:
        """SAQ publishes every job status change for callers awaiting a job's result; nobody
        here awaits one (results travel as the next message), so skip the PUBLISH."""


class SaqQueues:
    """The queue port on SAQ: `send(step, message)` and the workers that consume each queue."""

    def __init__(self, settings: Settings, steps: Iterable[str] = CHAIN) -> None:
        self._settings = settings
        # BLMOVE holds a connection per waiting job slot: each queue gets its own pool.
        size = settings.worker_concurrency + 16
        self.maintenance = EngineQueue(new_redis(settings.redis_url, 8), name=f"{settings.namespace}:maintenance")
        self.queues = {
            name: EngineQueue(
                new_redis(settings.redis_url, size),
                name=f"{settings.namespace}:{name}",
                max_concurrent_ops=settings.worker_concurrency,
            )
            for name in steps
        }

    async def connect(self) -> None:
        for queue in (*self.queues.values(), self.maintenance):
            await queue.connect()

    async def disconnect(self) -> None:
        for queue in (*self.queues.values(), self.maintenance):
            await queue.disconnect()

    async def send(self, message: Any, redrive: bool = False) -> None:
        """Enqueue `message` for the function the chain table gives it to. The job key dedupes
        deliveries of one step for one order; a re-drive by the reconciler has a key of its own,
        so a job left "active" by a killed worker cannot block it."""
        settings = self._settings
        step = step_for(message)
        await self.queues[step].enqueue(
            step,
            key=f"{step}:{message_key(message)}{':redrive' if redrive else ''}",
            timeout=settings.step_timeout_s(step) + JOB_TIMEOUT_MARGIN_S,
            retries=settings.job_attempts,
            retry_delay=settings.job_retry_delay_ms / 1000,
            retry_backoff=True,
            ttl=-1,  # forget a finished job at once: the order's record is in PostgreSQL, not in SAQ
            message=_encoder.encode(message).decode(),
        )

    def job_function(self, step: Step, ctx: Context):
        decoder = msgspec.json.Decoder(step.message_type)
        timeout = self._settings.step_timeout_s(step.name)

        async def run(saq_ctx: dict[str, Any], *, message: str) -> None:
            job = saq_ctx["job"]
            try:
                decoded = decoder.decode(message)
            except msgspec.DecodeError:
                log.error("dropping undecodable %s message: %.200s", step.name, message)
                return
            result = await run_attempt(step, decoded, ctx, job.attempts, job.retries, timeout)
            if result is not None:
                await self.send(result)

        return (step.name, run)

    def workers(self, ctx: Context, steps: Iterable[str] = CHAIN) -> list[Worker]:
        return [
            HostedWorker(
                self.queues[name],
                functions=[self.job_function(CHAIN[name], ctx)],
                concurrency=self._settings.worker_concurrency,
                timers={"sweep": 10},
            )
            for name in steps
        ]

    def reconciler(self, ctx: Context) -> Worker:
        """A worker whose SAQ cron runs `reconcile` every `reconcile_interval_s`. Every process
        with workers runs one; the cron job's unique key makes one of them run each round."""

        async def run(saq_ctx: dict[str, Any]) -> dict[str, int]:
            return await reconcile.run_round(ctx, self)

        run.__qualname__ = run.__name__ = "reconcile"  # SAQ names cron jobs by __qualname__
        interval = max(1, self._settings.reconcile_interval_s)
        cron = f"* * * * * */{interval}" if interval < 60 else f"*/{interval // 60} * * * *"
        return HostedWorker(
            self.maintenance,
            functions=[run],
            cron_jobs=[CronJob(run, cron=cron, timeout=max(30, interval * 3))],
            concurrency=1,
            timers={"sweep": 10, "schedule": 1},
        )
