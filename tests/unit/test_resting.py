"""shared/domain/resting.py: expiry, limit crossing, the limit's floor on a fill, a sniper's safety checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.errors import FieldError
from shared.domain.prices import price_of_base
from shared.domain.raydium import ConstantProductPool
from shared.domain.resting import MAX_LIFETIME, Launch, crossed, expired, floor_amount_out, launch_refusal, parse_expiry
from shared.domain.tokens import BONK, SOL, USDC, parse_price

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


# --- parse_expiry --------------------------------------------------------------------------


def test_a_small_integer_is_seconds_from_now() -> None:
    assert parse_expiry("expiresAt", 60, NOW) == NOW + timedelta(seconds=60)


def test_an_integer_from_10_to_the_9_is_unix_seconds() -> None:
    unix = int((NOW + timedelta(hours=1)).timestamp())
    assert parse_expiry("expiresAt", unix, NOW) == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T13:00:00Z", NOW + timedelta(hours=1)),
        ("2026-11-25T13:00:00", NOW + timedelta(hours=1)),  # no offset: UTC
        ("2026-11-25T15:00:00+02:00", NOW + timedelta(hours=1)),
        ("2026-11-25T12:00:00.000001Z", NOW + MICROSECOND),  # the earliest moment still in the future
    ],
)
def test_iso_times_are_read_in_utc(text: str, expected: datetime) -> None:
    moment = parse_expiry("expiresAt", text, NOW)
    assert moment == expected and moment.tzinfo is not None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-11-25T12:00:00Z", "in the past"),  # exactly now is not in the future
        ("2026-11-25T11:59:59.999999Z", "in the past"),
        (1_000_000_000, "in the past"),  # 2001 as Unix seconds, not 31 years from now
        (0, "in the past"),
        (-5, "in the past"),
        (999_999_999, "days away"),  # relative, but ~31.7 years away
        ("tomorrow", "ISO 8601"),
        ("", "ISO 8601"),
        (10**30, "ISO 8601"),  # beyond what a datetime can hold
    ],
)
def test_bad_expiries_are_refused_naming_the_field(value, why: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_expiry("expiresAt", value, NOW)
    assert caught.value.field == "expiresAt"
    assert why in caught.value.message


def test_lifetime_is_at_most_thirty_days_to_the_microsecond() -> None:
    assert MAX_LIFETIME == timedelta(days=30)
    limit = NOW + MAX_LIFETIME
    assert parse_expiry("expiresAt", limit.isoformat(), NOW) == limit
    assert parse_expiry("expiresAt", int(MAX_LIFETIME.total_seconds()), NOW) == limit
    with pytest.raises(FieldError, match="30 days"):
        parse_expiry("expiresAt", (limit + MICROSECOND).isoformat(), NOW)
    with pytest.raises(FieldError, match="30 days"):
        parse_expiry("expiresAt", int(MAX_LIFETIME.total_seconds()) + 1, NOW)


# --- expired: the boundary the trigger function decides on ----------------------------------


@pytest.mark.parametrize(
    ("now", "is_expired"),
    [(NOW - MICROSECOND, False), (NOW, True), (NOW + MICROSECOND, True)],
)
def test_an_order_expires_at_exactly_its_expiry(now: datetime, is_expired: bool) -> None:
    assert expired(NOW, now) is is_expired


# --- crossed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "limit", "executable", "fires"),
    [
        ("sell", "180.5", "180.6", True),  # above a sell limit: fires
        ("sell", "180.5", "180.5", True),  # equal: fires
        ("sell", "180.5", "180.50", True),  # equal, other spelling
        ("sell", "180.5", "180.499999999", False),
        ("buy", "180.5", "180.4", True),  # below a buy limit: fires
        ("buy", "180.5", "180.5", True),  # equal: fires
        ("buy", "180.5", "180.500", True),
        ("buy", "180.5", "180.500000001", False),
    ],
)
def test_limit_crossing_on_both_sides(side: str, limit: str, executable: str, fires: bool) -> None:
    assert crossed(side, Decimal(limit), Decimal(executable)) is fires


def _pool() -> ConstantProductPool:
    # 10,000 SOL against 1,500,000 USDC: spot 150 USDC/SOL, 25 bps fee.
    return ConstantProductPool(SOL.mint, USDC.mint, 10_000 * 10**9, 1_500_000 * 10**6)


def test_a_sell_limit_is_judged_at_the_price_for_its_size_not_spot() -> None:
    pool, limit = _pool(), Decimal(149)
    # 1 SOL gets 149_610_076 (149.61 USDC/SOL); 1,000 SOL get 136_053_648_556 (136.05 USDC/SOL).
    small = price_of_base("sell", SOL, USDC, 10**9, pool.quote(SOL.mint, 10**9).amount_out)
    large = price_of_base("sell", SOL, USDC, 10**12, pool.quote(SOL.mint, 10**12).amount_out)
    assert (small, large) == (Decimal("149.610076"), Decimal("136.053648556"))
    assert crossed("sell", limit, small) and not crossed("sell", limit, large)


def test_a_buy_limit_is_judged_at_the_price_for_its_size_not_spot() -> None:
    pool, limit = _pool(), Decimal(151)
    small_in, large_in = 150 * 10**6, 150_000 * 10**6  # 150 USDC and 150,000 USDC
    small = price_of_base("buy", SOL, USDC, small_in, pool.quote(USDC.mint, small_in).amount_out)
    large = price_of_base("buy", SOL, USDC, large_in, pool.quote(USDC.mint, large_in).amount_out)
    assert Decimal("150.39") < small < Decimal("150.40") and Decimal("165.37") < large < Decimal("165.38")
    assert crossed("buy", limit, small) and not crossed("buy", limit, large)


# --- floor_amount_out ------------------------------------------------------------------------


def test_floor_of_a_sell_at_the_limit_hand_checked() -> None:
    # 180.5 USDC/SOL = 180.5 · 10^6 / 10^9 = 0.1805 USDC units per lamport.
    # 1.5 SOL = 1_500_000_000 lamports · 0.1805 = 270_750_000 exactly (270.75 USDC).
    assert floor_amount_out("sell", 1_500_000_000, Decimal("180.5"), SOL, USDC) == 270_750_000


@pytest.mark.parametrize(
    ("lamports", "limit", "floor"),
    [
        # 1_000_000_001 lamports · 0.1805 = 180_500_000.1805 → 180_500_001: 180_500_000 would be
        # 180.5 USDC for slightly more than 1 SOL, a price below the limit.
        (1_000_000_001, "180.5", 180_500_001),
        # 1 lamport at 180.5555555 USDC/SOL = 0.1805555555 USDC units: rounded up to 1, never down to 0.
        (1, "180.5555555", 1),
    ],
)
def test_floor_of_a_sell_rounds_up(lamports: int, limit: str, floor: int) -> None:
    assert floor_amount_out("sell", lamports, Decimal(limit), SOL, USDC) == floor


def test_floor_of_a_buy_at_the_limit_hand_checked() -> None:
    # Spending 180.5 USDC at ≤ 180.5 USDC/SOL: 180_500_000 / 0.1805 = 1_000_000_000 lamports.
    assert floor_amount_out("buy", 180_500_000, Decimal("180.5"), SOL, USDC) == 1_000_000_000


@pytest.mark.parametrize(
    ("limit", "floor"),
    [
        # 100 USDC: 100_000_000 / 0.1805 = 554_016_620.498… → 554_016_621. Getting 554_016_620
        # lamports would mean paying 180.50000016… USDC/SOL, above the limit.
        ("180.5", 554_016_621),
        # 100 USDC at 150 USDC/SOL = 0.6666…667 SOL: 666_666_666.67 lamports → 666_666_667; a fill of
        # 666_666_666 lamports would be a price of 150.0000002 USDC/SOL.
        ("150", 666_666_667),
    ],
)
def test_floor_of_a_buy_rounds_up(limit: str, floor: int) -> None:
    assert floor_amount_out("buy", 100_000_000, Decimal(limit), SOL, USDC) == floor


def test_floor_where_the_quote_token_has_more_decimals_than_the_base() -> None:
    # BONK (5 decimals) for SOL (9): 0.00000015 SOL/BONK = 1.5e-7 · 10^4 = 0.0015 lamports per
    # BONK unit; selling 1,000,000 BONK = 10^11 units must bring 1.5e8 lamports (0.15 SOL).
    assert floor_amount_out("sell", 10**11, Decimal("0.00000015"), BONK, SOL) == 150_000_000


def _ui_price(side: str, amount_in: int, amount_out: int) -> Fraction:
    """Exact USDC per SOL of a SOL/USDC fill."""
    sol, usdc = (amount_in, amount_out) if side == "sell" else (amount_out, amount_in)
    return Fraction(usdc, 10**6) / Fraction(sol, 10**9)


@given(
    side=st.sampled_from(["sell", "buy"]),
    amount_in=st.integers(1, 20_000 * 10**9),
    cents=st.integers(1, 10**12),
)
def test_the_floor_is_the_least_output_not_worse_than_the_limit(side: str, amount_in: int, cents: int) -> None:
    """At the floor the fill is at the limit or better; one base unit less is worse."""
    limit = Decimal(cents).scaleb(-6)  # up to 1,000,000 USDC/SOL with 6 decimals
    floor = floor_amount_out(side, amount_in, limit, SOL, USDC)
    exact_limit = Fraction(limit)
    if side == "sell":
        assert _ui_price(side, amount_in, floor) >= exact_limit
        assert floor == 0 or _ui_price(side, amount_in, floor - 1) < exact_limit
    else:
        assert floor >= 1 and _ui_price(side, amount_in, floor) <= exact_limit
        assert floor == 1 or _ui_price(side, amount_in, floor - 1) > exact_limit


def test_the_floor_is_exact_for_every_price_parse_price_accepts() -> None:
    text = "180.500000000000000000000000001"  # 30 significant digits: parse_price accepts it
    limit = parse_price("limitPrice", text)
    amount_in = 10_000 * 10**9  # 10,000 SOL, within the largest order
    exact = math.ceil(Fraction(amount_in) * Fraction(text) * Fraction(10**6, 10**9))  # 1_805_000_000_001
    assert floor_amount_out("sell", amount_in, limit, SOL, USDC) == exact


# --- launch_refusal (sniper safety checks) ---------------------------------------------------


def _launch(liquidity: str = "100", price: str = "0.001", impact_bps: int = 50) -> Launch:
    return Launch("raydium", Decimal(liquidity), Decimal(price), impact_bps)


def test_a_launch_without_conditions_is_accepted() -> None:
    assert launch_refusal({}, _launch()) is None
    # As intake stores them when the client gave none.
    assert launch_refusal({"minLiquidity": None, "maxPrice": None, "maxPriceImpactBps": None}, _launch()) is None


@pytest.mark.parametrize(
    ("conditions", "launch", "refusal"),
    [
        ({"minLiquidity": "50"}, _launch(liquidity="49.999999999"), "liquidity 49.999999999 below minLiquidity 50"),
        ({"minLiquidity": "50"}, _launch(liquidity="50"), None),
        ({"minLiquidity": "50"}, _launch(liquidity="50.000000001"), None),
        ({"maxPrice": "0.001"}, _launch(price="0.0009999"), None),
        ({"maxPrice": "0.001"}, _launch(price="0.001"), None),
        ({"maxPrice": "0.001"}, _launch(price="0.0010001"), "price 0.0010001 above maxPrice 0.001"),
        ({"maxPriceImpactBps": 100}, _launch(impact_bps=99), None),
        ({"maxPriceImpactBps": 100}, _launch(impact_bps=100), None),
        ({"maxPriceImpactBps": 100}, _launch(impact_bps=101), "price impact 101 bps above maxPriceImpactBps 100"),
    ],
)
def test_each_check_passes_at_its_bound_and_refuses_just_past_it(conditions, launch, refusal) -> None:
    assert launch_refusal(conditions, launch) == refusal


def test_a_zero_impact_cap_refuses_any_impact() -> None:
    assert launch_refusal({"maxPriceImpactBps": 0}, _launch(impact_bps=0)) is None
    assert launch_refusal({"maxPriceImpactBps": 0}, _launch(impact_bps=1)) is not None


def test_every_check_must_pass_and_the_first_failure_is_reported() -> None:
    conditions = {"minLiquidity": "50", "maxPrice": "0.001", "maxPriceImpactBps": 100}
    assert launch_refusal(conditions, _launch("50", "0.001", 100)) is None
    assert launch_refusal(conditions, _launch("10", "0.5", 900)).startswith("liquidity")
    assert launch_refusal(conditions, _launch("50", "0.5", 900)).startswith("price 0.5")
    assert launch_refusal(conditions, _launch("50", "0.001", 900)).startswith("price impact")


def test_unreadable_conditions_refuse_rather_than_buy() -> None:
    assert launch_refusal({"minLiquidity": "lots"}, _launch()) == "unreadable conditions"
    assert launch_refusal({"maxPrice": "cheap"}, _launch()) == "unreadable conditions"
