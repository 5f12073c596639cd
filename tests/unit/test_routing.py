"""Venue choice: most output, then liquidity, then latency; slippage thresholds."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.messages import VenueQuote
from shared.routing import NoRoute, advantage_bps, choose_venue, min_amount_out


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
