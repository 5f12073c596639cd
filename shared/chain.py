"""The simulated Solana chain: deterministic signatures, delays, slippage checks, land-once ledger."""

from __future__ import annotations

import hashlib
import random
from typing import Protocol

import msgspec

from shared import b58
from shared.settings import SimulationSettings
from shared.venues.simulated import Sleep, SimulatedVenues
from shared.venues.swap import InsufficientLiquidity

SLIPPAGE = "slippage"


class ChainUnavailable(Exception):
    """The transaction did not land (e.g. blockhash expired); sending it again is safe."""


class Transaction(msgspec.Struct, frozen=True, rename="camel"):
    signature: str
    order_id: str
    leg: int
    venue: str
    input_mint: str
    output_mint: str
    amount_in: int
    min_amount_out: int


class Landing(msgspec.Struct, frozen=True, rename="camel"):
    signature: str
    succeeded: bool
    amount_out: int
    slot: int
    error: str | None = None


class Ledger(Protocol):
    async def find(self, signature: str) -> Landing | None: ...

    async def land(self, tx: Transaction, landing: Landing) -> tuple[Landing, bool]:
        """Store `landing` unless the signature already landed: (what is stored, stored now?)."""
        ...


def transaction_signature(order_id: str, leg: int) -> str:
    """64 bytes in base58, derived from the order and leg as a signed transaction would be:
    the same swap always has the same signature, so it can only land once."""
    return b58.encode(hashlib.sha512(f"swap:{order_id}:{leg}".encode()).digest())


class SimulatedChain:
    def __init__(self, venues: SimulatedVenues, ledger: Ledger, sim: SimulationSettings, sleep: Sleep) -> None:
        self._venues = venues
        self._ledger = ledger
        self._sim = sim
        self._sleep = sleep
        self._rng = random.Random(sim.seed + 2)
        self._slot = 300_000_000
        self._landing: set[str] = set()

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
        """Wait for the transaction to land and return its result, landing it at most once.

        The swap is priced and applied to the pool in one step (nothing else runs in between),
        so concurrent transactions see each other's effect in the order they land, as on a
        chain. Another delivery of the same transaction in this process waits for the first.
        `built_now`: the caller built this transaction in this delivery, so no earlier one can
        have landed it and the ledger need not be asked first (the landing's unique signature
        still decides)."""
        await self._delay(self._sim.confirm_delay_ms + self._rng.randint(0, self._sim.confirm_jitter_ms))
        while True:
            if not built_now:
                landed = await self._ledger.find(tx.signature)
                if landed is not None:
                    return landed
            if tx.signature not in self._landing:
                break
            built_now = False  # another delivery in this process is landing it: wait for its result
            await self._sleep(0.005)
        self._landing.add(tx.signature)
        try:
            self._slot += 1
            stored, _ = await self._ledger.land(tx, self._execute(tx, self._slot))
            return stored
        finally:
            self._landing.discard(tx.signature)

    def _execute(self, tx: Transaction, slot: int) -> Landing:
        """The swap's outcome on the pool now; a successful swap moves the pool."""
        try:
            outcome = self._venues.outcome(tx.venue, tx.input_mint, tx.output_mint, tx.amount_in)
        except InsufficientLiquidity as exc:
            return Landing(tx.signature, False, 0, slot, f"insufficient liquidity: {exc}")
        if outcome.amount_out < tx.min_amount_out:
            return Landing(tx.signature, False, 0, slot, SLIPPAGE)
        self._venues.outcome(tx.venue, tx.input_mint, tx.output_mint, tx.amount_in, apply=True)
        return Landing(tx.signature, True, outcome.amount_out, slot)
