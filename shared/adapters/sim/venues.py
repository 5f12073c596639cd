"""The simulated venues as the functions meet them: the shared market (a store every process
reads and changes atomically) behind quote latency, timeouts and outages."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from shared.domain.messages import QuoteCurve, VenueFailure, VenueQuote
from shared.settings import SimulationSettings
from shared.domain.market import METEORA, RAYDIUM, Market, pair_key, pool_address
from shared.ports import MarketStore, PairListing
from shared.domain.swap import InsufficientLiquidity, SwapOutcome

Sleep = Callable[[float], Awaitable[None]]


class VenueUnavailable(Exception):
    """The venue did not answer (simulated outage or timeout)."""


class Pricing(NamedTuple):
    quotes: list[VenueQuote]
    failures: list[VenueFailure]
    curves: list[QuoteCurve]


class SimulatedVenues:
    """Raydium and Meteora quote services over the shared market: latency, timeouts, outages."""

    def __init__(self, store: MarketStore, sim: SimulationSettings, now_s: Callable[[], float], sleep: Sleep) -> None:
        self.store = store
        self._sim = sim
        self._now_s = now_s
        self._sleep = sleep
        self._rng = random.Random(sim.seed + 1)
        self._latency_ms = {RAYDIUM: sim.quote_latency_ms_raydium, METEORA: sim.quote_latency_ms_meteora}
        self._listed: set[str] = set()
        """Pairs known to trade (a pair never stops trading, so only a miss asks the store)."""

    async def supports(self, mint_a: str, mint_b: str) -> bool:
        key = pair_key(mint_a, mint_b)
        if key in self._listed:
            return True
        if (await self.store.load(mint_a, mint_b)).has_pair(mint_a, mint_b):
            self._listed.add(key)
            return True
        return False

    async def listing(self, mint_a: str, mint_b: str) -> PairListing | None:
        market = await self.store.load(mint_a, mint_b)
        state = market.pair(mint_a, mint_b)
        if state is None:
            return None
        return PairListing(state.base.mint, state.quote.mint,
                           {venue: pool_address(venue, mint_a, mint_b) for venue in market.venues_of(mint_a, mint_b)})

    async def price(self, mint_in: str, mint_out: str, amount_in: int, venues: list[str] | None,
                    split_steps: int, split_min_share_bps: int) -> Pricing:
        """Every venue's quote for the whole size (each after its latency, bounded by the quote
        timeout) and, when a split may pay, the split curves — all on one snapshot of the pair.
        No curves when one venue is named (a sniper's launch) or one did not answer."""
        market = await self.store.load(mint_in, mint_out)
        now = self._now_s()
        names = venues or market.venues_of(mint_in, mint_out) or [RAYDIUM, METEORA]
        answers = await self._timed(market, names, mint_in, mint_out, amount_in, now)
        quotes = [a for a in answers if isinstance(a, VenueQuote)]
        failures = [a for a in answers if isinstance(a, VenueFailure)]
        if (venues and len(venues) < 2) or any(failure.retryable for failure in failures):
            return Pricing(quotes, failures, [])
        fills_whole = {quote.venue: True for quote in quotes}  # a failed one is checked there (depth, or dust?)
        return Pricing(quotes, failures, market.split_curves(mint_in, mint_out, amount_in, now, split_steps,
                                                             split_min_share_bps, fills_whole))

    async def outcomes(self, mint_in: str, mint_out: str, legs: list[tuple[str, int]]) -> list[SwapOutcome]:
        """The pool math for each (venue, amount) now, on one snapshot (InsufficientLiquidity if one
        cannot fill)."""
        market, now = await self.store.load(mint_in, mint_out), self._now_s()
        return [market.outcome(venue, mint_in, mint_out, amount, now) for venue, amount in legs]

    async def _timed(self, market: Market, venues: list[str], mint_in: str, mint_out: str, amount_in: int,
                     now: float) -> list[VenueQuote | VenueFailure]:
        """Every venue asked at once, each answering after its latency (one slower than the quote
        timeout: a failure at the timeout). The answers come from the snapshot taken when asked,
        so they are made at once and handed over when the slowest is due: one timer per order,
        not a task and a timer per venue."""
        timeout_ms, answers, wait_ms = self._sim.quote_timeout_ms, [], 0
        for venue in venues:
            latency = 0 if self._sim.zero_delays else (
                self._latency_ms[venue] + self._rng.randint(0, self._sim.quote_jitter_ms))
            if latency > timeout_ms:
                answers.append(VenueFailure(venue, f"no quote within {timeout_ms} ms"))
                latency = timeout_ms
            else:
                answers.append(self._answer(market, venue, mint_in, mint_out, amount_in, now))
            wait_ms = max(wait_ms, latency)
        if wait_ms:
            await self._sleep(wait_ms / 1000)
        return answers

    def _answer(self, market: Market, venue: str, mint_in: str, mint_out: str, amount_in: int,
                now: float) -> VenueQuote | VenueFailure:
        try:
            if self._rng.randrange(1000) < self._sim.quote_failure_permille:
                raise VenueUnavailable(f"{venue} quote service unavailable")
            return market.venue_quote(venue, mint_in, mint_out, amount_in, now, self._latency_ms[venue])
        except (VenueUnavailable, InsufficientLiquidity) as exc:
            # An outage may pass (retry); a pool that cannot fill this size will not.
            return VenueFailure(venue, str(exc), retryable=isinstance(exc, VenueUnavailable))
