"""Venues as the engine sees them: the simulated market behind latency, timeouts and failures."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal

import base58

from shared.messages import QuoteCurve, VenueFailure, VenueQuote
from shared.settings import SimulationSettings
from shared.venues.market import METEORA, RAYDIUM, VENUES, Market
from shared.venues.meteora import DlmmPool
from shared.venues.swap import InsufficientLiquidity, SwapOutcome

Sleep = Callable[[float], Awaitable[None]]
_IMPACT_QUANTUM = Decimal("1e-12")


class VenueUnavailable(Exception):
    """The venue did not answer (simulated outage or timeout)."""


def pool_address(venue: str, mint_a: str, mint_b: str) -> str:
    """A stable, realistic-looking pool account address for (venue, pair)."""
    return _pool_address(venue, *sorted((mint_a, mint_b)))


@functools.lru_cache(maxsize=4096)  # pairs are few; launched tokens add some
def _pool_address(venue: str, mint_a: str, mint_b: str) -> str:
    pair = f"{mint_a}/{mint_b}"
    return base58.b58encode(hashlib.sha256(f"{venue}:{pair}".encode()).digest()).decode()


class SimulatedVenues:
    def __init__(self, market: Market, sim: SimulationSettings, now_s: Callable[[], float], sleep: Sleep) -> None:
        self.market = market
        self._sim = sim
        self._now_s = now_s
        self._sleep = sleep
        self._rng = random.Random(sim.seed + 1)
        self._latency_ms = {RAYDIUM: sim.quote_latency_ms_raydium, METEORA: sim.quote_latency_ms_meteora}

    def supports(self, mint_in: str, mint_out: str) -> bool:
        return self.market.has_pair(mint_in, mint_out)

    def outcome(self, venue: str, mint_in: str, mint_out: str, amount_in: int, apply: bool = False) -> SwapOutcome:
        """The pool math for this swap now; `apply` moves the pool (the chain does that)."""
        pool = self.market.pool(venue, mint_in, mint_out)
        if pool is None:
            raise InsufficientLiquidity(f"{venue} has no pool for this pair")
        if isinstance(pool, DlmmPool):
            now = self._now_s()
            return pool.swap(mint_in, amount_in, now) if apply else pool.quote(mint_in, amount_in, now)
        return pool.swap(mint_in, amount_in) if apply else pool.quote(mint_in, amount_in)

    async def quote(self, venue: str, mint_in: str, mint_out: str, amount_in: int) -> VenueQuote:
        latency = self._sim.delay_ms(self._latency_ms[venue] + self._rng.randint(0, self._sim.quote_jitter_ms))
        if latency:
            await self._sleep(latency / 1000)
        return self._quote_now(venue, mint_in, mint_out, amount_in)

    def _quote_now(self, venue: str, mint_in: str, mint_out: str, amount_in: int) -> VenueQuote:
        if self._rng.randrange(1000) < self._sim.quote_failure_permille:
            raise VenueUnavailable(f"{venue} quote service unavailable")
        outcome = self.outcome(venue, mint_in, mint_out, amount_in)
        pool = self.market.pool(venue, mint_in, mint_out)
        depth_y = pool.depth_y()
        liquidity = depth_y if mint_out == pool.mint_y else int(depth_y / pool.price())
        return VenueQuote(
            venue=venue,
            pool=pool_address(venue, mint_in, mint_out),
            amount_in=amount_in,
            amount_out=outcome.amount_out,
            fee=outcome.fee,
            price_impact=format(outcome.price_impact.quantize(_IMPACT_QUANTUM), "f"),
            liquidity=liquidity,
            latency_ms=self._latency_ms[venue],
        )

    def curve(self, venue: str, mint_in: str, mint_out: str, amount_in: int, steps: int) -> QuoteCurve:
        """Outputs for every 1/steps of `amount_in`, computed on the venue's current pool state
        (as an aggregator simulates a pool locally from its accounts). A size the pool cannot
        fill counts as 0, so it is never chosen."""
        outputs = [0]
        for i in range(1, steps + 1):
            try:
                outputs.append(self.outcome(venue, mint_in, mint_out, amount_in * i // steps).amount_out)
            except InsufficientLiquidity:
                outputs.append(0)
        return QuoteCurve(venue, pool_address(venue, mint_in, mint_out), steps, outputs)

    async def quote_all(
        self, mint_in: str, mint_out: str, amount_in: int, venues: list[str] | None = None
    ) -> tuple[list[VenueQuote], list[VenueFailure]]:
        """Every venue (or those named) at once, each bounded by the quote timeout."""
        timeout = self._sim.quote_timeout_ms / 1000

        async def one(venue: str) -> VenueQuote | VenueFailure:
            try:
                async with asyncio.timeout(timeout):  # not wait_for: on Python 3.11 that is one more task
                    return await self.quote(venue, mint_in, mint_out, amount_in)
            except TimeoutError:
                return VenueFailure(venue, f"no quote within {self._sim.quote_timeout_ms} ms")
            except (VenueUnavailable, InsufficientLiquidity) as exc:
                return _failure(venue, exc)

        def now(venue: str) -> VenueQuote | VenueFailure:
            try:
                return self._quote_now(venue, mint_in, mint_out, amount_in)
            except (VenueUnavailable, InsufficientLiquidity) as exc:
                return _failure(venue, exc)

        if self._sim.zero_delays:  # nothing to wait for: no tasks, no timers
            answers = [now(v) for v in venues or VENUES]
        else:
            answers = await asyncio.gather(*(one(v) for v in venues or VENUES))
        quotes = [a for a in answers if isinstance(a, VenueQuote)]
        failures = [a for a in answers if isinstance(a, VenueFailure)]
        return quotes, failures


def _failure(venue: str, exc: VenueUnavailable | InsufficientLiquidity) -> VenueFailure:
    """An outage may pass (retry); a pool that cannot fill this size will not."""
    return VenueFailure(venue, str(exc), retryable=isinstance(exc, VenueUnavailable))
