"""The simulated chain as the functions meet it: build, send and confirm delays, slots and
dropped transactions here; the landing itself (atomic, once per signature) is the shared market
store's."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable

from shared.domain.chain import ChainUnavailable, Landing, Transaction
from shared.ports import MarketStore
from shared.settings import SimulationSettings

Sleep = Callable[[float], Awaitable[None]]


class SimulatedChain:
    """Build, send and confirm on the shared market: delays, slots and dropped transactions here;
    the landing itself (atomic, once per signature) is the store's.

    **Slots.** A transaction lands at the first slot boundary after its confirm delay, as on a chain
    that makes a block per slot: the transactions of a process due in one slot wake together and
    land as one batch of the store (one database transaction), instead of one landing per
    transaction spread over the delays' jitter."""

    def __init__(self, store: MarketStore, sim: SimulationSettings, sleep: Sleep,
                 now_s: Callable[[], float]) -> None:
        self._store = store
        self._sim = sim
        self._sleep = sleep
        self._now_s = now_s
        self._rng = random.Random(sim.seed + 2)

    async def _delay(self, ms: int) -> None:
        ms = self._sim.delay_ms(ms)
        if ms:
            await self._sleep(ms / 1000)

    async def _until_slot_after(self, ms: int) -> None:
        """Wait `ms`, then on to the next slot boundary (every process's: multiples of the slot
        since the epoch)."""
        slot_ms = self._sim.delay_ms(self._sim.slot_ms)
        if not slot_ms:  # no slots, or zero delays (then `_delay` waits for nothing)
            await self._delay(ms)
            return
        now_ms = self._now_s() * 1000
        await self._sleep((math.ceil((now_ms + ms) / slot_ms) * slot_ms - now_ms) / 1000)

    async def build(self, tx: Transaction) -> None:
        await self._delay(self._sim.build_delay_ms)

    async def send(self, tx: Transaction) -> None:
        await self._delay(self._sim.submit_delay_ms)
        if self._rng.randrange(1000) < self._sim.chain_failure_permille:
            raise ChainUnavailable("blockhash not found; transaction was not processed")

    async def confirm(self, tx: Transaction, built_now: bool = False) -> Landing:
        """Wait for the transaction's slot and return its result. The swap is priced and applied
        to the shared pool atomically, so transactions from every process see each other's effect
        in the order they land, as on a chain, and a signature lands at most once. `built_now`:
        the caller built it in this delivery, so no earlier one can have landed it and the ledger
        need not be asked before the wait."""
        await self._until_slot_after(self._sim.confirm_delay_ms + self._rng.randint(0, self._sim.confirm_jitter_ms))
        if not built_now:
            landed = await self._store.find_landing(tx.signature)
            if landed is not None:
                return landed
        return await self._store.land(tx)
