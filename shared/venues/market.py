"""The simulated market: one Raydium and one Meteora pool per pair, and their seeded price drift.

A reference price per pair follows a random walk; each venue sits at its own offset
from it (a bounded walk of a few percent), so venues disagree the way real ones do.
Everything is integers and Decimals driven by a seeded `random.Random`: the same seed
replays the same market.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

import base58

from shared.tokens import BONK, JUP, SOL, USDC, USDT, Token
from shared.venues.meteora import DlmmPool
from shared.venues.raydium import ConstantProductPool

RAYDIUM = "raydium"
METEORA = "meteora"
VENUES = (RAYDIUM, METEORA)

Pool = ConstantProductPool | DlmmPool
LAUNCH_BIN_STEP = 100
LAUNCH_BINS_EACH_SIDE = 30


@dataclass(frozen=True, slots=True)
class PairSpec:
    base: Token
    quote: Token
    price: Decimal
    """Starting price in UI units: quote tokens per base token."""
    raydium_base_reserve: int
    """Raydium pool depth, in whole base tokens."""
    meteora_bin_step: int
    meteora_quote_per_bin: int
    """Meteora liquidity per bin, in whole quote tokens."""
    meteora_bins_each_side: int = 69

    def unit_price(self, ui_price: Decimal) -> Decimal:
        """UI price as quote base units per base base unit (SOL/USDC 150 → 0.15)."""
        return ui_price.scaleb(self.quote.decimals - self.base.decimals)


DEFAULT_PAIRS: tuple[PairSpec, ...] = (
    PairSpec(SOL, USDC, Decimal(150), 10_000, 10, 20_000),
    PairSpec(SOL, USDT, Decimal("149.9"), 5_000, 10, 10_000),
    PairSpec(USDT, USDC, Decimal(1), 2_000_000, 1, 100_000),
    PairSpec(BONK, SOL, Decimal("0.00000015"), 200_000_000_000, 80, 200),
    PairSpec(JUP, USDC, Decimal("0.85"), 1_000_000, 25, 5_000),
)


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """A pool the simulated world is about to open: venue, token and initial reserves (base units)."""

    venue: str
    base: Token
    base_amount: int
    quote_amount: int


@dataclass(slots=True)
class DriftState:
    reference: Decimal
    offset_bps: dict[str, int]


class Market:
    """Pools keyed by (venue, unordered pair of mints), with seeded drift."""

    def __init__(
        self,
        pairs: tuple[PairSpec, ...] = DEFAULT_PAIRS,
        seed: int = 7,
        step_bps: int = 5,
        offset_step_bps: int = 15,
        max_offset_bps: int = 250,
    ) -> None:
        self._rng = random.Random(seed)
        self._step_bps, self._offset_step_bps, self._max_offset_bps = step_bps, offset_step_bps, max_offset_bps
        self.specs = {frozenset((p.base.mint, p.quote.mint)): p for p in pairs}
        self.pools: dict[tuple[str, frozenset[str]], Pool] = {}
        self.drift: dict[frozenset[str], DriftState] = {}
        for key, spec in self.specs.items():
            # Start the venues ~3 % apart (within the allowed offset): one above the reference, one below.
            start = min(150, max_offset_bps)
            state = DriftState(spec.price, {RAYDIUM: start, METEORA: -start})
            self.drift[key] = state
            self.pools[(RAYDIUM, key)] = self._raydium(spec, self._venue_price(spec, state, RAYDIUM))
            self.pools[(METEORA, key)] = self._meteora(spec, self._venue_price(spec, state, METEORA))

    @staticmethod
    def _raydium(spec: PairSpec, unit_price: Decimal) -> ConstantProductPool:
        reserve_base = spec.raydium_base_reserve * 10**spec.base.decimals
        reserve_quote = int(reserve_base * unit_price)
        return ConstantProductPool(spec.base.mint, spec.quote.mint, reserve_base, reserve_quote)

    @staticmethod
    def _meteora(spec: PairSpec, unit_price: Decimal) -> DlmmPool:
        per_bin = spec.meteora_quote_per_bin * 10**spec.quote.decimals
        return DlmmPool.with_uniform_liquidity(
            spec.base.mint, spec.quote.mint, spec.meteora_bin_step, unit_price, per_bin, spec.meteora_bins_each_side
        )

    @staticmethod
    def _venue_price(spec: PairSpec, state: DriftState, venue: str) -> Decimal:
        return spec.unit_price(state.reference * (1 + Decimal(state.offset_bps[venue]) / 10_000))

    def pool(self, venue: str, mint_a: str, mint_b: str) -> Pool | None:
        return self.pools.get((venue, frozenset((mint_a, mint_b))))

    def has_pair(self, mint_a: str, mint_b: str) -> bool:
        return frozenset((mint_a, mint_b)) in self.specs

    def tick(self) -> None:
        """One drift step on every pair: the reference walks, venues walk around it."""
        for key, spec in self.specs.items():
            state = self.drift[key]
            step = self._rng.randint(-self._step_bps, self._step_bps)
            state.reference = state.reference * (1 + Decimal(step) / 10_000)
            for venue in VENUES:
                offset = state.offset_bps[venue] + self._rng.randint(-self._offset_step_bps, self._offset_step_bps)
                state.offset_bps[venue] = max(-self._max_offset_bps, min(self._max_offset_bps, offset))
                pool = self.pools.get((venue, key))
                if pool is not None:
                    pool.set_price(self._venue_price(spec, state, venue))

    def set_price(self, base_mint: str, quote_mint: str, price: Decimal, venue: str | None = None) -> None:
        """Move a pair to `price` (UI, quote per base) on one venue or all, as a scripted market move."""
        key = frozenset((base_mint, quote_mint))
        spec, state = self.specs[key], self.drift[key]
        for name in VENUES if venue is None else (venue,):
            pool = self.pools.get((name, key))
            if pool is None:
                continue
            state.offset_bps[name] = 0
            state.reference = price
            pool.set_price(spec.unit_price(price))

    def spot_price(self, venue: str, base_mint: str, quote_mint: str) -> Decimal | None:
        """A venue's spot price in UI terms (quote per base), before fees and impact."""
        key = frozenset((base_mint, quote_mint))
        pool = self.pools.get((venue, key))
        if pool is None:
            return None
        spec = self.specs[key]
        return pool.price().scaleb(spec.base.decimals - spec.quote.decimals)

    def launch(self, venue: str, base: Token, quote: Token, base_amount: int, quote_amount: int) -> Pool:
        """A new pool for a pair nobody traded before, seeded with these reserves (base units)."""
        key = frozenset((base.mint, quote.mint))
        if (venue, key) in self.pools:
            raise ValueError(f"{venue} already has a pool for this pair")
        ui_price = quote.to_ui(quote_amount) / base.to_ui(base_amount)
        spec = self.specs.get(key) or PairSpec(base, quote, ui_price, 0, LAUNCH_BIN_STEP, 0, LAUNCH_BINS_EACH_SIDE)
        if venue == RAYDIUM:
            pool: Pool = ConstantProductPool(base.mint, quote.mint, base_amount, quote_amount)
        else:
            per_bin = quote_amount // (LAUNCH_BINS_EACH_SIDE + 1)
            pool = DlmmPool.with_uniform_liquidity(
                base.mint, quote.mint, LAUNCH_BIN_STEP, spec.unit_price(ui_price), per_bin, LAUNCH_BINS_EACH_SIDE
            )
        self.specs[key] = spec
        self.drift.setdefault(key, DriftState(ui_price, {RAYDIUM: 0, METEORA: 0}))
        self.pools[(venue, key)] = pool
        return pool

    def plan_random_launch(self, quote: Token, awaited_mints: list[str]) -> LaunchPlan | None:
        """A seeded random launch against `quote`: half the time a token some sniper waits for
        (if any is still unlisted), otherwise a brand-new mint; random venue and depth."""
        unlisted = sorted(m for m in awaited_mints if not self.has_pair(m, quote.mint))
        if unlisted and self._rng.random() < 0.5:
            mint = self._rng.choice(unlisted)
        else:
            mint = base58.b58encode(self._rng.randbytes(32)).decode()
        if self.has_pair(mint, quote.mint):
            return None
        base = Token(f"NEW{mint[:4].upper()}", mint, 6)
        venue = self._rng.choice(VENUES)
        quote_whole = self._rng.randint(20, 2_000)
        base_whole = quote_whole * self._rng.randint(1_000, 1_000_000)
        return LaunchPlan(venue, base, base_whole * 10**base.decimals, quote_whole * 10**quote.decimals)
