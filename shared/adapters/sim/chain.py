"""The simulated chain as the functions meet it: build, send and confirm delays and dropped
transactions here; the landing itself (atomic, once per signature) is the shared market store's."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from shared.domain.chain import ChainUnavailable, Landing, Transaction
from shared.ports import MarketStore
from shared.settings import SimulationSettings

Sleep = Callable[[float], Awaitable[None]]


class SimulatedChain:
    """Build, send and confirm on the shared market: delays and dropped transactions here; the
    landing itself (atomic, once per signature) is the store's."""

    def __init__(self, store: MarketStore, sim: SimulationSettings, sleep: Sleep) -> None:
        self._store = store
        self._sim = sim
        self._sleep = sleep
        self._rng = random.Random(sim.seed + 2)

    async def _delay(self, ms: int) -> None:
        ms = self._sim.delay_ms(ms)
        if ms:
            await self._sleep(ms / 1000)

    async def build(self, tx: Transaction) -> None:
        await self._delay(self._sim.build_delay_ms)

    async def send(self, tx: Transaction) -> None:
        await self._delay(self._sim.submit_delay_ms)
        if self._rng.randrange(1000) < self._sim.chain_failure_permille:
            raise ChainUnavailable("blockhash not found; transaction was not processed")

    async def confirm(self, tx: Transaction, built_now: bool = False) -> Landing:
        """Wait for the transaction to land and return its result. The swap is priced and applied
        to the shared pool atomically, so transactions from every process see each other's effect
        in the order they land, as on a chain, and a signature lands at most once. `built_now`:
        the caller built it in this delivery, so no earlier one can have landed it and the ledger
        need not be asked before the wait."""
        await self._delay(self._sim.confirm_delay_ms + self._rng.randint(0, self._sim.confirm_jitter_ms))
        if not built_now:
            landed = await self._store.find_landing(tx.signature)
            if landed is not None:
                return landed
        return await self._store.land(tx)
