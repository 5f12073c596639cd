"""Raydium AMM v4 constant-product math, checked against hand-computed figures."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.raydium import ConstantProductPool
from shared.domain.swap import InsufficientLiquidity

SOL_MINT, USDC_MINT = "SOL", "USDC"
R_SOL = 10_000 * 10**9  # 10,000 SOL in lamports
R_USDC = 1_500_000 * 10**6  # 1,500,000 USDC in base units


def make_pool() -> ConstantProductPool:
    return ConstantProductPool(SOL_MINT, USDC_MINT, R_SOL, R_USDC)


def test_worked_check_sell_one_and_a_half_sol() -> None:
    # fee    = ceil(1_500_000_000 · 25 / 10_000) = 3_750_000
    # in_net = 1_500_000_000 − 3_750_000 = 1_496_250_000
    # out    = floor(1.5e12 · 1_496_250_000 / (1e13 + 1_496_250_000))
    #        = floor(2.244375e21 / 10_001_496_250_000) = floor(224_403_923.5…) = 224_403_923
    outcome = make_pool().quote(SOL_MINT, 1_500_000_000)
    assert (outcome.amount_in, outcome.fee, outcome.amount_out) == (1_500_000_000, 3_750_000, 224_403_923)


def test_worked_check_price_impact_is_about_0_015_percent() -> None:
    # (224_403_923 / 1_496_250_000) / (1.5e12 / 1e13) − 1 = 0.149975… / 0.15 − 1 ≈ −0.0001496
    impact = make_pool().quote(SOL_MINT, 1_500_000_000).price_impact
    assert Decimal("0.000149") < impact < Decimal("0.000150")


def test_buy_direction_spend_150_usdc() -> None:
    # fee    = ceil(150_000_000 · 25 / 10_000) = 375_000
    # in_net = 150_000_000 − 375_000 = 149_625_000
    # out    = floor(1e13 · 149_625_000 / (1.5e12 + 149_625_000))
    #        = floor(1.49625e21 / 1_500_149_625_000) = floor(997_400_509.35…) = 997_400_509 lamports
    # floor check: D · 997_400_509 <= N < D · 997_400_510
    outcome = make_pool().quote(USDC_MINT, 150_000_000)
    assert (outcome.fee, outcome.amount_out) == (375_000, 997_400_509)
    assert 1_500_149_625_000 * 997_400_509 <= 10**13 * 149_625_000 < 1_500_149_625_000 * 997_400_510


def test_fee_rounds_up() -> None:
    # ceil(1_000_001 · 25 / 10_000) = ceil(2_500.0025) = 2_501, not 2_500
    assert make_pool().quote(SOL_MINT, 1_000_001).fee == 2_501


def test_price_impact_matches_sdk_formula() -> None:
    amount_in = 250 * 10**9
    outcome = make_pool().quote(SOL_MINT, amount_in)
    in_net = amount_in - outcome.fee
    expected = abs((Decimal(outcome.amount_out) / Decimal(in_net)) / (Decimal(R_USDC) / Decimal(R_SOL)) - 1)
    assert abs(outcome.price_impact - expected) < Decimal("1e-20")


def test_quote_does_not_change_reserves() -> None:
    pool = make_pool()
    pool.quote(SOL_MINT, 1_500_000_000)
    assert (pool.reserve_x, pool.reserve_y) == (R_SOL, R_USDC)


def test_swap_moves_reserves_by_amount_in_and_amount_out_exactly() -> None:
    pool = make_pool()
    outcome = pool.swap(SOL_MINT, 1_500_000_000)
    # the whole input, fee included, enters the pool; exactly amount_out leaves it
    assert (pool.reserve_x, pool.reserve_y) == (R_SOL + 1_500_000_000, R_USDC - 224_403_923)
    assert outcome.amount_out == 224_403_923


def test_swap_in_buy_direction_moves_reserves_the_other_way() -> None:
    pool = make_pool()
    pool.swap(USDC_MINT, 150_000_000)
    assert (pool.reserve_x, pool.reserve_y) == (R_SOL - 997_400_509, R_USDC + 150_000_000)


def test_swap_returns_what_quote_promised() -> None:
    pool = make_pool()
    quoted = pool.quote(SOL_MINT, 7 * 10**9)
    assert pool.swap(SOL_MINT, 7 * 10**9) == quoted


def test_swap_never_decreases_k() -> None:
    pool = make_pool()
    k_before = pool.reserve_x * pool.reserve_y
    pool.swap(SOL_MINT, 300 * 10**9)
    assert pool.reserve_x * pool.reserve_y >= k_before


def test_bigger_order_gets_worse_price_and_larger_impact() -> None:
    pool = make_pool()
    sizes = [10**9, 10 * 10**9, 100 * 10**9, 1_000 * 10**9]
    outcomes = [pool.quote(SOL_MINT, size) for size in sizes]
    prices = [Decimal(o.amount_out) / Decimal(o.amount_in) for o in outcomes]
    impacts = [o.price_impact for o in outcomes]
    assert prices == sorted(prices, reverse=True) and len(set(prices)) == len(prices)
    assert impacts == sorted(impacts) and len(set(impacts)) == len(impacts)


def test_price_is_y_per_x() -> None:
    # 1.5e12 / 1e13 = 0.15 USDC base units per lamport (150 USDC per SOL)
    assert make_pool().price() == Decimal("0.15")


def test_depth_in_a_token_is_the_pool_reserve_of_that_token() -> None:
    assert (make_pool().reserve_of(USDC_MINT), make_pool().reserve_of(SOL_MINT)) == (R_USDC, R_SOL)


def test_set_price_moves_spot_to_the_target() -> None:
    pool = make_pool()
    pool.set_price(Decimal("0.16"))
    assert abs(pool.price() / Decimal("0.16") - 1) < Decimal("1e-9")


def test_set_price_keeps_k_within_one_reserve_unit() -> None:
    # y' = k // x', so k − x'·y' = k mod x' lies in [0, x')
    pool = make_pool()
    k = pool.reserve_x * pool.reserve_y
    pool.set_price(Decimal("0.1412345"))
    k_after = pool.reserve_x * pool.reserve_y
    assert 0 <= k - k_after < pool.reserve_x


def test_set_price_down_keeps_k_within_one_reserve_unit() -> None:
    pool = make_pool()
    pool.set_price(Decimal("0.16"))
    k = pool.reserve_x * pool.reserve_y
    pool.set_price(Decimal("0.13"))
    assert 0 <= k - pool.reserve_x * pool.reserve_y < pool.reserve_x
    assert abs(pool.price() / Decimal("0.13") - 1) < Decimal("1e-9")


def test_amount_that_yields_nothing_raises_insufficient_liquidity() -> None:
    # 1 lamport: fee = ceil(25/10_000) = 1, in_net = 0, out = 0
    with pytest.raises(InsufficientLiquidity):
        make_pool().quote(SOL_MINT, 1)


def test_tiny_output_reserve_rounds_to_nothing() -> None:
    # R_in 1_000, R_out 1, in 100: fee 1, in_net 99, out = floor(1·99 / 1_099) = 0
    pool = ConstantProductPool("A", "B", 1_000, 1)
    with pytest.raises(InsufficientLiquidity):
        pool.quote("A", 100)


def test_failed_swap_leaves_pool_unchanged() -> None:
    pool = make_pool()
    before = copy.copy(pool)
    with pytest.raises(InsufficientLiquidity):
        pool.swap(SOL_MINT, 1)
    assert pool == before


def test_unknown_mint_raises_key_error() -> None:
    with pytest.raises(KeyError):
        make_pool().quote("BONK", 10**9)


@given(mint_in=st.sampled_from([SOL_MINT, USDC_MINT]), amounts=st.tuples(st.integers(1, 10**16), st.integers(1, 10**16)))
def test_more_input_never_gives_less_output(mint_in: str, amounts: tuple[int, int]) -> None:
    small, large = sorted(amounts)
    outs = []
    for amount in (small, large):
        try:
            outs.append(make_pool().quote(mint_in, amount).amount_out)
        except InsufficientLiquidity:
            outs.append(0)
    assert outs[0] <= outs[1]
    assert make_pool().max_amount_in(mint_in) is None  # a constant-product pool takes any size
