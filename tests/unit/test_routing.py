"""Routing (shared/routing.py): venue choice (most output, then liquidity, then latency),
slippage thresholds, splits across two venues (hand-checked on constant-product pools, then on
the simulated market), each leg's minimum, and the rules as properties: a larger order never
gets less, and no leg of a limit order can fill worse than the limit."""

from __future__ import annotations

import itertools
from decimal import Decimal
from math import isqrt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import execute, intake, quote as quote_step, route
from functions.quote import price_order
from shared.domain.messages import MarketOrderRequest, NewOrder, QuoteCurve, VenueQuote
from shared.domain.routing import NoRoute, advantage_bps, best_split, choose_venue, min_amount_out, plan_route
from shared.settings import Settings
from shared.domain.tokens import BONK, JUP, SOL, USDC, USDT, Token
from shared.domain.resting import floor_amount_out
from shared.domain.raydium import ConstantProductPool
from tests.fakes import fake_context


def quote(venue: str, amount_out: int, liquidity: int = 10**12, latency_ms: int = 150) -> VenueQuote:
    return VenueQuote(
        venue=venue,
        pool=f"{venue}-pool",
        amount_in=1_500_000_000,
        amount_out=amount_out,
        fee=3_750_000,
        price_impact="0.000150000000",
        liquidity=liquidity,
        latency_ms=latency_ms,
    )


# --- choose_venue ----------------------------------------------------------------------


def test_sell_routes_to_venue_with_more_output() -> None:
    raydium, meteora = quote("raydium", 224_403_923), quote("meteora", 224_790_364)
    decision = choose_venue([raydium, meteora])
    assert (decision.best, decision.runner_up, decision.reason) == (meteora, raydium, "highest net amount out")


def test_more_output_wins_even_with_less_liquidity_and_more_latency() -> None:
    shallow_slow = quote("meteora", 1_000_001, liquidity=1, latency_ms=900)
    deep_fast = quote("raydium", 1_000_000, liquidity=10**15, latency_ms=1)
    assert choose_venue([deep_fast, shallow_slow]).best == shallow_slow


def test_equal_output_goes_to_deeper_liquidity() -> None:
    shallow, deep = quote("raydium", 1_000, liquidity=5_000), quote("meteora", 1_000, liquidity=9_000)
    decision = choose_venue([shallow, deep])
    assert (decision.best, decision.reason) == (deep, "tie on amount out; deeper liquidity")


def test_equal_output_and_liquidity_goes_to_lower_latency() -> None:
    slow, fast = quote("meteora", 1_000, latency_ms=180), quote("raydium", 1_000, latency_ms=120)
    decision = choose_venue([slow, fast])
    assert (decision.best, decision.reason) == (fast, "tie on amount out and liquidity; lower latency")


def test_full_tie_goes_to_venue_name_order() -> None:
    decision = choose_venue([quote("raydium", 1_000), quote("meteora", 1_000)])
    assert (decision.best.venue, decision.reason) == ("meteora", "full tie; venue name order")


def test_single_quote_is_chosen_without_runner_up() -> None:
    only = quote("raydium", 1_000)
    decision = choose_venue([only])
    assert (decision.best, decision.runner_up, decision.reason) == (only, None, "only venue with a quote")


def test_no_quotes_raises_no_route() -> None:
    with pytest.raises(NoRoute):
        choose_venue([])


def test_runner_up_is_the_second_best() -> None:
    quotes = [quote("a", 10), quote("b", 30), quote("c", 20)]
    assert choose_venue(quotes).runner_up == quotes[2]


def test_decision_is_independent_of_input_order() -> None:
    quotes = [
        quote("raydium", 1_000, liquidity=7, latency_ms=120),
        quote("meteora", 1_000, liquidity=7, latency_ms=120),
        quote("orca", 1_000, liquidity=9, latency_ms=300),
        quote("phoenix", 999, liquidity=10**9, latency_ms=1),
    ]
    decisions = {choose_venue(list(order)) for order in itertools.permutations(quotes)}
    assert len(decisions) == 1


_quotes = st.lists(
    st.builds(
        quote,
        venue=st.sampled_from(["raydium", "meteora", "orca", "lifinity"]),
        amount_out=st.integers(1, 5),
        liquidity=st.integers(1, 3),
        latency_ms=st.integers(1, 3),
    ),
    min_size=1,
    max_size=6,
)


@given(data=st.data(), quotes=_quotes)
def test_decision_is_independent_of_input_order_property(data: st.DataObject, quotes: list[VenueQuote]) -> None:
    shuffled = data.draw(st.permutations(quotes))
    assert choose_venue(shuffled) == choose_venue(quotes)


# --- min_amount_out -----------------------------------------------------------------------


def test_min_amount_out_one_percent() -> None:
    # floor(224_403_923 · 9_900 / 10_000) = floor(222_159_883.77) = 222_159_883
    assert min_amount_out(224_403_923, 100) == 222_159_883


def test_min_amount_out_default_half_percent() -> None:
    # floor(1_000_001 · 9_950 / 10_000) = floor(995_000.995) = 995_000
    assert min_amount_out(1_000_001, 50) == 995_000


def test_min_amount_out_with_zero_slippage_is_the_expected_amount() -> None:
    assert min_amount_out(224_403_923, 0) == 224_403_923


def test_min_amount_out_with_full_slippage_is_zero() -> None:
    assert min_amount_out(224_403_923, 10_000) == 0


# --- advantage_bps ------------------------------------------------------------------------


def test_advantage_three_percent_is_300_bps() -> None:
    # (10_300 − 10_000) · 10_000 / 10_000 = 300
    assert advantage_bps(10_300, 10_000) == 300


def test_advantage_rounds_down() -> None:
    # (20_003 − 20_000) · 10_000 / 20_000 = 1.5 -> 1
    assert advantage_bps(20_003, 20_000) == 1


def test_advantage_of_equal_amounts_is_zero() -> None:
    assert advantage_bps(5_000, 5_000) == 0


def test_advantage_over_zero_is_zero() -> None:
    assert advantage_bps(5_000, 0) == 0


def test_advantage_of_meteora_over_raydium_worked_figures() -> None:
    # (224_790_364 − 224_403_923) · 10_000 / 224_403_923 = 3_864_410_000 / 224_403_923 = 17.2… -> 17
    assert advantage_bps(224_790_364, 224_403_923) == 17


# --- splits, hand-checked on constant-product pools -------------------------------------------

X, Y = "MintX", "MintY"
STEPS = 100
R_SOL = 10_000 * 10**9  # 10,000 SOL in lamports
R_USDC = 1_500_000 * 10**6  # 1,500,000 USDC in base units: spot 150 USDC/SOL


def pool(scale: int = 1) -> ConstantProductPool:
    return ConstantProductPool(SOL.mint, USDC.mint, scale * R_SOL, scale * R_USDC)


def curves_for(pools: dict[str, ConstantProductPool], amount_in: int, mint_in: str = SOL.mint) -> list[QuoteCurve]:
    """As SimulatedVenues.split_curves samples them: the first venue at every i/100 of the
    order, the second at the rest."""
    (first, a), (second, b) = pools.items()
    sizes = [amount_in * i // STEPS for i in range(1, STEPS)]
    return [QuoteCurve(first, f"{first}-pool", sizes, [a.quote(mint_in, n).amount_out for n in sizes]),
            QuoteCurve(second, f"{second}-pool", [amount_in - n for n in sizes],
                       [b.quote(mint_in, amount_in - n).amount_out for n in sizes])]


def single(name: str, venue_pool: ConstantProductPool, amount_in: int, mint_in: str = SOL.mint) -> VenueQuote:
    outcome = venue_pool.quote(mint_in, amount_in)
    return VenueQuote(name, f"{name}-pool", amount_in, outcome.amount_out, outcome.fee, "0",
                      venue_pool.reserve_of(venue_pool.mint_y if mint_in == venue_pool.mint_x else venue_pool.mint_x),
                      100)


def plan_for(pools: dict[str, ConstantProductPool], amount_in: int, slippage_bps: int = 50, floor: int = 0,
             mint_in: str = SOL.mint):
    quotes = [single(name, p, amount_in, mint_in) for name, p in pools.items()]
    mint_out = USDC.mint if mint_in == SOL.mint else Y
    plan = plan_route(amount_in, quotes, curves_for(pools, amount_in, mint_in), mint_in, mint_out, slippage_bps, floor)
    return plan, quotes


def test_equal_fee_less_pools_split_an_order_half_and_half_by_hand() -> None:
    # Two fee-less pools of 1,000,000 × 1,000,000. One pool alone, 1,000,000 in:
    #   out = 1e6·1e6 / (1e6 + 1e6) = 500,000.
    # Half in each: out = 2 · 1e6·5e5 / (1e6 + 5e5) = 2 · 333,333 = 666,666 (+33.3 %).
    pools = {v: ConstantProductPool(X, Y, 1_000_000, 1_000_000, fee_bps=0) for v in ("raydium", "meteora")}
    split = best_split(curves_for(pools, 1_000_000, X), 1_000_000)
    assert (split.first_in, split.second_in, split.amount_out) == (500_000, 500_000, 666_666)
    plan, _ = plan_for(pools, 1_000_000, mint_in=X)
    assert [leg.amount_in for leg in plan.legs] == [500_000, 500_000]
    assert plan.expected_amount_out == 666_666 and plan.best_single_amount_out == 500_000
    assert plan.reason == "split 50%/50% beats meteora alone by 3333 bps"


def test_equal_pools_with_fees_split_half_and_half_hand_checked() -> None:
    # Selling 1,000 SOL into two identical pools (10,000 SOL / 1,500,000 USDC, 25 bps fee).
    # One pool alone: fee = ceil(10^12 · 25 / 10^4) = 2_500_000_000; in_net = 997_500_000_000;
    #   out = floor(1.5e12 · 9.975e11 / (1e13 + 9.975e11)) = 136_053_648_556
    # Half in each: fee = 1_250_000_000; in_net = 498_750_000_000;
    #   out = floor(1.5e12 · 4.9875e11 / (1e13 + 4.9875e11)) = 71_258_483_152; both: 142_516_966_304
    # Gain: 6_463_317_748 · 10_000 / 136_053_648_556 = 475.05… → 475 bps
    plan, _ = plan_for({"a": pool(), "b": pool()}, 1_000 * 10**9)
    assert plan.best_single_amount_out == 136_053_648_556
    assert plan.expected_amount_out == 142_516_966_304
    assert [leg.amount_in for leg in plan.legs] == [500 * 10**9, 500 * 10**9]
    assert [leg.expected_amount_out for leg in plan.legs] == [71_258_483_152, 71_258_483_152]
    assert plan.reason == "split 50%/50% beats a alone by 475 bps"


def test_a_deeper_pool_takes_the_larger_share_where_marginal_prices_meet() -> None:
    # Pool A 3,000,000 deep, pool B 1,000,000 (both 1:1, no fee). Output of a in a pool of
    # depth R is R·a/(R+a); its marginal R²/(R+a)². Equal marginals (square roots):
    # 3e6/(3e6+a) = 1e6/(1e6+b) ⇒ a = 3b; with a + b = 1e6: a = 750,000.
    pools = {"raydium": ConstantProductPool(X, Y, 3_000_000, 3_000_000, fee_bps=0),
             "meteora": ConstantProductPool(X, Y, 1_000_000, 1_000_000, fee_bps=0)}
    plan, _ = plan_for(pools, 1_000_000, mint_in=X)
    assert {leg.venue: leg.amount_in for leg in plan.legs} == {"raydium": 750_000, "meteora": 250_000}

    def total(a: int) -> int:
        return pools["raydium"].quote(X, a).amount_out + pools["meteora"].quote(X, 1_000_000 - a).amount_out

    assert total(750_000) == plan.expected_amount_out
    assert total(740_000) < total(750_000) > total(760_000)  # moving 1 % either way gives less


def test_a_pool_twice_as_deep_takes_two_thirds_hand_checked() -> None:
    # d out / d a = γ·x·y / (x + γa)². Same price, pool 2 twice as deep: √k₁ / (x₁ + γa₁) =
    # √k₂ / (x₂ + γa₂) ⇒ a₂ = 2a₁: one third to the shallow pool, 33.3 of 100 steps.
    plan, _ = plan_for({"shallow": pool(1), "deep": pool(2)}, 1_000 * 10**9)
    assert [leg.amount_in for leg in plan.legs] == [330 * 10**9, 670 * 10**9]  # 33: 144_809_839_789 vs 144_809_163_610 at 34


def _optimal_first_share(x1: int, y1: int, x2: int, y2: int, amount_in: int, fee_bps: int = 25) -> Decimal:
    """Closed-form optimum of a₁ (in steps of 1 %) from √k₁ (x₂ + γ(A − a₁)) = √k₂ (x₁ + γa₁)."""
    gamma = Decimal(10_000 - fee_bps) / 10_000
    s1, s2 = Decimal(isqrt(x1 * y1)), Decimal(isqrt(x2 * y2))
    a1 = (s1 * (x2 + gamma * amount_in) - s2 * x1) / (gamma * (s1 + s2))
    return a1 * STEPS / amount_in


@pytest.mark.parametrize(
    ("second", "amount_sol"),
    [
        (ConstantProductPool(SOL.mint, USDC.mint, 10_000 * 10**9, 1_520_000 * 10**6), 1_000),  # 152 vs 150
        (ConstantProductPool(SOL.mint, USDC.mint, 30_000 * 10**9, 4_470_000 * 10**6), 3_000),  # deeper, 149
        (ConstantProductPool(SOL.mint, USDC.mint, 5_000 * 10**9, 760_000 * 10**6), 500),  # shallower, 152
    ],
)
def test_the_search_lands_where_the_closed_form_optimum_is(second: ConstantProductPool, amount_sol: int) -> None:
    amount_in = amount_sol * 10**9
    first = pool()
    split = best_split(curves_for({"first": first, "second": second}, amount_in), amount_in)
    optimum = _optimal_first_share(first.reserve_x, first.reserve_y, second.reserve_x, second.reserve_y, amount_in)
    assert 1 < optimum < STEPS - 1
    assert abs(Decimal(split.first_in * STEPS) / amount_in - optimum) <= 1


def test_a_small_order_is_not_split_and_keeps_the_best_venues_reason() -> None:
    plan, quotes = plan_for({"raydium": ConstantProductPool(X, Y, 10_000 * 10**9, 1_500_000 * 10**6),
                             "meteora": ConstantProductPool(X, Y, 8_000 * 10**9, 1_196_000 * 10**6)}, 10**9, mint_in=X)
    assert len(plan.legs) == 1 and plan.reason == "highest net amount out"
    assert plan.expected_amount_out == max(q.amount_out for q in quotes)


def test_no_split_without_two_curves_of_one_order() -> None:
    amount_in = 1_000 * 10**9
    both = curves_for({"a": pool(), "b": pool()}, amount_in)
    assert best_split([], amount_in) is None
    assert best_split(both[:1], amount_in) is None
    assert best_split(both, amount_in + 1) is None  # sampled for another size: nothing pairs up


def test_a_venue_that_cannot_fill_a_size_takes_no_share_of_that_size() -> None:
    amount_in = 1_000 * 10**9
    good, other = curves_for({"good": pool(), "dry": pool()}, amount_in)
    dry = QuoteCurve("dry", "dry-pool", other.amounts_in, [0] * len(other.amounts_in))  # every size failed
    plan = plan_route(amount_in, [single("good", pool(), amount_in)], [good, dry], SOL.mint, USDC.mint, 50)
    assert [leg.venue for leg in plan.legs] == ["good"]


def test_with_no_venue_able_to_fill_alone_a_split_still_routes() -> None:
    amount_in = 1_000 * 10**9
    plan = plan_route(amount_in, [], curves_for({"a": pool(), "b": pool()}, amount_in), SOL.mint, USDC.mint, 50)
    assert len(plan.legs) == 2 and plan.best_single_amount_out == 0
    assert plan.reason == "split 50%/50%: no venue can fill the whole order alone"
    with pytest.raises(NoRoute):
        plan_route(amount_in, [], [], SOL.mint, USDC.mint, 50)


# --- each leg's minimum ------------------------------------------------------------------------


def test_each_leg_keeps_its_own_slippage_bound() -> None:
    plan, _ = plan_for({"a": pool(), "b": pool()}, 1_000 * 10**9, slippage_bps=100)
    # floor(71_258_483_152 · 9_900 / 10_000) = floor(70_545_898_320.48) = 70_545_898_320
    assert [leg.min_amount_out for leg in plan.legs] == [70_545_898_320, 70_545_898_320]
    assert plan.min_amount_out == 2 * 70_545_898_320


def test_a_floor_is_shared_between_the_legs_by_input_rounding_up() -> None:
    # A floor of 142_516_966_001 over 1,000 SOL in two legs of 500: ceil(142_516_966_001 · 500 / 1,000)
    # = 71_258_483_001 each — by input share, not by what each leg is expected to give.
    plan, _ = plan_for({"a": pool(), "b": pool()}, 1_000 * 10**9, slippage_bps=10_000, floor=142_516_966_001)
    assert [leg.min_amount_out for leg in plan.legs] == [71_258_483_001, 71_258_483_001]
    assert plan.min_amount_out >= 142_516_966_001


def test_a_split_whose_leg_falls_short_of_its_floor_gives_way_to_one_that_meets_it() -> None:
    # Two pools at different prices (150 and 160 USDC/SOL): the best split sends some SOL to
    # the 150 pool below a 152 limit; the best plan meeting the limit sends all to the 160 pool.
    cheap = pool()
    rich = ConstantProductPool(SOL.mint, USDC.mint, 10_000 * 10**9, 1_600_000 * 10**6)
    amount_in = 400 * 10**9
    unbounded, _ = plan_for({"cheap": cheap, "rich": rich}, amount_in)
    assert len(unbounded.legs) == 2
    limit_floor = floor_amount_out("sell", amount_in, Decimal(152), SOL, USDC)
    plan, _ = plan_for({"cheap": cheap, "rich": rich}, amount_in, floor=limit_floor)
    assert plan.short_leg() is None
    assert all(leg.expected_amount_out * 10**9 >= 152 * 10**6 * leg.amount_in for leg in plan.legs)


# --- on the engine's simulated market (Raydium x·y=k vs Meteora DLMM) -------------------------

MAX_ORDER = {token.symbol: Settings().max_order(token.symbol) for token in (SOL, USDC, USDT, BONK, JUP)}
DIRECTIONS = [(SOL, USDC), (USDC, SOL), (SOL, USDT), (USDT, SOL), (USDT, USDC), (BONK, SOL), (SOL, BONK),
              (JUP, USDC), (USDC, JUP)]


async def market_plan(ctx, sold: Token, bought: Token, amount_in: int, slippage_bps: int = 50, floor: int = 0):
    quotes, failures, curves = await price_order(ctx, sold.mint, bought.mint, amount_in)
    return plan_route(amount_in, quotes, curves, sold.mint, bought.mint, slippage_bps, floor), quotes, failures


async def test_selling_10000_sol_gives_more_than_selling_9500() -> None:
    """The review's case: at 10,000 SOL Meteora has no bins left for the whole order, so the
    order went to Raydium alone and got ~761,000 USDC against ~1,353,000 for 9,500."""
    ctx = fake_context()
    smaller, _, _ = await market_plan(ctx, SOL, USDC, 9_500 * 10**9)
    larger, quotes, failures = await market_plan(ctx, SOL, USDC, 10_000 * 10**9)
    assert [f.venue for f in failures] == ["meteora"] and [q.venue for q in quotes] == ["raydium"]
    assert larger.venue == "split" and larger.expected_amount_out > smaller.expected_amount_out
    meteora = next(leg for leg in larger.legs if leg.venue == "meteora")  # the part of the order it can take
    assert 0 < meteora.amount_in <= ctx.venues.store.market.pool("meteora", SOL.mint, USDC.mint).max_amount_in(SOL.mint, 0.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(direction=st.sampled_from(DIRECTIONS), fractions=st.tuples(st.integers(1, 10_000), st.integers(1, 10_000)))
async def test_a_larger_order_never_gets_less(direction: tuple[Token, Token], fractions: tuple[int, int]) -> None:
    """For a fixed market state the best plan's expected output is non-decreasing in the order's
    size, up to the per-asset maximum — across the switch from one venue to a split and past
    the depth of a venue that cannot take the whole order."""
    sold, bought = direction
    ctx = fake_context()
    largest = int(MAX_ORDER[sold.symbol] * 10**sold.decimals)
    small, large = sorted(largest * f // 10_000 for f in fractions)
    plan_small, _, _ = await market_plan(ctx, sold, bought, small)
    plan_large, _, _ = await market_plan(ctx, sold, bought, large)
    assert plan_large.expected_amount_out >= plan_small.expected_amount_out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side=st.sampled_from(["sell", "buy"]), size=st.integers(1, 100), offset_bps=st.integers(-300, 300),
       slippage_bps=st.integers(0, 10_000))
async def test_no_leg_of_a_limit_order_can_fill_worse_than_the_limit(side: str, size: int, offset_bps: int,
                                                                      slippage_bps: int) -> None:
    """Every leg's minimum, as sent to the chain (and sent again by a retried delivery), is at
    least the leg's own input converted at the limit, rounded in the client's favour."""
    ctx = fake_context()
    amount_in = (size * 100 * 10**9) if side == "sell" else (size * 15_000 * 10**6)  # up to 10,000 SOL of value
    limit = Decimal(150) * (10_000 + offset_bps) / 10_000
    floor = floor_amount_out(side, amount_in, limit, SOL, USDC)
    sold, bought = (SOL, USDC) if side == "sell" else (USDC, SOL)
    plan, _, _ = await market_plan(ctx, sold, bought, amount_in, slippage_bps, floor)
    for delivery in range(2):
        for leg, tx in zip(plan.legs, execute.transactions("00000000-0000-7000-8000-000000000001", plan), strict=True):
            assert tx.min_amount_out == leg.min_amount_out
            assert tx.min_amount_out >= floor_amount_out(side, tx.amount_in, limit, SOL, USDC), delivery


@pytest.mark.parametrize("amount_in", [2_000 * 10**9, 1_999_999_999_999, 3_000 * 10**9 + 7])
async def test_a_large_order_splits_for_more_than_either_venue_alone(amount_in: int) -> None:
    ctx = fake_context()
    plan, quotes, _ = await market_plan(ctx, SOL, USDC, amount_in)
    best_single = max(q.amount_out for q in quotes)
    assert plan.venue == "split" and len(plan.legs) == 2
    assert plan.expected_amount_out > best_single == plan.best_single_amount_out
    assert sum(leg.amount_in for leg in plan.legs) == plan.amount_in == amount_in
    assert plan.expected_amount_out == sum(leg.expected_amount_out for leg in plan.legs)
    gain = advantage_bps(plan.expected_amount_out, best_single)
    assert gain > 0 and plan.reason.endswith(f"alone by {gain} bps")
    for leg in plan.legs:  # each leg's expected output is exactly what its pool gives for the leg
        [real] = await ctx.venues.outcomes(SOL.mint, USDC.mint, [(leg.venue, leg.amount_in)])
        assert leg.expected_amount_out == real.amount_out


@pytest.mark.parametrize("amount_in", [10**9, 4 * 10**9, 100 * 10**9])
async def test_a_small_order_stays_on_one_venue(amount_in: int) -> None:
    plan, quotes, _ = await market_plan(fake_context(), SOL, USDC, amount_in)
    best = max(quotes, key=lambda q: q.amount_out)
    assert [(leg.venue, leg.amount_in, leg.expected_amount_out) for leg in plan.legs] == [
        (best.venue, amount_in, best.amount_out)
    ]
    assert plan.expected_amount_out == plan.best_single_amount_out


async def test_quote_takes_no_curves_for_an_order_under_5_bps_of_the_shallower_pool() -> None:
    """Meteora's SOL/USDC pool holds ~1.39 M USDC (~9,270 SOL at spot): 5 bps of it is ~4.6 SOL."""
    ctx = fake_context()

    async def routed_with(amount: str):
        new = NewOrder(MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount=amount), "c", amount)
        return await quote_step.handle(await intake.handle(new, ctx), ctx)

    assert (await routed_with("4")).curves == []
    large = await routed_with("2000")
    assert [len(c.amounts_out) for c in large.curves] == [STEPS - 1, STEPS - 1]


async def test_route_reports_the_split_gain_over_the_best_single_venue() -> None:
    ctx = fake_context()
    new = NewOrder(MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="2000"), "c", "k")
    execute_request = await route.handle(await quote_step.handle(await intake.handle(new, ctx), ctx), ctx)
    routed = (await ctx.orders.events(execute_request.order_id))[-1]
    plan = execute_request.plan
    assert routed.status == "routed" and routed.data["venue"] == "split"
    assert routed.data["splitGainBps"] == advantage_bps(plan.expected_amount_out, plan.best_single_amount_out) > 0
    assert sum(Decimal(leg["sharePct"]) for leg in routed.data["legs"]) == 100
