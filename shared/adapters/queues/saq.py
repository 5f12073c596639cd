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


class _Held(msgspec.Struct):
    order_id: str | None = None


_held = msgspec.json.Decoder(_Held)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _orders_of(bodies: list[str]) -> list[str]:
    """The orders whose messages these are (a new order, not stored yet, has none)."""
    return [order_id for body in bodies if (order_id := _held.decode(body).order_id) is not None]


Deliver = Callable[[str, list[str], int], Awaitable[list[bool]]]
"""Runs a job's messages (step, bodies, delivery number) and says, for each, whether to deliver it again."""
JOB_TIMEOUT_MARGIN_S = 5
"""SAQ's own timeout sits above the step's, so the step times out first and can give up cleanly."""
MAX_RETRY_DELAY_S = 5.0
"""The longest wait before a message is delivered again: the backoff doubles up to it (a step
waiting out an outage is tried again every few seconds, however long the outage)."""


class HostedWorker(Worker):
    """A SAQ worker that leaves SIGINT/SIGTERM to its host process (uvicorn, the CLI):
    SAQ's own handlers would replace the host's and then remove them, so the process
    would no longer stop on SIGTERM."""

    SIGNALS: list = []


_SWEEP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
return {redis.call('LRANGE', KEYS[2], 0, -1), redis.call('HGETALL', KEYS[3])}
"""
"""One sweep of a queue a round (the first process to take the lock): its active jobs and their
heartbeats."""

_ENQUEUE = """
if redis.call('ZSCORE', KEYS[1], KEYS[2]) or redis.call('EXISTS', KEYS[4]) == 1 then return false end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], KEYS[2])
if ARGV[2] == '0' then redis.call('RPUSH', KEYS[3], KEYS[2]) end
for i = 4, #ARGV do redis.call('ZADD', KEYS[5], ARGV[3], ARGV[i]) end
return 1
"""
"""SAQ's enqueue, and in the same call the lease of each order whose message the job carries."""


class EngineQueue(RedisQueue):
    """SAQ's Redis queue, with heartbeats: a worker killed with SIGKILL is found out within
    seconds, not after its jobs' timeouts. Jobs are (de)serialized with msgspec rather than the
    stdlib's json.

    **Heartbeats.** While a job runs, its worker process writes its heartbeat (a field of the
    queue's `beats` hash, `job id#attempt` → ms) every quarter of `heartbeat_s` (SaqQueues does,
    for every queue of the process at once). Each second one process sweeps each queue (SAQ's
    sweep lock, held 1 s instead of 60): an active job whose heartbeat is older than
    `heartbeat_s` belonged to a dead process and is retried, whatever its timeout; a slow job
    that is alive keeps beating and is never taken for dead. A job dequeued but not yet marked
    active has no heartbeat for an instant: it counts as dead only once one sweeping process has
    seen it without one for `heartbeat_s`. The sweep does not wait for an abort the dead worker
    will never acknowledge.

    **Order leases.** Every order whose message a job carries has a lease in one sorted set per
    engine (`in_hand`, order id → ms until which its message is known to be in hand): enqueuing
    gives it the step's whole deadline (a queued message shows no heartbeat, however long the
    backlog), a running job's heartbeat renews it for two heartbeats. The reconciler re-drives an
    order only when its lease ran out (the message was lost: a flushed Redis, a job given up).

    A dequeued job is marked active without the job waiting for it: the write goes out at
    once and its round trip overlaps the job's work instead of delaying it; finishing or retrying
    the job waits for it first, so the job's last write is always the one that stays."""

    def __init__(self, redis, name: str, heartbeat_s: float, in_hand: str, lease_ms: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(redis, name, dump=_encoder.encode, load=msgspec.json.decode, **kwargs)
        self._marking: dict[str, asyncio.Task] = {}
        self.heartbeat_ms = int(heartbeat_s * 1000)
        self.beats = self.namespace("beats")
        self.in_hand = in_hand
        self.lease_ms = lease_ms
        """How long an enqueued message's lease lasts (its step's deadline)."""
        self.running: dict[str, tuple[str, list[str]]] = {}
        """Jobs running in this process: job id → (its heartbeat field, its orders)."""
        self.ended: list[str] = []
        """Heartbeat fields of jobs that ended here since the last beat (deleted by the next one)."""
        self._unbeaten: dict[bytes, int] = {}
        self._sweep_script = self.redis.register_script(_SWEEP)
        self._enqueue_leased = self.redis.register_script(_ENQUEUE)

    async def _enqueue(self, job: Job) -> Job | None:
        orders = (job.meta or {}).get("orders", ())
        async with self._op_sem:
            stored = await self._enqueue_leased(
                keys=[self._incomplete, job.id, self._queued, job.abort_id, self.in_hand],
                args=[self.serialize(job), job.scheduled, _now_ms() + self.lease_ms, *orders],
                client=self.redis,
            )
        return job if stored else None

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        if status is not Status.ACTIVE:
            await super()._update(job, status, **kwargs)
            return
        job.status = status
        field = f"{job.id}#{job.attempts}"
        self.running[job.id] = (field, (job.meta or {}).get("orders", []))
        task = asyncio.get_running_loop().create_task(self._mark_active(job, field))
        self._marking[job.id] = task
        task.add_done_callback(lambda done: self._marking.pop(job.id, None) if self._marking.get(job.id) is done
                               else None)

    async def _mark_active(self, job: Job, field: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            await pipe.set(job.id, self.serialize(job)).hset(self.beats, field, _now_ms()).execute()

    def _ended(self, job: Job) -> None:
        running = self.running.pop(job.id, None)
        if running is not None:
            self.ended.append(running[0])

    async def _marked(self, job: Job) -> None:
        """Wait for the job's mark-active write, if it is still in flight (its failure is the
        sweep's business, not the job's)."""
        task = self._marking.get(job.id)
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    async def _finish(self, job: Job, status: Status, **kwargs: Any) -> None:
        await self._marked(job)
        self._ended(job)
        await super()._finish(job, status, **kwargs)

    async def _retry(self, job: Job, error: str | None) -> None:
        await self._marked(job)
        self._ended(job)
        await super()._retry(job, error)

    async def sweep(self, lock: int = 1, abort: float = 0.0) -> list[str]:
        """Retry (or, out of attempts, abort) every active job whose process stopped beating."""
        got = await self._sweep_script(keys=[self._sweep, self._active, self.beats], args=[1000], client=self.redis)
        if not got:
            return []
        active, flat = got
        now = _now_ms()
        beats: dict[bytes, int] = {}
        fields: dict[bytes, list[bytes]] = {}
        for field, at in zip(flat[::2], flat[1::2], strict=True):
            job_id = field.rpartition(b"#")[0]
            beats[job_id] = max(beats.get(job_id, 0), int(at))
            fields.setdefault(job_id, []).append(field)
        unbeaten = {job_id: self._unbeaten.get(job_id, now) for job_id in active if job_id not in beats}
        self._unbeaten = unbeaten
        dead = [job_id for job_id in active
                if now - beats.get(job_id, unbeaten.get(job_id, now)) > self.heartbeat_ms]
        stale = [field for job_id, names in fields.items() if job_id not in active for field in names]
        if stale:  # left by a job swept before, or by a beat that raced its job's end
            await self.redis.hdel(self.beats, *stale)
        swept = []
        for job_id in dead:
            job = self.deserialize(await self.redis.get(job_id))
            await self.redis.hdel(self.beats, *fields.get(job_id, [b"-"]))
            swept.append(job_id.decode())
            if job is None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    await pipe.lrem(self._active, 0, job_id).zrem(self._incomplete, job_id).execute()
                continue
            log.warning("%s: job %s stopped beating (its worker died): %s", self.name, job.id,
                        "delivered again" if job.retryable else "out of attempts")
            await self.abort(job, error=self.swept_error_message)
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
                if orders := (job.meta or {}).get("orders"):  # queued again: in hand for the step's deadline
                    await self.redis.zadd(self.in_hand, dict.fromkeys(orders, _now_ms() + self.lease_ms))
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        return swept

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
        self.in_hand_key = f"{settings.namespace}:in-hand"
        # BLMOVE holds a connection per waiting job slot: each queue gets its own pool.
        size = settings.worker_concurrency + 16
        self.maintenance = EngineQueue(new_redis(settings.redis_url, 8), name=f"{settings.namespace}:maintenance",
                                       heartbeat_s=settings.job_heartbeat_s, in_hand=self.in_hand_key)
        self.queues = {
            name: EngineQueue(
                new_redis(settings.redis_url, size),
                name=f"{settings.namespace}:{name}",
                heartbeat_s=settings.job_heartbeat_s,
                in_hand=self.in_hand_key,
                lease_ms=settings.step_deadline_s(name) * 1000,
                max_concurrent_ops=settings.worker_concurrency,
            )
            for name in steps
        }
        self._beating: asyncio.Task | None = None
        self._senders = {
            name: Coalescer(functools.partial(self._enqueue_messages, name), max_batch=settings.batch_max,
                            max_in_flight=2, unique=key)
            for name in steps
        }

    async def connect(self) -> None:
        for queue in (*self.queues.values(), self.maintenance):
            await queue.connect()

    async def disconnect(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
            self._beating = None
        for queue in (*self.queues.values(), self.maintenance):
            await queue.disconnect()

    async def _beat(self) -> None:
        """Every quarter heartbeat: one pipeline renewing the heartbeat of every job running in
        this process and the lease of its orders, and dropping the heartbeats of jobs that ended."""
        interval = self._settings.job_heartbeat_s / 4
        renewal_ms = self._settings.job_heartbeat_s * 2000
        while True:
            await asyncio.sleep(interval)
            now = _now_ms()
            try:
                async with self.maintenance.redis.pipeline(transaction=False) as pipe:
                    orders: dict[str, int] = {}
                    for queue in self.queues.values():
                        if queue.running:
                            pipe.hset(queue.beats, mapping={field: now for field, _ in queue.running.values()})
                            orders.update((order_id, now + renewal_ms)
                                          for _, held in queue.running.values() for order_id in held)
                        if queue.ended:
                            pipe.hdel(queue.beats, *queue.ended)
                            queue.ended = []
                    if orders:
                        pipe.zadd(self.in_hand_key, orders)
                    if len(pipe):
                        await pipe.execute()
            except Exception as exc:  # Redis away: the sweep may take these jobs for dead (harmless, re-driven)
                log.warning("heartbeat not written: %s: %s", type(exc).__name__, exc)

    async def in_hand(self, order_ids: list[str]) -> set[str]:
        """The orders whose message is queued or running (their lease holds); the others' messages
        were lost. Leases that ran out an hour ago are dropped on the way."""
        if not order_ids:
            return set()
        now = _now_ms()
        async with self.maintenance.redis.pipeline(transaction=False) as pipe:
            leases, _ = await pipe.zmscore(self.in_hand_key, order_ids).zremrangebyscore(
                self.in_hand_key, "-inf", now - 3_600_000).execute()
        return {order_id for order_id, until in zip(order_ids, leases, strict=True) if until is not None and until > now}

    async def send(self, message: Any) -> None:
        """Enqueue `message` for the function the pipeline table gives it to; returns once its
        job is stored in Redis."""
        await self._senders[self._route(message)].submit(message)

    async def _enqueue_messages(self, step: str, messages: list[Any]) -> list[None]:
        orders = [order_id for m in messages if (order_id := getattr(m, "order_id", None)) is not None]
        await self._enqueue(step, [_encoder.encode(m).decode() for m in messages], orders=orders)
        return [None] * len(messages)

    async def _enqueue(self, step: str, bodies: list[str], attempt: int = 1, delay_s: float = 0,
                       orders: list[str] | None = None) -> None:
        """One job carrying `bodies` (encoded messages), delivery number `attempt` of each, and the
        leases of their `orders` (read from the bodies when not given). Its SAQ retries only cover a
        worker that died holding it (the sweep re-queues it)."""
        settings = self._settings
        await self.queues[step].enqueue(
            step,
            timeout=settings.step_timeout_s(step) + JOB_TIMEOUT_MARGIN_S,
            retries=settings.job_attempts,
            retry_delay=settings.job_retry_delay_ms / 1000,
            retry_backoff=True,
            ttl=-1,  # forget a finished job at once: the order's record is in PostgreSQL, not in SAQ
            scheduled=time.time() + delay_s if delay_s else 0,
            meta={"orders": _orders_of(bodies) if orders is None else orders},  # their leases (the reconciler's view)
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
                delay_s = min(settings.job_retry_delay_ms / 1000 * 2 ** (delivery - 1), MAX_RETRY_DELAY_S)
                await self._enqueue(step, again, attempt=delivery + 1, delay_s=delay_s)

        return (step, run)

    def workers(self, steps: Iterable[str], deliver: Deliver) -> list[Worker]:
        """A SAQ worker per step, each job's messages run by `deliver`; this process's jobs beat
        from now on, and each queue is swept every second."""
        if self._beating is None:
            self._beating = asyncio.get_running_loop().create_task(self._beat(), name="job-heartbeats")
        return [
            HostedWorker(
                self.queues[name],
                functions=[self._job(name, deliver)],
                concurrency=self._settings.worker_concurrency,
                timers={"sweep": 1},
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
            timers={"sweep": 1, "schedule": 1},
        )
