"""Group commit (shared/adapters/batching.py): concurrent calls share a flush, each gets its own result,
a failing item fails alone."""

from __future__ import annotations

import asyncio

import pytest

from shared.adapters.batching import Backlog, Coalescer


class Recorder:
    def __init__(self, fail_on: set[int] | None = None, pause: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.pause = pause
        self.writing = self.most_at_once = 0

    async def flush(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.writing += 1
        self.most_at_once = max(self.most_at_once, self.writing)
        await asyncio.sleep(self.pause)
        self.writing -= 1
        if self.fail_on & set(items):
            raise ValueError(f"bad item in {items}")
        return [item * 10 for item in items]


async def test_calls_made_together_share_one_flush_and_get_their_own_results():
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert recorder.batches == [list(range(50))]


async def test_calls_arriving_during_a_flush_travel_in_the_next_one():
    recorder = Recorder(pause=0.01)
    coalescer = Coalescer(recorder.flush)
    first = asyncio.ensure_future(coalescer.submit(0))
    await asyncio.sleep(0.001)  # the first batch is being written
    rest = await asyncio.gather(*(coalescer.submit(i) for i in range(1, 6)))
    assert await first == 0 and rest == [10, 20, 30, 40, 50]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]


async def test_batches_never_exceed_the_maximum():
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, max_batch=4)
    await asyncio.gather(*(coalescer.submit(i) for i in range(10)))
    assert [len(b) for b in recorder.batches] == [4, 4, 2]


async def test_a_failing_item_fails_alone_and_the_others_succeed():
    recorder = Recorder(fail_on={3})
    coalescer = Coalescer(recorder.flush)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(6)), return_exceptions=True)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 10, 20, 40, 50]
    assert isinstance(results[3], ValueError)
    assert recorder.batches[0] == list(range(6))  # tried together, then one by one
    assert sorted(recorder.batches[1:]) == [[i] for i in range(6)]


async def test_items_with_the_same_key_never_share_a_batch():
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, unique=lambda item: item % 3)
    await asyncio.gather(*(coalescer.submit(i) for i in range(7)))
    for batch in recorder.batches:
        assert len({item % 3 for item in batch}) == len(batch)
    assert sorted(i for b in recorder.batches for i in b) == list(range(7))


async def test_a_caller_that_gives_up_does_not_disturb_the_batch():
    recorder = Recorder(pause=0.05)
    coalescer = Coalescer(recorder.flush)
    impatient = asyncio.ensure_future(asyncio.wait_for(coalescer.submit(1), 0.01))
    patient = asyncio.ensure_future(coalescer.submit(2))
    with pytest.raises(TimeoutError):
        await impatient
    assert await patient == 20
    assert [sorted(b) for b in recorder.batches] == [[1, 2]]  # the write went ahead: the caller only stopped waiting


async def test_several_batches_may_be_in_flight():
    recorder = Recorder(pause=0.02)
    coalescer = Coalescer(recorder.flush, max_batch=2, max_in_flight=3)
    await asyncio.gather(*(coalescer.submit(i) for i in range(6)))
    assert len(recorder.batches) == 3 and recorder.most_at_once == 3  # three batches of two, side by side


async def test_one_batch_at_a_time_by_default():
    recorder = Recorder(pause=0.01)
    coalescer = Coalescer(recorder.flush, max_batch=2)
    await asyncio.gather(*(coalescer.submit(i) for i in range(6)))
    assert recorder.most_at_once == 1


async def test_a_backlog_sends_what_one_turn_puts_together_in_order_and_a_failed_batch_alone():
    sent: list[list[int]] = []
    failed: list[tuple[list[int], str]] = []

    async def send(batch: list[int]) -> None:
        if 3 in batch:
            raise RuntimeError("down")
        sent.append(batch)

    backlog: Backlog[int] = Backlog(send, lambda batch, exc: failed.append((batch, str(exc))), max_batch=2)
    for item in (1, 2, 3, 4, 5):
        backlog.put(item)
    await backlog.flush()
    assert sent == [[1, 2], [5]] and failed == [([3, 4], "down")]
    backlog.put(6)
    await backlog.flush()
    assert sent[-1] == [6]
