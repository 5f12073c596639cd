"""When a limit order fires, what it may accept, when it expires, and a sniper's safety checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.errors import FieldError
from shared.domain.tokens import SOL, USDC
from shared.domain.tokens import parse_price
from shared.domain.resting import Launch, crossed, expired, floor_amount_out, launch_refusal, parse_expiry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


# --- crossing -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("side", "limit", "price", "fires"),
    [
        ("sell", "180.5", "180.49", False),  # a sell waits for the price to rise to its limit
        ("sell", "180.5", "180.5", True),  # equal fires
        ("sell", "180.5", "181", True),  # passed fires
        ("buy", "140", "140.01", False),  # a buy waits for the price to fall to its limit
        ("buy", "140", "140", True),
        ("buy", "140", "139", True),
    ],
)
def test_limit_crossing_on_both_sides(side, limit, price, fires):
    assert crossed(side, Decimal(limit), Decimal(price)) is fires


# --- the floor a triggered order carries ----------------------------------------------------

def test_sell_floor_is_amount_times_limit_in_quote_units():
    # 1.5 SOL at 180.5 USDC/SOL = 270.75 USDC = 270,750,000 micro-USDC, exactly.
    assert floor_amount_out("sell", 1_500_000_000, Decimal("180.5"), SOL, USDC) == 270_750_000


def test_buy_floor_rounds_up_so_a_worse_fill_never_passes():
    # 100 USDC at 150 USDC/SOL = 0.6666…667 SOL: 666,666,666.67 lamports → 666,666,667.
    floor = floor_amount_out("buy", 100_000_000, Decimal(150), SOL, USDC)
    assert floor == 666_666_667
    # A fill of 666,666,666 lamports would be a price of 150.0000002 USDC/SOL: worse than the limit.
    assert Decimal(100) / (Decimal(floor - 1) / 10**9) > 150
    assert Decimal(100) / (Decimal(floor) / 10**9) <= 150


def test_sell_floor_rounds_up_on_an_inexact_product():
    # 1 lamport at 180.5555555 USDC/SOL = 0.1805555555 micro-USDC: rounded up to 1, never down to 0.
    assert floor_amount_out("sell", 1, Decimal("180.5555555"), SOL, USDC) == 1


# --- expiry ---------------------------------------------------------------------------------

def test_expiry_boundary_is_inclusive():
    at = NOW + timedelta(seconds=60)
    assert not expired(at, at - timedelta(microseconds=1))
    assert expired(at, at)
    assert expired(at, at + timedelta(microseconds=1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (60, NOW + timedelta(seconds=60)),  # under 10⁹: seconds from now
        (int((NOW + timedelta(hours=1)).timestamp()), NOW + timedelta(hours=1)),  # Unix seconds
        ("2026-11-25T13:00:00Z", NOW + timedelta(hours=1)),
        ("2026-11-25T13:00:00", NOW + timedelta(hours=1)),  # no offset: UTC
        ("2026-11-25T14:00:00+01:00", NOW + timedelta(hours=1)),
    ],
)
def test_expiry_forms(value, expected):
    assert parse_expiry("expiresAt", value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-11-25T11:59:59Z", 0, -5, "2027-06-01T00:00:00Z"])
def test_bad_expiries_name_the_field(value):
    with pytest.raises(FieldError) as caught:
        parse_expiry("expiresAt", value, NOW)
    assert caught.value.field == "expiresAt"


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1e3", "NaN", "Infinity", "", "180.5\n", " 180.5"])
def test_bad_prices_name_the_field(text):
    with pytest.raises(FieldError) as caught:
        parse_price("limitPrice", text)
    assert caught.value.field == "limitPrice"


def test_a_good_price_is_exact():
    assert parse_price("limitPrice", "180.5") == Decimal("180.5")


# --- sniper safety checks -------------------------------------------------------------------

LAUNCH = Launch(venue="meteora", liquidity_quote=Decimal(100), price=Decimal("0.0001"), price_impact_bps=120)


def test_a_launch_passing_every_check_is_accepted_at_the_boundaries():
    conditions = {"minLiquidity": "100", "maxPrice": "0.0001", "maxPriceImpactBps": 120}
    assert launch_refusal(conditions, LAUNCH) is None
    assert launch_refusal({}, LAUNCH) is None


@pytest.mark.parametrize(
    ("conditions", "word"),
    [
        ({"minLiquidity": "100.000001"}, "minLiquidity"),
        ({"maxPrice": "0.0000999"}, "maxPrice"),
        ({"maxPriceImpactBps": 119}, "maxPriceImpactBps"),
    ],
)
def test_a_launch_failing_a_check_is_refused_with_the_reason(conditions, word):
    refusal = launch_refusal(conditions, LAUNCH)
    assert refusal is not None and word in refusal
