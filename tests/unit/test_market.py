"""The simulated market (pure: shared/venues/market.py): its start, seeded drift, launches, how
its state travels between processes, and UI prices of fills."""

from __future__ import annotations

import random
from decimal import Decimal

import msgspec
import pytest

from shared.domain.prices import output_per_input, price_of_base
from shared.domain.tokens import BONK, SOL, USDC, USDT
from shared.domain.market import DEFAULT_PAIRS, METEORA, RAYDIUM, VENUES, Drift, Market, PairState, Pool, pair_key
from shared.domain.meteora import DlmmPool
from shared.domain.raydium import ConstantProductPool


def snapshot(market: Market) -> dict:
    """Every pool's spot price and every pair's drift state."""
    prices = {key: pool.price() for key, pool in market.pools.items()}
    drift = {key: (state.reference, dict(state.offsets_bps)) for key, state in market.pairs.items()}
    return {"prices": prices, "drift": drift}


def run(market: Market, ticks: int, seed: int = 7, drift: Drift = Drift()) -> Market:
    rng = random.Random(seed)
    for _ in range(ticks):
        market.tick(rng, drift)
    return market


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_replays_the_same_prices_after_50_ticks() -> None:
    assert snapshot(run(Market.initial(), 50)) == snapshot(run(Market.initial(), 50))


def test_different_seeds_give_different_prices_after_50_ticks() -> None:
    seven, eight = run(Market.initial(), 50, seed=7), run(Market.initial(), 50, seed=8)
    assert snapshot(seven)["prices"] != snapshot(eight)["prices"]


def test_ticks_move_prices() -> None:
    market = Market.initial()
    before = snapshot(market)["prices"]
    assert snapshot(run(market, 5))["prices"] != before


# --- venue offsets ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_venue_offsets_stay_within_max_offset(seed: int) -> None:
    # a large offset step makes the walk hit the bounds often
    market, rng, drift = Market.initial(), random.Random(seed), Drift(offset_step_bps=100, max_offset_bps=250)
    seen = set()
    for _ in range(50):
        market.tick(rng, drift)
        for state in market.pairs.values():
            seen.update(state.offsets_bps.values())
    assert min(seen) >= -250 and max(seen) <= 250
    assert {-250, 250} <= seen  # the bounds were really reached, so clamping was exercised


def test_pool_prices_sit_within_max_offset_of_the_reference() -> None:
    market = run(Market.initial(), 50, seed=5, drift=Drift(offset_step_bps=100, max_offset_bps=250))
    bound = Decimal("0.0250")
    for spec in DEFAULT_PAIRS:
        key = pair_key(spec.base.mint, spec.quote.mint)
        reference = market.pairs[key].unit_price(market.pairs[key].reference)
        raydium = market.pools[(RAYDIUM, key)]
        meteora = market.pools[(METEORA, key)]
        assert isinstance(raydium, ConstantProductPool) and isinstance(meteora, DlmmPool)
        # Raydium lands on the target up to integer rounding of the reserves
        assert abs(raydium.price() / reference - 1) <= bound + Decimal("1e-9"), spec
        # Meteora lands on the nearest bin: up to half a bin step further
        half_bin = (1 + Decimal(meteora.bin_step) / 10_000).sqrt()
        assert (1 - bound) / half_bin <= meteora.price() / reference <= (1 + bound) * half_bin, spec


def test_initial_offsets_respect_a_small_max_offset() -> None:
    market = Market.initial(max_offset_bps=100)
    for state in market.pairs.values():
        assert all(abs(offset) <= 100 for offset in state.offsets_bps.values())


# --- initial state ----------------------------------------------------------------------------


def test_initial_sol_usdc_venues_differ_by_two_to_five_percent() -> None:
    # raydium at 150 · 1.015 = 152.25, meteora near 150 · 0.985 = 147.75: 152.25 / 147.75 − 1 ≈ 3.05 %
    market = Market.initial()
    raydium = market.pool(RAYDIUM, SOL.mint, USDC.mint)
    meteora = market.pool(METEORA, SOL.mint, USDC.mint)
    gap = raydium.price() / meteora.price() - 1
    assert Decimal("0.02") <= gap <= Decimal("0.05")


def test_initial_raydium_sol_usdc_reserves() -> None:
    # 10_000 SOL = 1e13 lamports; 1e13 · 0.15225 = 1_522_500_000_000 USDC units
    raydium = Market.initial().pool(RAYDIUM, SOL.mint, USDC.mint)
    assert (raydium.reserve_x, raydium.reserve_y) == (10**13, 1_522_500_000_000)


def test_every_pair_has_a_pool_on_every_venue() -> None:
    market = Market.initial()
    for spec in DEFAULT_PAIRS:
        for venue in VENUES:
            assert market.pool(venue, spec.base.mint, spec.quote.mint) is not None, (venue, spec.base.symbol)


def test_pool_lookup_works_in_both_orders() -> None:
    market = Market.initial()
    assert market.pool(RAYDIUM, USDC.mint, SOL.mint) is market.pool(RAYDIUM, SOL.mint, USDC.mint)


def test_has_pair_works_both_orders() -> None:
    market = Market.initial()
    assert market.has_pair(SOL.mint, USDC.mint) and market.has_pair(USDC.mint, SOL.mint)


def test_has_pair_is_false_for_an_unlisted_pair() -> None:
    assert not Market.initial().has_pair(BONK.mint, USDT.mint)


def test_unit_price_converts_ui_price_to_base_units() -> None:
    # 150 USDC/SOL · 10^(6 − 9) = 0.15 USDC units per lamport
    assert DEFAULT_PAIRS[0].unit_price(Decimal(150)) == Decimal("0.15")


# --- prices.price_of_base -----------------------------------------------------------------


def test_price_of_a_sell_is_quote_received_per_base_sold() -> None:
    # 224.403923 USDC / 1.5 SOL = 149.6026153333… (18 significant digits)
    assert price_of_base("sell", SOL, USDC, 1_500_000_000, 224_403_923) == Decimal("149.602615333333333")


def test_price_of_a_round_sell() -> None:
    # 225 USDC / 1.5 SOL = 150
    assert price_of_base("sell", SOL, USDC, 1_500_000_000, 225_000_000) == Decimal(150)


def test_price_of_a_buy_is_quote_paid_per_base_received() -> None:
    # paid 300 USDC, got 2 SOL: 300 / 2 = 150
    assert price_of_base("buy", SOL, USDC, 300_000_000, 2_000_000_000) == Decimal(150)


def test_price_of_a_buy_rounds_to_18_digits() -> None:
    # paid 100 USDC, got 0.3 SOL: 100 / 0.3 = 333.333333333333333 (18 significant digits)
    assert price_of_base("buy", SOL, USDC, 100_000_000, 300_000_000) == Decimal("333.333333333333333")


def test_output_per_input() -> None:
    # got 0.997400509 SOL for 150 USDC: 0.997400509 / 150 = 0.006649336726666… -> 18 digits, last rounded up
    assert output_per_input(USDC, SOL, 150_000_000, 997_400_509) == Decimal("0.00664933672666666667")


# --- random launches -------------------------------------------------------------------------

AWAITED = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


def test_random_launch_plans_are_seeded_and_open_a_new_pool():
    plans = [Market.initial().plan_random_launch(random.Random(3), SOL, []) for _ in range(2)]
    assert plans[0] == plans[1]
    plan = plans[0]
    assert plan.venue in VENUES and plan.base_amount > 0 and plan.quote_amount > 0
    market = Market.initial()
    market.launch(plan.venue, plan.base, SOL, plan.base_amount, plan.quote_amount)
    assert market.spot_price(plan.venue, plan.base.mint, SOL.mint) > 0


def test_random_launches_serve_awaited_tokens_and_never_relist_one():
    market, rng = Market.initial(), random.Random(1)
    plans = [market.plan_random_launch(rng, SOL, [AWAITED]) for _ in range(20)]
    assert any(p.base.mint == AWAITED for p in plans)
    assert any(p.base.mint != AWAITED for p in plans)
    first = next(p for p in plans if p.base.mint == AWAITED)
    market.launch(first.venue, first.base, SOL, first.base_amount, first.quote_amount)
    assert all(market.plan_random_launch(rng, SOL, [AWAITED]).base.mint != AWAITED for _ in range(20))


# --- the state every process shares ------------------------------------------------------------


def test_pools_and_pairs_survive_the_trip_through_storage_unchanged() -> None:
    """What the shared store writes (msgpack) and reads back is the same state, after swaps and drift."""
    market = run(Market.initial(), 3)
    market.outcome(METEORA, SOL.mint, USDC.mint, 2_000 * 10**9, now_s=5.0, apply=True)
    market.outcome(RAYDIUM, USDC.mint, SOL.mint, 50_000 * 10**6, now_s=5.0, apply=True)
    for pool in market.pools.values():
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(pool), type=Pool) == pool
    for state in market.pairs.values():
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=PairState) == state


def test_a_pair_key_is_the_same_whichever_way_round() -> None:
    assert pair_key(SOL.mint, USDC.mint) == pair_key(USDC.mint, SOL.mint)
    assert pair_key(SOL.mint, USDC.mint) != pair_key(SOL.mint, USDT.mint)
