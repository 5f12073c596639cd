"""Jupiter's quote as pure code (shared/domain/jupiter.py): a plan written as a QuoteResponse and
read back, each refusal naming its field; venue labels; amounts in base units; the slot clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from shared.domain.errors import FieldError
from shared.domain.jupiter import (
    SLOT_EPOCH, check_age, check_pools, leg_minimums, parse_base_units, percents, quote_response, read_quote, slot_at,
    venues_for,
)
from shared.domain.market import pool_address
from shared.domain.messages import Leg, Plan, QuoteResponse
from shared.domain.swap import SwapOutcome
from shared.domain.tokens import SOL, USDC, TokenRegistry

RAYDIUM_POOL = pool_address("raydium", SOL.mint, USDC.mint)
METEORA_POOL = pool_address("meteora", SOL.mint, USDC.mint)
POOLS = {"raydium": RAYDIUM_POOL, "meteora": METEORA_POOL}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKENS = TokenRegistry()


def split_plan() -> Plan:
    """3,000 SOL: 1,200 on Raydium, 1,800 on Meteora."""
    legs = [Leg("raydium", RAYDIUM_POOL, 1_200_000_000_000, 170_000_000_000, 169_150_000_000),
            Leg("meteora", METEORA_POOL, 1_800_000_000_000, 260_000_000_000, 258_700_000_000)]
    return Plan(SOL.mint, USDC.mint, 3_000_000_000_000, 430_000_000_000, 427_850_000_000, "split 40%/60%", legs,
                best_single_amount_out=425_000_000_000)


OUTCOMES = [SwapOutcome(1_200_000_000_000, 170_000_000_000, 3_000_000_000, Decimal("0.02")),
            SwapOutcome(1_800_000_000_000, 260_000_000_000, 1_800_000_000, Decimal("0.01"))]


def quote_json(**changes) -> dict:
    """The split plan as a quote, as a client would send it back (JSON), with `changes` made."""
    quote = msgspec.to_builtins(quote_response(split_plan(), OUTCOMES, 50, slot_at(NOW), 0.012))
    for path, value in changes.items():
        target, *keys = path.split("__")
        node = quote
        for key in [target, *keys][:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[[target, *keys][-1]] = value
    return quote


def read(quote: dict):
    return read_quote(msgspec.convert(quote, QuoteResponse), TOKENS)


# --- writing a plan as a quote ---------------------------------------------------------------------


def test_a_split_plan_is_jupiters_quote_with_one_leg_per_venue():
    quote = quote_json()
    assert (quote["inAmount"], quote["outAmount"], quote["otherAmountThreshold"]) == (
        "3000000000000", "430000000000", "427850000000")
    assert (quote["swapMode"], quote["slippageBps"], quote["platformFee"]) == ("ExactIn", 50, None)
    assert quote["priceImpactPct"] == "0.014000000000"  # 0.02 × 40 % + 0.01 × 60 %
    assert quote["contextSlot"] == slot_at(NOW) and quote["timeTaken"] == 0.012
    assert [step["percent"] for step in quote["routePlan"]] == [40, 60]
    assert quote["routePlan"][1]["swapInfo"] == {
        "ammKey": METEORA_POOL, "label": "meteora", "inputMint": SOL.mint, "outputMint": USDC.mint,
        "inAmount": "1800000000000", "outAmount": "260000000000", "feeAmount": "1800000000", "feeMint": SOL.mint}


@pytest.mark.parametrize(("parts", "whole", "shares"), [
    ([1], 1, [100]), ([1, 2], 3, [33, 67]), ([1, 1], 2, [50, 50]), ([3, 997], 1000, [0, 100]), ([995, 5], 1000, [100, 0]),
])
def test_percents_add_up_to_100_the_last_leg_taking_the_rounding(parts, whole, shares):
    assert percents(parts, whole) == shares


# --- reading a quote back ----------------------------------------------------------------------------


def test_a_quote_reads_back_into_its_plan_with_the_threshold_shared_by_output():
    quoted = read(quote_json())
    plan = quoted.plan
    assert (quoted.slippage_bps, quoted.context_slot) == (50, slot_at(NOW))
    assert (plan.amount_in, plan.expected_amount_out, plan.min_amount_out) == (
        3_000_000_000_000, 430_000_000_000, 427_850_000_000)
    assert [(leg.venue, leg.pool, leg.amount_in, leg.expected_amount_out) for leg in plan.legs] == [
        ("raydium", RAYDIUM_POOL, 1_200_000_000_000, 170_000_000_000),
        ("meteora", METEORA_POOL, 1_800_000_000_000, 260_000_000_000)]
    # 427,850,000,000 × 170/430 = 169,150,000,000 exactly; Meteora's the rest.
    assert [leg.min_amount_out for leg in plan.legs] == [169_150_000_000, 258_700_000_000]


def test_leg_minimums_round_down_and_add_up_to_the_threshold():
    assert leg_minimums(100, [1, 1, 1]) == [33, 33, 34]
    assert leg_minimums(0, [5, 7]) == [0, 0]
    assert leg_minimums(12, [12]) == [12]


def test_jupiters_labels_and_the_engines_are_the_same_venues():
    quote = quote_json(routePlan__0__swapInfo__label="Raydium", routePlan__1__swapInfo__label="Meteora DLMM")
    assert [leg.venue for leg in read(quote).plan.legs] == ["raydium", "meteora"]


def test_a_quote_without_fee_fields_is_read_as_jupiters_client_sends_it_back():
    """@jup-ag/api's SwapInfo keeps ammKey, label, mints and amounts only."""
    quote = quote_json()
    for step in quote["routePlan"]:
        del step["swapInfo"]["feeAmount"], step["swapInfo"]["feeMint"]
    assert read(quote).plan == read(quote_json()).plan


LEG = "quoteResponse.routePlan[{}].swapInfo.{}"


@pytest.mark.parametrize(("changes", "field"), [
    ({"swapMode": "ExactOut"}, "quoteResponse.swapMode"),
    ({"inputMint": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"}, "quoteResponse.inputMint"),
    ({"outputMint": SOL.mint}, "quoteResponse.outputMint"),
    ({"inAmount": "0"}, "quoteResponse.inAmount"),
    ({"outAmount": "0"}, "quoteResponse.outAmount"),
    ({"inAmount": "99999999999999999999"}, "quoteResponse.inAmount"),  # beyond u64
    ({"otherAmountThreshold": "430000000001"}, "quoteResponse.otherAmountThreshold"),
    ({"contextSlot": None}, "quoteResponse.contextSlot"),
    ({"routePlan": []}, "quoteResponse.routePlan"),
    ({"inAmount": "3000000000001"}, "quoteResponse.inAmount"),  # the legs add up to 3,000 SOL
    ({"outAmount": "430000000001"}, "quoteResponse.outAmount"),
    ({"routePlan__0__percent": 41}, "quoteResponse.routePlan"),
    ({"routePlan__1__swapInfo__inputMint": USDC.mint}, LEG.format(1, "inputMint")),  # a hop, not a direct leg
    ({"routePlan__0__swapInfo__outputMint": SOL.mint}, LEG.format(0, "outputMint")),
    ({"routePlan__0__swapInfo__label": "Orca"}, LEG.format(0, "label")),
    ({"routePlan__0__swapInfo__label": None}, LEG.format(0, "label")),
    ({"routePlan__1__swapInfo__label": "raydium"}, LEG.format(1, "ammKey")),  # the same pool twice
    ({"routePlan__0__swapInfo__inAmount": "0"}, LEG.format(0, "inAmount")),
    ({"routePlan__1__swapInfo__outAmount": "0"}, LEG.format(1, "outAmount")),
    ({"routePlan__0__swapInfo__feeMint": "JUPyiwrYJFskUPiHa7hetR8VUFEUuLQ5x7GFPYZ6cV4N"}, LEG.format(0, "feeMint")),
])
def test_a_quote_that_does_not_add_up_is_refused_naming_the_field(changes, field):
    with pytest.raises(FieldError) as caught:
        read(quote_json(**changes))
    assert caught.value.field == field, caught.value.message


def test_each_pool_must_be_its_venues_pool_for_the_pair():
    plan = read(quote_json()).plan
    check_pools(plan, POOLS)
    with pytest.raises(FieldError) as caught:
        check_pools(plan, {**POOLS, "meteora": pool_address("meteora", SOL.mint, "other")})
    assert caught.value.field == LEG.format(1, "ammKey")
    with pytest.raises(FieldError) as caught:
        check_pools(plan, {"meteora": METEORA_POOL})  # a pair only Meteora trades
    assert caught.value.field == LEG.format(0, "label")


# --- dates, labels, units ----------------------------------------------------------------------------


def test_slots_are_400_ms_since_the_epoch():
    assert slot_at(SLOT_EPOCH) == 0
    assert slot_at(SLOT_EPOCH + timedelta(milliseconds=399)) == 0
    assert slot_at(SLOT_EPOCH + timedelta(seconds=4)) == 10
    assert slot_at(NOW + timedelta(seconds=30)) - slot_at(NOW) == 75


@pytest.mark.parametrize(("age_s", "fresh"), [(0, True), (29.6, True), (30, True), (30.4, False), (3600, False),
                                              (-2, True), (-2.4, False)])
def test_a_quote_is_executed_up_to_its_maximum_age_and_never_from_the_future(age_s, fresh):
    priced_at = slot_at(NOW)
    now = NOW + timedelta(seconds=age_s)
    if fresh:
        check_age(priced_at, now, max_age_s=30)
    else:
        with pytest.raises(FieldError) as caught:
            check_age(priced_at, now, max_age_s=30)
        assert caught.value.field == "quoteResponse.contextSlot"


@pytest.mark.parametrize(("dexes", "exclude", "venues"), [
    (None, None, None),
    (["raydium"], None, ["raydium"]),
    (["Meteora DLMM"], None, ["meteora"]),
    (["raydium,meteora"], None, None),
    (["Raydium", "METEORA"], None, None),
    (None, ["meteora"], ["raydium"]),
    (["raydium", "meteora"], ["Raydium"], ["meteora"]),
    ([""], [" "], None),
])
def test_dexes_and_exclude_dexes_choose_the_venues(dexes, exclude, venues):
    assert venues_for(dexes, exclude) == venues


@pytest.mark.parametrize(("dexes", "exclude", "field"), [
    (["Orca"], None, "dexes"), (None, ["raydium,Whirlpool"], "excludeDexes"), (["raydium"], ["raydium"], "excludeDexes"),
])
def test_an_unknown_dex_or_none_left_is_refused(dexes, exclude, field):
    with pytest.raises(FieldError) as caught:
        venues_for(dexes, exclude)
    assert caught.value.field == field


@pytest.mark.parametrize("text", ["1.5", "", "-1", "+1", "1e9", " 1", "٣", "0", "18446744073709551616"])
def test_amounts_in_base_units_are_positive_u64_digits(text):
    with pytest.raises(FieldError) as caught:
        parse_base_units("amount", text)
    assert caught.value.field == "amount"


def test_amounts_in_base_units():
    assert parse_base_units("amount", "1500000000") == 1_500_000_000
    assert parse_base_units("amount", "18446744073709551615") == 2**64 - 1
    assert parse_base_units("otherAmountThreshold", "0", minimum=0) == 0
