"""Split routing: sharing one order between two venues when that gives more than either
alone (shared/routing.py best_split / plan_route), on real pool math. Amounts are integers."""

from __future__ import annotations

from decimal import Decimal
from math import isqrt

import pytest

from functions import intake, quote, route
from shared.messages import MarketOrderRequest, NewOrder, QuoteCurve, VenueQuote
from shared.routing import advantage_bps, best_split, min_amount_out, plan_route
from shared.tokens import SOL, USDC
from shared.venues.raydium import ConstantProductPool
from tests.fakes import fake_context

STEPS = 100
R_SOL = 10_000 * 10**9  # 10,000 SOL in lamports
R_USDC = 1_500_000 * 10**6  # 1,500,000 USDC in base units: spot 150 USDC/SOL


def pool(scale: int = 1) -> ConstantProductPool:
    return ConstantProductPool(SOL.mint, USDC.mint, scale * R_SOL, scale * R_USDC)


def curve(name: str, venue_pool: ConstantProductPool, amount_in: int, steps: int = STEPS) -> QuoteCurve:
    """As SimulatedVenues.curve: the output of every i/steps of the order (i = 0 … steps)."""
    outputs = [0] + [venue_pool.quote(SOL.mint, amount_in * i // steps).amount_out for i in range(1, steps + 1)]
    return QuoteCurve(name, f"{name}-pool", steps, outputs)


def single(name: str, venue_pool: ConstantProductPool, amount_in: int) -> VenueQuote:
    outcome = venue_pool.quote(SOL.mint, amount_in)
    return VenueQuote(name, f"{name}-pool", amount_in, outcome.amount_out, outcome.fee, "0", 2 * R_USDC, 100)


def plan_for(pools: dict[str, ConstantProductPool], amount_in: int, slippage_bps: int = 50, floor: int = 0):
    quotes = [single(name, p, amount_in) for name, p in pools.items()]
    curves = [curve(name, p, amount_in) for name, p in pools.items()]
    return plan_route(quotes, curves, SOL.mint, USDC.mint, slippage_bps, floor), quotes


# --- hand-checked figures on constant-product pools ---------------------------------------------


def test_equal_pools_split_half_and_half_hand_checked() -> None:
    # Selling 1,000 SOL into two identical pools (10,000 SOL / 1,500,000 USDC, 25 bps fee).
    # By symmetry and concavity the optimum is 50/50.
    # One pool alone: fee = ceil(10^12 · 25 / 10^4) = 2_500_000_000; in_net = 997_500_000_000;
    #   out = floor(1.5e12 · 9.975e11 / (1e13 + 9.975e11)) = floor(136_053_648_556.49…) = 136_053_648_556
    # Half in each: fee = 1_250_000_000; in_net = 498_750_000_000;
    #   out = floor(1.5e12 · 4.9875e11 / (1e13 + 4.9875e11)) = floor(71_258_483_152.75…) = 71_258_483_152
    #   both: 2 · 71_258_483_152 = 142_516_966_304
    # Gain: 6_463_317_748 · 10_000 / 136_053_648_556 = 475.05… → 475 bps
    amount_in = 1_000 * 10**9
    split = best_split([curve("a", pool(), amount_in), curve("b", pool(), amount_in)])
    assert (split.share, split.steps, split.amount_out) == (50, 100, 142_516_966_304)
    plan, _ = plan_for({"a": pool(), "b": pool()}, amount_in)
    assert plan.best_single_amount_out == 136_053_648_556
    assert plan.expected_amount_out == 142_516_966_304
    assert [leg.amount_in for leg in plan.legs] == [500 * 10**9, 500 * 10**9]
    assert [leg.expected_amount_out for leg in plan.legs] == [71_258_483_152, 71_258_483_152]
    assert plan.reason == "split 50/100 beats a alone by 475 bps"


def test_a_pool_twice_as_deep_takes_two_thirds_hand_checked() -> None:
    # At the optimum the marginal outputs meet. For a constant-product pool with input fee
    # factor γ, d out / d a = γ·x·y / (x + γa)². Same price, pool 2 twice as deep (x₂ = 2x₁,
    # y₂ = 2y₁, so √(x₂y₂) = 2√(x₁y₁)): √k₁ / (x₁ + γa₁) = √k₂ / (x₂ + γa₂)
    #   ⇒ 2x₁ + γa₂ = 2(x₁ + γa₁) ⇒ a₂ = 2a₁: one third to the shallow pool, 33.3 of 100 steps.
    amount_in = 1_000 * 10**9
    split = best_split([curve("shallow", pool(1), amount_in), curve("deep", pool(2), amount_in)])
    assert abs(split.share - Decimal(STEPS) / 3) <= 1
    assert split.share == 33  # the nearest grid point: 144_809_839_789 vs 144_809_163_610 at 34


def _optimal_first_share(x1: int, y1: int, x2: int, y2: int, amount_in: int, fee_bps: int = 25) -> Decimal:
    """Closed-form optimum of a₁ (as a fraction of the order in steps) from the equal-marginal
    condition √k₁ (x₂ + γ(A − a₁)) = √k₂ (x₁ + γa₁), solved for a₁."""
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
    split = best_split([curve("first", first, amount_in), curve("second", second, amount_in)])
    optimum = _optimal_first_share(first.reserve_x, first.reserve_y, second.reserve_x, second.reserve_y, amount_in)
    assert 1 < optimum < STEPS - 1
    assert abs(split.share - optimum) <= 1


def test_the_split_equalises_marginal_prices() -> None:
    # 1,000 SOL between a 10,000 SOL pool at 150 and a 20,000 SOL pool at 152.
    first, second = pool(), ConstantProductPool(SOL.mint, USDC.mint, 20_000 * 10**9, 3_040_000 * 10**6)
    amount_in = 1_000 * 10**9
    plan, _ = plan_for({"first": first, "second": second}, amount_in)
    assert len(plan.legs) == 2
    one_sol = 10**9
    # What the last SOL of each leg brought.
    marginal = [
        p.quote(SOL.mint, leg.amount_in).amount_out - p.quote(SOL.mint, leg.amount_in - one_sol).amount_out
        for p, leg in zip((first, second), plan.legs)
    ]
    # Within one step (10 SOL) of the optimum the marginals differ by about 2·10/10,000 ≈ 0.2 %.
    assert abs(marginal[0] - marginal[1]) * 1_000 < 3 * max(marginal)
    # And moving one step from one leg to the other never helps (a local and, as both are
    # concave, global optimum of the grid).
    first_curve, second_curve = curve("first", first, amount_in), curve("second", second, amount_in)
    share = plan.legs[0].amount_in * STEPS // amount_in
    around = {s: first_curve.amounts_out[s] + second_curve.amounts_out[STEPS - s] for s in (share - 1, share, share + 1)}
    assert around[share] == max(around.values()) == plan.expected_amount_out


# --- plan_route on the engine's own simulated market (Raydium vs Meteora DLMM) ---------------


async def _market_plan(amount_in: int, slippage_bps: int = 50, floor: int = 0):
    ctx = fake_context()
    quotes, failures = await ctx.venues.quote_all(SOL.mint, USDC.mint, amount_in)
    assert failures == [] and len(quotes) == 2
    curves = [ctx.venues.curve(q.venue, SOL.mint, USDC.mint, amount_in, STEPS) for q in quotes]
    return plan_route(quotes, curves, SOL.mint, USDC.mint, slippage_bps, floor), quotes, ctx


@pytest.mark.parametrize("amount_in", [2_000 * 10**9, 1_999_999_999_999, 3_000 * 10**9 + 7])
async def test_a_large_order_splits_for_more_than_either_venue_alone(amount_in: int) -> None:
    plan, quotes, ctx = await _market_plan(amount_in)
    best_single = max(q.amount_out for q in quotes)
    assert plan.venue == "split" and len(plan.legs) == 2
    assert plan.expected_amount_out > best_single
    assert plan.best_single_amount_out == best_single
    assert sum(leg.amount_in for leg in plan.legs) == plan.amount_in == amount_in
    assert all(leg.amount_in > 0 for leg in plan.legs)
    assert plan.expected_amount_out == sum(leg.expected_amount_out for leg in plan.legs)
    gain = advantage_bps(plan.expected_amount_out, best_single)
    assert gain > 0 and plan.reason.endswith(f"alone by {gain} bps")
    # Each leg's expected output is what its pool really gives for the leg (never more).
    for leg in plan.legs:
        real = ctx.venues.outcome(leg.venue, SOL.mint, USDC.mint, leg.amount_in).amount_out
        assert real - 2 <= leg.expected_amount_out <= real  # the last lamport of the second leg goes unpriced


@pytest.mark.parametrize("amount_in", [10**9, 5 * 10**9, 100 * 10**9])
async def test_a_small_order_stays_on_one_venue(amount_in: int) -> None:
    plan, quotes, _ = await _market_plan(amount_in)
    best = max(quotes, key=lambda q: q.amount_out)
    assert [(leg.venue, leg.amount_in, leg.expected_amount_out) for leg in plan.legs] == [
        (best.venue, amount_in, best.amount_out)
    ]
    assert plan.reason == "highest net amount out"
    assert plan.expected_amount_out == plan.best_single_amount_out


async def test_quote_takes_no_curves_for_an_order_too_small_to_move_prices() -> None:
    """Two equal pools would 'gain' from splitting even 1 SOL (half the impact, ~0.5 bps), so
    the engine only offers route a split when some venue's impact reaches 5 bps."""
    ctx = fake_context()

    async def routed_with(amount: str):
        new = NewOrder(MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount=amount), "c", amount)
        return await quote.handle(await intake.handle(new, ctx), ctx)

    small = await routed_with("1")
    assert max(Decimal(q.price_impact) for q in small.quotes) < quote.SPLIT_MIN_IMPACT
    assert small.curves == []
    large = await routed_with("2000")
    assert [len(c.amounts_out) for c in large.curves] == [STEPS + 1, STEPS + 1]


async def test_route_reports_the_split_gain_over_the_best_single_venue() -> None:
    ctx = fake_context()
    new = NewOrder(MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="2000"), "c", "k")
    to_route = await quote.handle(await intake.handle(new, ctx), ctx)
    execute_request = await route.handle(to_route, ctx)
    routed = (await ctx.orders.events(execute_request.order_id))[-1]
    plan = execute_request.plan
    assert routed.status == "routed" and routed.data["venue"] == "split"
    assert routed.data["splitGainBps"] == advantage_bps(plan.expected_amount_out, plan.best_single_amount_out) > 0
    assert routed.data["expectedAmountOut"] - routed.data["bestSingleAmountOut"] > 0
    shares = [Decimal(leg["sharePct"]) for leg in routed.data["legs"]]
    assert sum(shares) == 100


def test_a_venue_that_cannot_fill_is_never_part_of_a_split() -> None:
    amount_in = 1_000 * 10**9
    good = curve("good", pool(), amount_in)
    dry = QuoteCurve("dry", "dry-pool", STEPS, [0] * (STEPS + 1))  # every size failed
    plan = plan_route([single("good", pool(), amount_in)], [good, dry], SOL.mint, USDC.mint, 50)
    assert [leg.venue for leg in plan.legs] == ["good"]


def test_no_split_without_two_comparable_curves() -> None:
    amount_in = 1_000 * 10**9
    assert best_split([]) is None
    assert best_split([curve("a", pool(), amount_in)]) is None
    assert best_split([curve("a", pool(), amount_in), curve("b", pool(), amount_in, steps=50)]) is None


# --- each leg's minimum ------------------------------------------------------------------------


def test_each_leg_keeps_its_own_slippage_bound() -> None:
    plan, _ = plan_for({"a": pool(), "b": pool()}, 1_000 * 10**9, slippage_bps=100)
    # floor(71_258_483_152 · 9_900 / 10_000) = floor(70_545_898_320.48) = 70_545_898_320
    assert [leg.min_amount_out for leg in plan.legs] == [70_545_898_320, 70_545_898_320]
    assert plan.min_amount_out == 2 * 70_545_898_320


def test_a_limit_floor_is_shared_between_the_legs_and_never_undershot() -> None:
    amount_in = 1_000 * 10**9
    # A floor of 142_516_966_000 with full slippage: each leg must bring its share of it,
    # ceil(142_516_966_000 · 71_258_483_152 / 142_516_966_304) = 71_258_483_000.
    plan, _ = plan_for({"a": pool(), "b": pool()}, amount_in, slippage_bps=10_000, floor=142_516_966_000)
    assert [leg.min_amount_out for leg in plan.legs] == [71_258_483_000, 71_258_483_000]
    assert plan.min_amount_out >= 142_516_966_000
    assert all(leg.min_amount_out <= leg.expected_amount_out for leg in plan.legs)


async def test_split_leg_minimums_on_the_simulated_market_cover_the_floor() -> None:
    amount_in = 2_000 * 10**9
    probe, _, _ = await _market_plan(amount_in)
    floor = probe.expected_amount_out - 12_345  # an uneven floor just under what the split gives
    plan, _, _ = await _market_plan(amount_in, slippage_bps=10_000, floor=floor)
    assert len(plan.legs) == 2
    assert plan.min_amount_out >= floor
    assert plan.min_amount_out - floor <= len(plan.legs)  # rounding each share up costs < 1 unit a leg
    assert all(leg.min_amount_out <= leg.expected_amount_out for leg in plan.legs)
    assert all(leg.min_amount_out >= min_amount_out(leg.expected_amount_out, 10_000) for leg in plan.legs)
