"""The simulated market: one Raydium and one Meteora pool per pair, and their price drift.

A reference price per pair follows a random walk; each venue sits at its own offset
from it (a bounded walk of a few percent), so venues disagree the way real ones do.
Everything is integers and Decimals driven by a `random.Random` the caller owns (the process
that drives the market): the same seed replays the same market. Pure code: the shared store
(shared/db/market_store.py) loads and saves it.
"""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass
from enum import StrEnum
from decimal import Decimal

import msgspec

from solders.pubkey import Pubkey
from shared.domain.messages import QuoteCurve, VenueQuote
from shared.domain.tokens import BONK, JUP, SOL, USDC, USDT, Token
from shared.domain.meteora import DlmmPool
from shared.domain.raydium import ConstantProductPool
from shared.domain.swap import DustAmount, InsufficientLiquidity, SwapOutcome

class Venue(StrEnum):
    RAYDIUM = "raydium"
    METEORA = "meteora"


RAYDIUM, METEORA = Venue.RAYDIUM, Venue.METEORA
VENUES = tuple(Venue)

Pool = ConstantProductPool | DlmmPool
LAUNCH_BIN_STEP = 100
LAUNCH_BINS_EACH_SIDE = 30
_IMPACT_QUANTUM = Decimal("1e-12")


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


def pool_address(venue: str, mint_a: str, mint_b: str) -> str:
    """A stable, realistic-looking pool account address for (venue, pair)."""
    return _pool_address(venue, *sorted((mint_a, mint_b)))


@functools.lru_cache(maxsize=4096)  # pairs are few; launched tokens add some
def _pool_address(venue: str, mint_a: str, mint_b: str) -> str:
    return str(Pubkey(hashlib.sha256(f"{venue}:{mint_a}/{mint_b}".encode()).digest()))


def _fills(pool: Pool, mint_in: str, amount_in: int, now_s: float) -> bool:
    """Whether the pool can take the whole amount (its largest fill is costly to find: only a pool
    that cannot is asked for it)."""
    try:
        pool.quote(mint_in, amount_in, now_s)
    except DustAmount:  # fills nowhere, but no pool is short of depth for it
        return True
    except InsufficientLiquidity:
        return False
    return True


def _depth_in(pool: Pool, mint_in: str) -> Decimal:
    """The pool's depth in the output token, valued in the input token at spot."""
    price = pool.price()  # y per x
    if mint_in == pool.mint_x:
        return pool.reserve_of(pool.mint_y) / price
    return pool.reserve_of(pool.mint_x) * price


class PairState(msgspec.Struct, array_like=True):
    """A pair's price state, shared by every process: its tokens, the reference price (UI units,
    quote per base) and each venue's offset from it in basis points."""

    base: Token
    quote: Token
    reference: Decimal
    offsets_bps: dict[str, int]

    @property
    def key(self) -> str:
        return pair_key(self.base.mint, self.quote.mint)

    def unit_price(self, ui_price: Decimal) -> Decimal:
        """UI price as quote base units per base base unit (SOL/USDC 150 → 0.15)."""
        return ui_price.scaleb(self.quote.decimals - self.base.decimals)

    def venue_price(self, venue: str) -> Decimal:
        """Where `venue`'s pool should sit: the reference moved by the venue's offset (base units)."""
        return self.unit_price(self.reference * (1 + Decimal(self.offsets_bps.get(venue, 0)) / 10_000))


def pair_key(mint_a: str, mint_b: str) -> str:
    """The same key for a pair whichever way round its mints come."""
    return f"{mint_a}|{mint_b}" if mint_a < mint_b else f"{mint_b}|{mint_a}"


@dataclass(frozen=True, slots=True)
class Drift:
    """How prices wander each tick: the reference by up to `step_bps`, each venue's offset by up
    to `offset_step_bps`, offsets bounded by `max_offset_bps`."""

    step_bps: int = 5
    offset_step_bps: int = 15
    max_offset_bps: int = 250


class Market:
    """The simulated world, or the part of it one operation needs: pair states and pools keyed by
    (venue, pair key), with the pure operations on them. Processes load it from the shared store,
    read it, and change it only inside the store's atomic operations."""

    def __init__(self, pairs: dict[str, PairState] | None = None,
                 pools: dict[tuple[str, str], Pool] | None = None) -> None:
        self.pairs: dict[str, PairState] = pairs or {}
        self.pools: dict[tuple[str, str], Pool] = pools or {}

    @classmethod
    def initial(cls, specs: tuple[PairSpec, ...] = DEFAULT_PAIRS, max_offset_bps: int = 250
                ) -> Market:
        """The world at its start: every pair at its starting price, the venues ~3 % apart (one
        above the reference, one below, within the allowed offset)."""
        market = cls()
        start = min(150, max_offset_bps)
        for spec in specs:
            state = PairState(spec.base, spec.quote, spec.price, {RAYDIUM: start, METEORA: -start})
            market.pairs[state.key] = state
            reserve_base = spec.raydium_base_reserve * 10**spec.base.decimals
            market.pools[(RAYDIUM, state.key)] = ConstantProductPool(
                spec.base.mint, spec.quote.mint, reserve_base, int(reserve_base * state.venue_price(RAYDIUM)))
            market.pools[(METEORA, state.key)] = DlmmPool.with_uniform_liquidity(
                spec.base.mint, spec.quote.mint, spec.meteora_bin_step, state.venue_price(METEORA),
                spec.meteora_quote_per_bin * 10**spec.quote.decimals, spec.meteora_bins_each_side)
        return market

    def pool(self, venue: str, mint_a: str, mint_b: str) -> Pool | None:
        return self.pools.get((venue, pair_key(mint_a, mint_b)))

    def venues_of(self, mint_a: str, mint_b: str) -> list[str]:
        """The venues with a pool for this pair, in VENUES order."""
        key = pair_key(mint_a, mint_b)
        return [venue for venue in VENUES if (venue, key) in self.pools]

    def has_pair(self, mint_a: str, mint_b: str) -> bool:
        return pair_key(mint_a, mint_b) in self.pairs

    def pair(self, mint_a: str, mint_b: str) -> PairState | None:
        return self.pairs.get(pair_key(mint_a, mint_b))

    def tokens(self) -> dict[str, Token]:
        """Every token some pair trades, by mint."""
        return {token.mint: token for state in self.pairs.values() for token in (state.base, state.quote)}

    def outcome(self, venue: str, mint_in: str, mint_out: str, amount_in: int, now_s: float,
                apply: bool = False) -> SwapOutcome:
        """The pool math for this swap on this state; `apply` moves the pool."""
        pool = self.pool(venue, mint_in, mint_out)
        if pool is None:
            raise InsufficientLiquidity(f"{venue} has no pool for this pair")
        return pool.swap(mint_in, amount_in, now_s) if apply else pool.quote(mint_in, amount_in, now_s)

    def venue_quote(self, venue: str, mint_in: str, mint_out: str, amount_in: int, now_s: float,
                    latency_ms: int) -> VenueQuote:
        """What `venue` quotes for this swap on this state (InsufficientLiquidity if it cannot)."""
        outcome = self.outcome(venue, mint_in, mint_out, amount_in, now_s)
        return VenueQuote(
            venue=venue,
            pool=pool_address(venue, mint_in, mint_out),
            amount_in=amount_in,
            amount_out=outcome.amount_out,
            fee=outcome.fee,
            price_impact=format(outcome.price_impact.quantize(_IMPACT_QUANTUM), "f"),
            liquidity=self.pool(venue, mint_in, mint_out).reserve_of(mint_out),
            latency_ms=latency_ms,
        )

    def split_curves(self, mint_in: str, mint_out: str, amount_in: int, now_s: float, steps: int,
                     min_share_bps: int, fills_whole: dict[str, bool] | None = None) -> list[QuoteCurve]:
        """The two venues' outputs at sizes that pair up into splits of the order, on this state
        (as an aggregator simulates pools locally from their accounts): the first venue at every
        i/steps of the order, the second at the rest; and for a pool that cannot take the whole
        order, its largest fill with the rest on the other venue, so a venue short of depth still
        takes the part it can. Empty when fewer than two venues trade the pair, or when both could
        fill the order alone and it is under `min_share_bps` of the shallower pool's depth (too
        small for a split to pay). The sizes depend only on the order's size and the pools, so a
        larger order never has fewer or worse choices. `fills_whole`: which venues can take the
        whole order, if the caller already knows (from its quotes)."""
        venues = self.venues_of(mint_in, mint_out)
        if len(venues) != 2:
            return []
        pools = [self.pool(venue, mint_in, mint_out) for venue in venues]
        known = fills_whole or {}
        short = [not known.get(venue, _fills(pool, mint_in, amount_in, now_s)) for venue, pool in zip(venues, pools)]
        if not any(short):
            depth_in = min(_depth_in(pool, mint_in) for pool in pools)
            if amount_in * 10_000 < min_share_bps * depth_in:
                return []
        caps = [pool.max_amount_in(mint_in, now_s) if is_short else None for pool, is_short in zip(pools, short)]
        firsts = {amount_in * i // steps for i in range(1, steps)}
        if short[0]:
            firsts.add(caps[0])
        if short[1]:
            firsts.add(amount_in - caps[1])
        sizes = sorted(a for a in firsts if 0 < a < amount_in)
        return [
            self._curve(venues[0], mint_in, mint_out, sizes, caps[0], now_s),
            self._curve(venues[1], mint_in, mint_out, [amount_in - a for a in sizes], caps[1], now_s),
        ]

    def _curve(self, venue: str, mint_in: str, mint_out: str, sizes: list[int], cap: int | None,
               now_s: float) -> QuoteCurve:
        outputs = []
        for size in sizes:
            try:
                outputs.append(self.outcome(venue, mint_in, mint_out, size, now_s).amount_out)
            except InsufficientLiquidity:
                outputs.append(0)
        return QuoteCurve(venue, pool_address(venue, mint_in, mint_out), sizes, outputs, cap)

    def spot_price(self, venue: str, base_mint: str, quote_mint: str) -> Decimal | None:
        """A venue's spot price in UI terms (quote per base), before fees and impact."""
        pool, state = self.pool(venue, base_mint, quote_mint), self.pair(base_mint, quote_mint)
        if pool is None or state is None:
            return None
        return pool.price().scaleb(state.base.decimals - state.quote.decimals)

    def tick(self, rng: random.Random, drift: Drift = Drift()) -> None:
        """One drift step on every pair: the reference walks, venues walk around it. Pairs go in key
        order, so the same seed moves a world the same way however it was loaded."""
        for key, state in sorted(self.pairs.items()):
            step = rng.randint(-drift.step_bps, drift.step_bps)
            state.reference = state.reference * (1 + Decimal(step) / 10_000)
            for venue in VENUES:
                offset = state.offsets_bps.get(venue, 0) + rng.randint(-drift.offset_step_bps, drift.offset_step_bps)
                state.offsets_bps[venue] = max(-drift.max_offset_bps, min(drift.max_offset_bps, offset))
                pool = self.pools.get((venue, key))
                if pool is not None:
                    pool.set_price(state.venue_price(venue))

    def set_price(self, base_mint: str, quote_mint: str, price: Decimal, venue: str | None = None) -> None:
        """Move a pair to `price` (UI, quote per base) on one venue or all, as a scripted market move."""
        key = pair_key(base_mint, quote_mint)
        state = self.pairs[key]
        for name in VENUES if venue is None else (venue,):
            pool = self.pools.get((name, key))
            if pool is None:
                continue
            state.offsets_bps[name] = 0
            state.reference = price
            pool.set_price(state.unit_price(price))

    def launch(self, venue: str, base: Token, quote: Token, base_amount: int, quote_amount: int) -> Pool:
        """A new pool for a pair nobody traded on this venue before, seeded with these reserves
        (base units)."""
        key = pair_key(base.mint, quote.mint)
        if (venue, key) in self.pools:
            raise ValueError(f"{venue} already has a pool for this pair")
        ui_price = quote.to_ui(quote_amount) / base.to_ui(base_amount)
        state = self.pairs.get(key) or PairState(base, quote, ui_price, {RAYDIUM: 0, METEORA: 0})
        if venue == RAYDIUM:
            pool: Pool = ConstantProductPool(base.mint, quote.mint, base_amount, quote_amount)
        else:
            per_bin = quote_amount // (LAUNCH_BINS_EACH_SIDE + 1)
            pool = DlmmPool.with_uniform_liquidity(
                base.mint, quote.mint, LAUNCH_BIN_STEP, state.unit_price(ui_price), per_bin, LAUNCH_BINS_EACH_SIDE
            )
        self.pairs[key] = state
        self.pools[(venue, key)] = pool
        return pool

    def plan_random_launch(self, rng: random.Random, quote: Token, awaited_mints: list[str]) -> LaunchPlan | None:
        """A random launch against `quote`: half the time a token some sniper waits for (if any is
        still unlisted), otherwise a brand-new mint; random venue and depth."""
        unlisted = sorted(m for m in awaited_mints if not self.has_pair(m, quote.mint))
        if unlisted and rng.random() < 0.5:
            mint = rng.choice(unlisted)
        else:
            mint = str(Pubkey(rng.randbytes(32)))
        if self.has_pair(mint, quote.mint):
            return None
        base = Token(f"NEW{mint[:4].upper()}", mint, 6)
        venue = rng.choice(VENUES)
        quote_whole = rng.randint(20, 2_000)
        base_whole = quote_whole * rng.randint(1_000, 1_000_000)
        return LaunchPlan(venue, base, base_whole * 10**base.decimals, quote_whole * 10**quote.decimals)
