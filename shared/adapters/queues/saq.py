"""The SAQ adapter: one Redis queue per function, a job per batch of messages, retries with backoff.

A job runs the step's `handle` on each of its messages and sends each result to the next
step's queue, as the chain table says. A failed message is retried (exponential backoff)
until its last attempt, after which its order is marked failed with the reason; the worker
never dies of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
from saq import CronJob, Worker
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from shared.adapters.batching import Coalescer
from shared.adapters.postgres.upkeep import UPKEEP_INTERVAL_S
from shared.adapters.redis.connection import new_redis
from shared.settings import Settings

log = logging.getLogger("engine.saq")

_encoder = msgspec.json.Encoder()
Deliver = Callable[[str, list[str], int], Awaitable[list[bool]]]
"""Runs a job's messages (step, bodies, delivery number) and says, for each, whether to deliver it again."""
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
    make that harmless. Jobs are (de)serialized with msgspec rather than the stdlib's json.

    A dequeued job is marked active without the job waiting for it: the write goes out at
    once (as SAQ's own does, so the sweep sees the job active as soon as it would with SAQ)
    and its round trip overlaps the job's work instead of delaying it; finishing or retrying
    the job waits for it first, so the job's last write is always the one that stays."""

    SWEEP_ABORT_WAIT_S = 0.2

    def __init__(self, redis, name: str, **kwargs: Any) -> None:
        super().__init__(redis, name, dump=_encoder.encode, load=msgspec.json.decode, **kwargs)
        self._marking: dict[str, asyncio.Task] = {}

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        if status is not Status.ACTIVE:
            await super()._update(job, status, **kwargs)
            return
        task = asyncio.get_running_loop().create_task(super()._update(job, status, **kwargs))
        self._marking[job.id] = task
        task.add_done_callback(lambda done: self._marking.pop(job.id, None) if self._marking.get(job.id) is done
                               else None)

    async def _marked(self, job: Job) -> None:
        """Wait for the job's mark-active write, if it is still in flight (its failure is the
        sweep's business, not the job's)."""
        task = self._marking.get(job.id)
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    async def _finish(self, job: Job, status: Status, **kwargs: Any) -> None:
        await self._marked(job)
        await super()._finish(job, status, **kwargs)

    async def _retry(self, job: Job, error: str | None) -> None:
        await self._marked(job)
        await super()._retry(job, error)

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        return await super().sweep(lock, abort=self.SWEEP_ABORT_WAIT_S)

    async def notify(self, job) -> None:
        """SAQ publishes every job status change for callers awaiting a job's result; nobody
        here awaits one (results travel as the next message), so skip the PUBLISH."""


class SaqQueues:
    """The queue port on SAQ: `send(message)` and the workers that consume each queue.

    Messages for one function sent while its previous job is being enqueued travel together
    in the next job (group commit, shared/adapters/batching.py), as an SQS batch would: a SAQ
    job costs ~16 Redis commands however many messages it carries. Each message of a job runs on
    its own (the delivery loop handed to `workers`); one to deliver again is sent again alone,
    after a backoff, with its attempt number, so it never holds back or repeats the others.
    Which queue a message goes to (`route`) and what identifies it across deliveries (`key`)
    come from the pipeline table, handed in by the composition root."""

    def __init__(self, settings: Settings, route: Callable[[Any], str], key: Callable[[Any], str],
                 steps: Iterable[str]) -> None:
        self._settings = settings
        self._route = route
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
        self._senders = {
            name: Coalescer(functools.partial(self._enqueue_messages, name), max_batch=settings.batch_max,
                            max_in_flight=2, unique=key)
            for name in steps
        }

    async def connect(self) -> None:
        for queue in (*self.queues.values(), self.maintenance):
            await queue.connect()

    async def disconnect(self) -> None:
        for queue in (*self.queues.values(), self.maintenance):
            await queue.disconnect()

    async def send(self, message: Any) -> None:
        """Enqueue `message` for the function the pipeline table gives it to; returns once its
        job is stored in Redis."""
        await self._senders[self._route(message)].submit(message)

    async def _enqueue_messages(self, step: str, messages: list[Any]) -> list[None]:
        await self._enqueue(step, [_encoder.encode(m).decode() for m in messages])
        return [None] * len(messages)

    async def _enqueue(self, step: str, bodies: list[str], attempt: int = 1, delay_s: float = 0) -> None:
        """One job carrying `bodies` (encoded messages), delivery number `attempt` of each. Its
        SAQ retries only cover a worker that died holding it (the sweep re-queues it)."""
        settings = self._settings
        await self.queues[step].enqueue(
            step,
            timeout=settings.step_timeout_s(step) + JOB_TIMEOUT_MARGIN_S,
            retries=settings.job_attempts,
            retry_delay=settings.job_retry_delay_ms / 1000,
            retry_backoff=True,
            ttl=-1,  # forget a finished job at once: the order's record is in PostgreSQL, not in SAQ
            scheduled=time.time() + delay_s if delay_s else 0,
            messages=bodies,
            attempt=attempt,
        )

    def _job(self, step: str, deliver: Deliver):
        settings = self._settings

        async def run(saq_ctx: dict[str, Any], *, messages: list[str], attempt: int = 1) -> None:
            # A job the sweep re-queued after its worker died counts as another delivery.
            delivery = attempt + saq_ctx["job"].attempts - 1
            again = [body for body, retry in zip(messages, await deliver(step, messages, delivery), strict=True)
                     if retry]
            if again:
                delay_s = settings.job_retry_delay_ms / 1000 * 2 ** (delivery - 1)
                await self._enqueue(step, again, attempt=delivery + 1, delay_s=delay_s)

        return (step, run)

    def workers(self, steps: Iterable[str], deliver: Deliver) -> list[Worker]:
        """A SAQ worker per step, each job's messages run by `deliver`."""
        return [
            HostedWorker(
                self.queues[name],
                functions=[self._job(name, deliver)],
                concurrency=self._settings.worker_concurrency,
                timers={"sweep": 10},
            )
            for name in steps
        ]

    def reconciler(self, reconcile: Callable[[], Awaitable[Any]], upkeep: Callable[[], Awaitable[Any]] | None = None
                   ) -> Worker:
        """A worker whose SAQ cron runs `reconcile` every `reconcile_interval_s` (and `upkeep`,
        if given, every UPKEEP_INTERVAL_S). Every process with workers runs one; each cron
        job's unique key makes one of them run each round."""

        async def run(saq_ctx: dict[str, Any]) -> Any:
            return await reconcile()

        async def tidy(saq_ctx: dict[str, Any]) -> Any:
            return await upkeep()

        run.__qualname__ = run.__name__ = "reconcile"  # SAQ names cron jobs by __qualname__
        tidy.__qualname__ = tidy.__name__ = "upkeep"
        interval = max(1, self._settings.reconcile_interval_s)
        cron = f"* * * * * */{interval}" if interval < 60 else f"*/{interval // 60} * * * *"
        jobs = [CronJob(run, cron=cron, timeout=max(30, interval * 3))]
        if upkeep is not None:
            jobs.append(CronJob(tidy, cron=f"* * * * * */{UPKEEP_INTERVAL_S}", timeout=300))
        return HostedWorker(
            self.maintenance,
            functions=[job.function for job in jobs],
            cron_jobs=jobs,
            concurrency=1,
            timers={"sweep": 10, "schedule": 1},
        )
