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
from shared.venues.market import METEORA, RAYDIUM, VENUES, Market, Pool
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
        now = self._now_s()
        return pool.swap(mint_in, amount_in, now) if apply else pool.quote(mint_in, amount_in, now)

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
        return VenueQuote(
            venue=venue,
            pool=pool_address(venue, mint_in, mint_out),
            amount_in=amount_in,
            amount_out=outcome.amount_out,
            fee=outcome.fee,
            price_impact=format(outcome.price_impact.quantize(_IMPACT_QUANTUM), "f"),
            liquidity=pool.reserve_of(mint_out),
            latency_ms=self._latency_ms[venue],
        )

    def split_curves(self, mint_in: str, mint_out: str, amount_in: int, steps: int, min_share_bps: int
                     ) -> list[QuoteCurve]:
        """The two venues' outputs at sizes that pair up into splits of the order, computed on the
        pools' current state (as an aggregator simulates pools locally from their accounts): the
        first venue at every i/steps of the order, the second at the rest; and for a pool that
        cannot take the whole order, its largest fill with the rest on the other venue, so a venue
        short of depth still takes the part it can. Empty when fewer than two venues trade the
        pair, or when both could fill the order alone and it is under `min_share_bps` of the
        shallower pool's depth (too small for a split to pay). The sizes depend only on the
        order's size and the pools, so a larger order never has fewer or worse choices."""
        pools = [(venue, pool) for venue in VENUES if (pool := self.market.pool(venue, mint_in, mint_out))]
        if len(pools) != 2:
            return []
        now = self._now_s()
        caps = [pool.max_amount_in(mint_in, now) for _, pool in pools]
        short = [cap is not None and cap < amount_in for cap in caps]
        if not any(short):
            depth_in = min(_depth_in(pool, mint_in) for _, pool in pools)
            if amount_in * 10_000 < min_share_bps * depth_in:
                return []
        firsts = {amount_in * i // steps for i in range(1, steps)}
        if short[0]:
            firsts.add(caps[0])
        if short[1]:
            firsts.add(amount_in - caps[1])
        sizes = sorted(a for a in firsts if 0 < a < amount_in)
        return [
            self._curve(pools[0][0], mint_in, mint_out, sizes, caps[0]),
            self._curve(pools[1][0], mint_in, mint_out, [amount_in - a for a in sizes], caps[1]),
        ]

    def _curve(self, venue: str, mint_in: str, mint_out: str, sizes: list[int], cap: int | None) -> QuoteCurve:
        outputs = []
        for size in sizes:
            try:
                outputs.append(self.outcome(venue, mint_in, mint_out, size).amount_out)
            except InsufficientLiquidity:
                outputs.append(0)
        return QuoteCurve(venue, pool_address(venue, mint_in, mint_out), sizes, outputs, cap)

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


def _depth_in(pool: Pool, mint_in: str) -> Decimal:
    """The pool's depth in the output token, valued in the input token at spot."""
    price = pool.price()  # y per x
    if mint_in == pool.mint_x:
        return pool.reserve_of(pool.mint_y) / price
    return pool.reserve_of(pool.mint_x) * price


def _failure(venue: str, exc: VenueUnavailable | InsufficientLiquidity) -> VenueFailure:
    """An outage may pass (retry); a pool that cannot fill this size will not."""
    return VenueFailure(venue, str(exc), retryable=isinstance(exc, VenueUnavailable))
