"""Group commit: calls made while a batch is being written travel together in the next one.

`Coalescer.submit(item)` parks the caller on a future; one flusher task hands every parked
item to `flush(items) -> results` in a single call (one SQL statement, one Redis pipeline,
one queue job), then wakes each caller with its own result. Under light load a batch holds
one item and costs one extra loop turn; under heavy load batches grow by themselves, so
the per-item cost of a round trip shrinks as the load rises.

A batch that fails is retried item by item, so one bad item fails alone and never takes the
others with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[R]]],
        max_batch: int = 256,
        max_in_flight: int = 1,
        unique: Callable[[T], Hashable] | None = None,
    ) -> None:
        """`flush` must return one result per item, in order. `max_in_flight` batches may be
        written at once (each holds a connection). With `unique`, two items with the same key
        never share a batch (e.g. two changes of one order: one statement would apply only one).
        `max_batch=1` calls `flush` directly, as many at once as there are callers (no batching)."""
        self._flush = flush
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._unique = unique
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushers = 0
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        if self._max_batch == 1:  # one at a time: no batching machinery at all
            return (await self._flush([item]))[0]
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flushers < self._max_in_flight:
            self._flushers += 1
            task = asyncio.get_running_loop().create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        if self._unique is None:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch:]
            return batch
        batch, rest, seen = [], [], set()
        for entry in self._pending:
            key = self._unique(entry[0])
            if key in seen or len(batch) >= self._max_batch:
                rest.append(entry)
            else:
                seen.add(key)
                batch.append(entry)
        self._pending = rest
        return batch

    async def _run(self) -> None:
        try:
            await asyncio.sleep(0)  # let the callers of this loop turn join the first batch
            while self._pending:
                batch = self._take()
                self.batches += 1
                self.items += len(batch)
                await self._write(batch)
        finally:
            self._flushers -= 1

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for entry in batch:  # isolate the culprit: every item on its own
                await self._write([entry])
            return
        except BaseException as exc:  # cancelled while writing: the callers must not hang
            for _, future in batch:
                _settle(future, exc=exc)
            raise
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
    if future.done():  # the caller gave up (timeout, cancellation); the write stands regardless
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class Backlog(Generic[T]):
    """Fire and forget, in order: items put in one loop turn go out together, in batches of at most
    `max_batch`, through `send`, by one background task; a batch `send` fails is given to `failed`
    (the items are not retried: their readers catch up from storage)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[None]], failed: Callable[[list[T], Exception], None],
                 max_batch: int = 256) -> None:
        self._send = send
        self._failed = failed
        self._max_batch = max_batch
        self._waiting: list[T] = []
        self._sender: asyncio.Task | None = None

    def put(self, item: T) -> None:
        self._waiting.append(item)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_all())

    async def flush(self) -> None:
        """Wait until everything put so far has been sent (or given up)."""
        while self._sender is not None:
            await asyncio.shield(self._sender)

    async def _send_all(self) -> None:
        try:
            await asyncio.sleep(0)  # the items put in this loop turn go together
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch:]
                try:
                    await self._send(batch)
                except Exception as exc:
                    self._failed(batch, exc)
        finally:
            self._sender = None
