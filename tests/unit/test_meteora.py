"""Meteora DLMM bin math: prices, fees, bin walking, volatility accumulator, re-centring."""

from __future__ import annotations

import contextlib
import copy
from decimal import ROUND_FLOOR, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.meteora import DlmmPool
from shared.domain.swap import InsufficientLiquidity

Y_PER_BIN = 20_000 * 10**6  # 20,000 USDC-like units per bin
ACTIVE = -1898  # round(ln 0.15 / ln 1.001) = round(−1.8971200 / 0.00099950) = round(−1898.07) = −1898
BIG_SELL = 400 * 10**9  # ~60,000 Y: active bin (10,000 Y) + two full bins + part of a third


def make_pool() -> DlmmPool:
    return DlmmPool.with_uniform_liquidity(
        mint_x="X", mint_y="Y", bin_step=10, price=Decimal("0.15"), y_per_bin=Y_PER_BIN, bins_each_side=50
    )


def total(pool: DlmmPool) -> tuple[int, int]:
    return sum(b.amount_x for b in pool.bins.values()), sum(b.amount_y for b in pool.bins.values())


# --- prices and layout -------------------------------------------------------------------


def test_active_bin_is_the_one_nearest_the_price() -> None:
    assert make_pool().active_id == ACTIVE


@pytest.mark.parametrize(
    ("bin_id", "expected"),
    [(0, Decimal(1)), (1, Decimal("1.001")), (2, Decimal("1.002001")), (3, Decimal("1.003003001"))],
)
def test_bin_price_of_small_ids_is_exact(bin_id: int, expected: Decimal) -> None:
    # (1 + 10/10_000)^id: 1.001² = 1.002001, 1.001³ = 1.003003001
    assert make_pool().bin_price(bin_id) == expected


@pytest.mark.parametrize("bin_id", [-1, ACTIVE, -5000, 700])
def test_bin_price_is_1_001_to_the_power_id(bin_id: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 60
        expected = Decimal("1.001") ** bin_id
    assert abs(make_pool().bin_price(bin_id) / expected - 1) < Decimal("1e-45")


def test_spot_price_is_within_half_a_bin_of_the_requested_price() -> None:
    price = make_pool().price()
    assert Decimal("0.15") / Decimal("1.0005") < price < Decimal("0.15") * Decimal("1.0005")


def test_uniform_liquidity_shape() -> None:
    pool = make_pool()
    assert set(pool.bins) == set(range(ACTIVE - 50, ACTIVE + 51))
    assert all(pool.bins[i].amount_y == Y_PER_BIN and pool.bins[i].amount_x == 0 for i in range(ACTIVE - 50, ACTIVE))
    for i in range(ACTIVE + 1, ACTIVE + 51):
        assert pool.bins[i].amount_y == 0
        assert pool.bins[i].amount_x == int((Y_PER_BIN / pool.bin_price(i)).to_integral_value(ROUND_FLOOR))
    # the active bin holds half a bin of y and half a bin's worth of x
    assert pool.bins[ACTIVE].amount_y == Y_PER_BIN // 2


# --- fees --------------------------------------------------------------------------------


def test_base_fee_rate_is_bin_step_in_bps_as_percent() -> None:
    # base_factor · bin_step · 10 = 10_000 · 10 · 10 = 1_000_000 / 1e9 = 0.1 %
    assert make_pool().base_fee_rate() == 1_000_000


@pytest.mark.parametrize(
    ("accumulator", "rate"),
    [
        (0, 0),
        # (30_000 · 10)² = 9e10; · 40_000 = 3.6e15; / 1e11 = 36_000 exactly
        (30_000, 36_000),
        # (12_345 · 10)² = 15_239_902_500; · 40_000 = 609_596_100_000_000; / 1e11 = 6_095.961 -> ceil 6_096
        (12_345, 6_096),
        # (350_000 · 10)² = 1.225e13; · 40_000 = 4.9e17; / 1e11 = 4_900_000
        (350_000, 4_900_000),
    ],
)
def test_variable_fee_rate_formula(accumulator: int, rate: int) -> None:
    assert make_pool().variable_fee_rate(accumulator) == rate


# --- a small sell inside the active bin -----------------------------------------------------


def test_small_sell_fee_is_base_fee_rounded_up() -> None:
    # ceil(1_500_000_000 · 1_000_000 / 1e9) = 1_500_000
    assert make_pool().quote("X", 1_500_000_000, now_s=0).fee == 1_500_000


def test_small_sell_fills_at_the_active_bin_price() -> None:
    pool = make_pool()
    with localcontext() as ctx:
        ctx.prec = 50
        expected = int((Decimal(1_498_500_000) * pool.bin_price(ACTIVE)).to_integral_value(ROUND_FLOOR))
    assert pool.quote("X", 1_500_000_000, now_s=0).amount_out == expected


def test_small_sell_amount_out_literal() -> None:
    # 1.001^−1898 = 0.1500102532544…; 1_498_500_000 · 0.1500102532544 = 224_790_364.5… -> 224_790_364
    assert make_pool().quote("X", 1_500_000_000, now_s=0).amount_out == 224_790_364


def test_small_sell_stays_in_the_active_bin() -> None:
    pool = make_pool()
    pool.swap("X", 1_500_000_000, now_s=0)
    assert pool.active_id == ACTIVE


# --- crossing bins -------------------------------------------------------------------------


def test_large_sell_walks_down_several_bins() -> None:
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    # 10,000 + 20,000 + 20,000 Y drained, the rest taken from bin ACTIVE − 3
    assert pool.active_id == ACTIVE - 3


def test_large_sell_drains_the_bins_it_crosses() -> None:
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    assert [pool.bins[i].amount_y for i in (ACTIVE, ACTIVE - 1, ACTIVE - 2)] == [0, 0, 0]
    assert 0 < pool.bins[ACTIVE - 3].amount_y < Y_PER_BIN


def test_large_sell_gets_less_than_spot_for_its_net_input() -> None:
    pool = make_pool()
    spot = pool.price()
    outcome = pool.quote("X", BIG_SELL, now_s=0)
    assert outcome.amount_out < (BIG_SELL - outcome.fee) * spot


def test_large_sell_has_larger_price_impact_than_a_small_one() -> None:
    pool = make_pool()
    small = pool.quote("X", 1_500_000_000, now_s=0).price_impact
    large = pool.quote("X", BIG_SELL, now_s=0).price_impact
    assert large > small >= 0
    assert large > Decimal("0.001")


def test_buy_walks_the_active_id_up() -> None:
    pool = make_pool()
    pool.swap("Y", 40_000 * 10**6, now_s=0)
    # 10,000 Y worth of x in the active bin, 20,000 in ACTIVE + 1, the rest in ACTIVE + 2
    assert pool.active_id == ACTIVE + 2


def test_swap_conserves_tokens() -> None:
    pool = make_pool()
    x_before, y_before = total(pool)
    outcome = pool.swap("X", BIG_SELL, now_s=0)
    assert total(pool) == (x_before + BIG_SELL, y_before - outcome.amount_out)


def test_quote_does_not_mutate_the_pool() -> None:
    pool = make_pool()
    before = copy.deepcopy(pool)
    pool.quote("X", BIG_SELL, now_s=0)
    pool.quote("Y", 40_000 * 10**6, now_s=0)
    assert pool == before


def test_swap_mutates_the_pool_and_returns_the_quote() -> None:
    pool = make_pool()
    before = copy.deepcopy(pool)
    quoted = pool.quote("X", BIG_SELL, now_s=0)
    assert pool.swap("X", BIG_SELL, now_s=0) == quoted
    assert pool != before


def test_running_out_of_bins_raises_insufficient_liquidity() -> None:
    # all y in the pool is 10,000 + 50 · 20,000 = 1,010,000 Y, about 6,700 X at ≤ 0.15
    with pytest.raises(InsufficientLiquidity):
        make_pool().quote("X", 10_000 * 10**9, now_s=0)


def test_running_out_of_bins_when_buying_raises_insufficient_liquidity() -> None:
    # all x is worth about 10,000 + 50 · 20,000 = 1,010,000 Y
    with pytest.raises(InsufficientLiquidity):
        make_pool().quote("Y", 2_000_000 * 10**6, now_s=0)


def test_swap_that_runs_out_of_bins_leaves_pool_unchanged() -> None:
    pool = make_pool()
    before = copy.deepcopy(pool)
    with pytest.raises(InsufficientLiquidity):
        pool.swap("X", 10_000 * 10**9, now_s=0)
    assert pool == before


def test_swap_too_small_for_any_output_leaves_pool_unchanged() -> None:
    # 1 unit: fee 1, net 0, out 0 -> raises, but the unit was already added to the active bin
    pool = make_pool()
    before = copy.deepcopy(pool)
    with pytest.raises(InsufficientLiquidity):
        pool.swap("X", 1, now_s=0)
    assert pool == before


def test_amount_too_small_for_any_output_raises() -> None:
    # 1 unit: fee ceil(1 · 1e6 / 1e9) = 1, net 0, out 0
    with pytest.raises(InsufficientLiquidity):
        make_pool().quote("X", 1, now_s=0)


def test_unknown_mint_raises_key_error() -> None:
    with pytest.raises(KeyError):
        make_pool().quote("Z", 10**9, now_s=0)


# --- volatility accumulator -----------------------------------------------------------------


def test_accumulator_counts_bins_crossed() -> None:
    # first swap: index_ref = ACTIVE, reference 0; ends in ACTIVE − 3 -> 3 · 10_000
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    assert pool.volatility_accumulator == 30_000


def test_accumulator_grows_with_more_bins_crossed() -> None:
    one, other = make_pool(), make_pool()
    one.swap("X", BIG_SELL, now_s=0)
    other.swap("X", 2 * BIG_SELL, now_s=0)
    assert other.active_id < one.active_id
    assert other.volatility_accumulator > one.volatility_accumulator


def test_accumulator_is_capped() -> None:
    # ~40 bins crossed would be 400_000 > max 350_000
    pool = make_pool()
    pool.swap("X", 5_400 * 10**9, now_s=0)
    assert pool.active_id <= ACTIVE - 36
    assert pool.volatility_accumulator == 350_000


def test_small_swap_within_filter_period_keeps_the_old_index_reference() -> None:
    # t = 10 s < 30 s filter: reference 0, index_ref still ACTIVE; in bin ACTIVE − 3 -> va = 30_000
    # rate = 1_000_000 + 36_000; fee = ceil(1.5e9 · 1_036_000 / 1e9) = 1_554_000
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    assert pool.quote("X", 1_500_000_000, now_s=10).fee == 1_554_000


def test_accumulator_halves_after_filter_period() -> None:
    # t = 100 s: 30 ≤ 100 < 600 -> reference = 30_000 · 5_000 / 10_000 = 15_000, index_ref = ACTIVE − 3
    # variable = ceil(40_000 · 150_000² / 1e11) = 9_000; fee = ceil(1.5e9 · 1_009_000 / 1e9) = 1_513_500
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    assert pool.quote("X", 1_500_000_000, now_s=100).fee == 1_513_500


def test_accumulator_resets_after_decay_period() -> None:
    # t = 1000 s ≥ 600 s: reference 0 -> only the base fee, ceil(1.5e9 · 1e6 / 1e9) = 1_500_000
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    assert pool.quote("X", 1_500_000_000, now_s=1000).fee == 1_500_000


def test_swap_after_filter_period_stores_decayed_references() -> None:
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    pool.swap("X", 1_500_000_000, now_s=100)
    assert (pool.volatility_reference, pool.index_reference, pool.volatility_accumulator) == (
        15_000,
        ACTIVE - 3,
        15_000,
    )


def test_swap_after_decay_period_resets_accumulator() -> None:
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    pool.swap("X", 1_500_000_000, now_s=1000)
    assert (pool.volatility_reference, pool.volatility_accumulator) == (0, 0)


# --- re-centring -------------------------------------------------------------------------


def test_set_price_recentres_bins_on_the_new_price() -> None:
    # round(ln 0.16 / ln 1.001) = round(−1833.50) = −1833
    pool = make_pool()
    pool.set_price(Decimal("0.16"))
    assert pool.active_id == -1833
    assert set(pool.bins) == set(range(-1833 - 50, -1833 + 51))


def test_set_price_keeps_the_liquidity_shape() -> None:
    pool = make_pool()
    pool.swap("X", BIG_SELL, now_s=0)
    pool.set_price(Decimal("0.16"))
    fresh = DlmmPool.with_uniform_liquidity("X", "Y", 10, Decimal("0.16"), Y_PER_BIN, 50)
    assert pool.bins == fresh.bins


# --- depth and the largest fill ------------------------------------------------------------


def test_depth_in_a_token_is_what_the_bins_hold_of_it() -> None:
    pool = make_pool()
    assert (pool.reserve_of("X"), pool.reserve_of("Y")) == total(pool)
    pool.swap("X", BIG_SELL, now_s=0)
    assert (pool.reserve_of("X"), pool.reserve_of("Y")) == total(pool)  # kept current after a swap


@settings(max_examples=30, deadline=None)
@given(mint_in=st.sampled_from(["X", "Y"]), swaps=st.lists(st.integers(1, 5 * 10**11), max_size=3),
       now_s=st.sampled_from([0.0, 10.0, 100.0, 1_000.0]))
def test_the_largest_fill_fills_and_one_unit_more_does_not(mint_in: str, swaps: list[int], now_s: float) -> None:
    """max_amount_in is the exact edge of what one swap can take, whatever the bins and fees."""
    pool = make_pool()
    for n, amount in enumerate(swaps):
        with contextlib.suppress(InsufficientLiquidity):
            pool.swap("X" if n % 2 else "Y", amount, now_s=n)
    largest = pool.max_amount_in(mint_in, now_s)
    assert pool.quote(mint_in, largest, now_s).amount_out > 0
    with pytest.raises(InsufficientLiquidity):
        pool.quote(mint_in, largest + 1, now_s)


@settings(max_examples=60, deadline=None)
@given(mint_in=st.sampled_from(["X", "Y"]), fractions=st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)))
def test_more_input_never_gives_less_output(mint_in: str, fractions: tuple[int, int]) -> None:
    """Per pool, output is non-decreasing in input (what the router's 'a larger order never gets
    less' rests on), across bins and their rounding."""
    pool = make_pool()
    largest = pool.max_amount_in(mint_in, 0.0)
    small, large = sorted(largest * f // 10**6 for f in fractions)
    outs = []
    for amount in (small, large):
        try:
            outs.append(pool.quote(mint_in, amount, 0.0).amount_out)
        except InsufficientLiquidity:  # too small to give anything
            outs.append(0)
    assert outs[0] <= outs[1]
