"""Split routing: sharing a large order between two venues, found where their marginal
prices meet. Figures checked by hand on constant-product pools."""

from __future__ import annotations

from shared.messages import QuoteCurve, VenueQuote
from shared.routing import best_split, plan_route
from shared.venues.raydium import ConstantProductPool

X, Y = "MintX", "MintY"
STEPS = 100


def curve(venue: str, pool: ConstantProductPool, amount_in: int) -> QuoteCurve:
    outs = [0] + [pool.quote(X, amount_in * i // STEPS).amount_out for i in range(1, STEPS + 1)]
    return QuoteCurve(venue, f"{venue}-pool", STEPS, outs)


def quote(venue: str, pool: ConstantProductPool, amount_in: int, latency_ms: int = 100) -> VenueQuote:
    outcome = pool.quote(X, amount_in)
    return VenueQuote(venue, f"{venue}-pool", amount_in, outcome.amount_out, outcome.fee,
                      str(outcome.price_impact), pool.depth_y(), latency_ms)


def plan_for(pools: dict[str, ConstantProductPool], amount_in: int, slippage_bps: int = 50):
    quotes = [quote(v, p, amount_in) for v, p in pools.items()]
    curves = [curve(v, p, amount_in) for v, p in pools.items()]
    return plan_route(quotes, curves, X, Y, slippage_bps), quotes


def test_equal_pools_split_an_order_half_and_half_by_hand():
    # Two fee-less pools of 1,000,000 × 1,000,000. One pool alone, 1,000,000 in:
    #   out = 1e6·1e6 / (1e6 + 1e6) = 500,000.
    # Half in each: out = 2 · 1e6·5e5 / (1e6 + 5e5) = 2 · 333,333 = 666,666 (+33.3 %).
    pools = {v: ConstantProductPool(X, Y, 1_000_000, 1_000_000, fee_bps=0) for v in ("raydium", "meteora")}
    split = best_split([curve(v, p, 1_000_000) for v, p in pools.items()])
    assert split.share == 50
    assert split.amount_out == 666_666
    plan, _ = plan_for(pools, 1_000_000)
    assert [leg.amount_in for leg in plan.legs] == [500_000, 500_000]
    assert plan.expected_amount_out == 666_666 and plan.best_single_amount_out == 500_000
    assert "split 50/100" in plan.reason


def test_a_deeper_pool_takes_the_larger_share_where_marginal_prices_meet():
    # Pool A 3,000,000 deep, pool B 1,000,000 (both 1:1, no fee). Output of a in a pool of
    # depth R is R·a/(R+a); its marginal R²/(R+a)². Equal marginals (square roots):
    # 3e6/(3e6+a) = 1e6/(1e6+b) ⇒ 3e6(1e6+b) = 1e6(3e6+a) ⇒ a = 3b; with a + b = 1e6: a = 750,000.
    pools = {"raydium": ConstantProductPool(X, Y, 3_000_000, 3_000_000, fee_bps=0),
             "meteora": ConstantProductPool(X, Y, 1_000_000, 1_000_000, fee_bps=0)}
    plan, _ = plan_for(pools, 1_000_000)
    shares = {leg.venue: leg.amount_in for leg in plan.legs}
    assert shares == {"raydium": 750_000, "meteora": 250_000}
    # At the optimum, moving 1 % of the order either way gives less.

    def total(a: int) -> int:
        return pools["raydium"].quote(X, a).amount_out + pools["meteora"].quote(X, 1_000_000 - a).amount_out

    assert total(750_000) == plan.expected_amount_out
    assert total(740_000) < total(750_000) > total(760_000)


def test_a_split_beats_both_venues_on_a_large_order_and_reports_its_gain():
    pools = {"raydium": ConstantProductPool(X, Y, 10_000 * 10**9, 1_500_000 * 10**6),
             "meteora": ConstantProductPool(X, Y, 8_000 * 10**9, 1_196_000 * 10**6)}
    amount_in = 2_000 * 10**9  # 20 % of the deeper pool: heavy price impact
    plan, quotes = plan_for(pools, amount_in)
    assert len(plan.legs) == 2
    assert sum(leg.amount_in for leg in plan.legs) == amount_in
    assert plan.expected_amount_out > max(q.amount_out for q in quotes)
    assert plan.best_single_amount_out == max(q.amount_out for q in quotes)
    assert plan.min_amount_out == sum(leg.min_amount_out for leg in plan.legs)
    for leg in plan.legs:
        assert leg.min_amount_out == leg.expected_amount_out * 9_950 // 10_000


def test_a_small_order_is_not_split():
    pools = {"raydium": ConstantProductPool(X, Y, 10_000 * 10**9, 1_500_000 * 10**6),
             "meteora": ConstantProductPool(X, Y, 8_000 * 10**9, 1_196_000 * 10**6)}
    plan, quotes = plan_for(pools, 10**9)  # 1 unit: impact ~0.01 %, a second fee costs more than it saves
    assert len(plan.legs) == 1
    assert plan.expected_amount_out == max(q.amount_out for q in quotes)


def test_no_split_without_two_curves():
    pool = ConstantProductPool(X, Y, 1_000_000, 1_000_000)
    assert best_split([curve("raydium", pool, 10_000)]) is None
    assert best_split([]) is None


def test_a_limit_floor_is_shared_between_legs_rounding_up():
    pools = {v: ConstantProductPool(X, Y, 1_000_000, 1_000_000, fee_bps=0) for v in ("raydium", "meteora")}
    quotes = [quote(v, p, 1_000_000) for v, p in pools.items()]
    curves = [curve(v, p, 1_000_000) for v, p in pools.items()]
    plan = plan_route(quotes, curves, X, Y, slippage_bps=10_000, floor_amount_out=600_001)
    assert sum(leg.min_amount_out for leg in plan.legs) >= 600_001  # never under the floor in total
    assert all(leg.min_amount_out > 0 for leg in plan.legs)
