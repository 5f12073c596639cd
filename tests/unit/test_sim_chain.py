"""The simulated chain's timing: a transaction lands at the first slot boundary after its confirm
delay, so the transactions due in one slot land together (on a fake clock and the in-memory store)."""

from __future__ import annotations

import asyncio

import pytest

from shared.adapters.sim.chain import SimulatedChain
from shared.adapters.sim.memory_store import MemoryMarketStore
from shared.domain.chain import Transaction, transaction_signature
from shared.domain.tokens import SOL, USDC
from shared.settings import SimulationSettings


class FakeTime:
    """A clock that moves only when the chain sleeps; each sleep is recorded."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def now_s(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def transaction(n: int) -> Transaction:
    order_id = f"00000000-0000-0000-0000-{n:012d}"
    return Transaction(transaction_signature(order_id, 0), order_id, 0, "raydium", SOL.mint, USDC.mint, 10**9, 1)


def chain_on(time: FakeTime, **sim) -> tuple[SimulatedChain, MemoryMarketStore]:
    store = MemoryMarketStore(now_s=time.now_s)
    return SimulatedChain(store, SimulationSettings(**sim), sleep=time.sleep, now_s=time.now_s), store


@pytest.mark.parametrize("now", [1_765_000_000.0, 1_765_000_000.123, 1_765_000_001.9999])
async def test_a_transaction_lands_at_the_first_slot_boundary_after_its_confirm_delay(now: float) -> None:
    time = FakeTime(now)
    chain, _ = chain_on(time, confirm_delay_ms=1_500, confirm_jitter_ms=300, slot_ms=400)
    for n in range(50):
        await chain.confirm(transaction(n))
    for slept in time.slept:
        lands_ms = (now + slept) * 1000
        assert lands_ms == pytest.approx(round(lands_ms / 400) * 400, abs=1e-3), "not on a slot boundary"
        assert 1_500 - 1e-3 <= slept * 1000 < 1_500 + 300 + 400, "before its delay, or a whole slot late"
    assert len({round((now + s) * 1000) for s in time.slept}) <= 2, "1.5–1.8 s after now spans at most two slots"


async def test_transactions_due_in_one_slot_wake_at_one_instant_whatever_their_jitter() -> None:
    time = FakeTime(1_765_000_000.0)  # a slot boundary: 1.5–1.6 s later is all in the slot ending at 1.6 s
    chain, store = chain_on(time, confirm_delay_ms=1_500, confirm_jitter_ms=100, slot_ms=400)
    await asyncio.gather(*(chain.confirm(transaction(n)) for n in range(20)))
    assert {round((time.now + s) * 1000) for s in time.slept} == {1_765_000_001_600}
    assert len(store.landed) == 20


async def test_without_slots_each_transaction_waits_its_own_delay() -> None:
    time = FakeTime(1_765_000_000.05)
    chain, _ = chain_on(time, confirm_delay_ms=1_500, confirm_jitter_ms=0, slot_ms=0)
    await chain.confirm(transaction(1))
    assert time.slept == [1.5]


async def test_zero_delays_land_at_once_with_no_wait_for_a_slot() -> None:
    time = FakeTime(1_765_000_000.05)
    chain, store = chain_on(time, zero_delays=True)
    await chain.build(transaction(1))
    await chain.send(transaction(1))
    await chain.confirm(transaction(1))
    assert time.slept == [] and len(store.landed) == 1
