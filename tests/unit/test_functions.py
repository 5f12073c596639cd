"""The four functions on in-memory fakes: the business steps without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions import execute, intake, quote, route
from functions.desk import decode_order
from functions.pipeline import PIPELINE, RetryLater, give_up, run_attempt, step_for
from functions.intake import OrderRejected
from functions.quote import plan_quote
from shared.adapters.sim.memory_store import MemoryMarketStore
from shared.domain.clients import ApiClient
from shared.domain.errors import InputError
from shared.domain.jupiter import quote_response, slot_at
from shared.domain.market import pool_address
from shared.domain.messages import (
    ExecuteRequest, LimitOrderRequest, MarketOrderRequest, NewOrder, OrderRequest, QuoteOrder, SniperOrderRequest,
)
from shared.domain.views import order_view
from shared.settings import Settings, SimulationSettings
from shared.domain.states import Status
from shared.domain.errors import FieldError
from shared.domain.prices import price_of_base
from shared.domain.tokens import BONK, JUP, SOL, USDC, USDT, format_decimal
from tests.fakes import FixedClock, fake_context, fake_services


def sell_sol(amount: str = "1.5", key: str = "k1", **extra) -> NewOrder:
    request = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount=amount, **extra)
    return NewOrder(request, "client-a", key)


async def run_chain(ctx, message) -> str:
    """Each step's output into the next, as the chain table says; returns the order id."""
    order_id = None
    while message is not None:
        message = await PIPELINE[step_for(message)].handle(message, ctx)
        if message is not None:
            order_id = message.order_id
    return order_id


async def test_market_sell_goes_through_every_status_with_gapless_events():
    ctx = fake_context()
    order_id = await run_chain(ctx, sell_sol())
    events = await ctx.orders.events(order_id)
    assert [e.status for e in events] == ["pending", "routing", "routed", "building", "submitted", "confirmed"]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert ctx.publisher.events == events
    order = await ctx.orders.get(order_id)
    assert order.status == Status.CONFIRMED
    assert order.amount_out == events[-1].data["amountOut"] >= order.min_amount_out


async def test_sell_routes_to_venue_with_more_output():
    ctx = fake_context()
    order_id = await run_chain(ctx, sell_sol())
    routing, routed = (await ctx.orders.events(order_id))[1:3]
    best = max(routing.data["quotes"], key=lambda q: q["amountOut"])
    assert routed.data["venue"] == best["venue"]
    assert routed.data["expectedAmountOut"] == best["amountOut"]
    assert routed.data["reason"] == "highest net amount out"


async def test_min_amount_out_follows_the_order_slippage():
    ctx = fake_context()
    order_id = await run_chain(ctx, sell_sol(slippage_bps=100))
    routed = (await ctx.orders.events(order_id))[2]
    assert routed.data["minAmountOut"] == routed.data["expectedAmountOut"] * 9_900 // 10_000


async def test_an_explicit_min_amount_out_bounds_the_fill():
    ctx = fake_context()
    order_id = await run_chain(ctx, sell_sol(amount="1", min_amount_out="100", slippage_bps=10_000))
    routed, confirmed = (await ctx.orders.events(order_id))[2::3]
    assert routed.data["minAmountOut"] >= 100_000_000  # slippage alone would allow zero
    assert confirmed.status == "confirmed" and confirmed.data["amountOut"] >= 100_000_000


async def test_a_min_amount_out_no_venue_can_give_fails_at_routing_with_slippage():
    ctx = fake_context()
    order_id = await run_chain(ctx, sell_sol(amount="1", min_amount_out="1000"))  # 1 SOL never buys 1,000 USDC
    events = await ctx.orders.events(order_id)
    assert [e.status for e in events] == ["pending", "routing", "failed"]
    assert events[-1].data["error"] == "slippage" and events[-1].data["floorAmountOut"] == 1_000_000_000
    assert (await ctx.orders.get(order_id)).failure_reason == "slippage"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"base_asset": "DOGE"}, "baseAsset"),
        ({"quote_asset": "nope"}, "quoteAsset"),
        ({"quote_asset": "SOL"}, "quoteAsset"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.0000000001"}, "amount"),
        ({"amount": "99999999999999999999999"}, "amount"),
        ({"amount": "20000.000000001"}, "amount"),  # over the default largest SOL order
        ({"min_amount_out": "abc"}, "minAmountOut"),
        ({"min_amount_out": "0.0000001"}, "minAmountOut"),  # USDC has 6 decimals
    ],
)
async def test_intake_rejects_bad_orders_naming_the_field(fields, field):
    ctx = fake_context()
    request = MarketOrderRequest(
        **{"side": "sell", "base_asset": "SOL", "quote_asset": "USDC", "amount": "1", **fields}
    )
    with pytest.raises(FieldError) as caught:
        await intake.handle(NewOrder(request, "c", "k"), ctx)
    assert caught.value.field == field
    assert ctx.orders.orders == {}


async def test_intake_rejects_a_pair_no_venue_trades():
    ctx = fake_context()
    request = MarketOrderRequest(side="buy", base_asset="JUP", quote_asset="BONK", amount="1")
    with pytest.raises(OrderRejected) as caught:
        await intake.handle(NewOrder(request, "c", "k"), ctx)
    assert caught.value.field == "quoteAsset"


async def test_buy_spends_the_quote_token():
    ctx = fake_context()
    request = MarketOrderRequest(side="buy", base_asset="SOL", quote_asset="USDC", amount="150")
    message = await intake.handle(NewOrder(request, "c", "k"), ctx)
    assert message.amount_in == 150_000_000
    assert (message.input_mint, message.output_mint) == (ctx.tokens.resolve("q", "USDC").mint,
                                                         ctx.tokens.resolve("b", "SOL").mint)


@pytest.mark.parametrize("side,amount", [("sell", "1.5"), ("buy", "150")])
async def test_the_side_travels_with_the_order_so_execute_prices_the_fill_without_reading_it(side, amount):
    """The price is quote per base whichever way the swap went; an ExecuteRequest without a
    side (one sent before the field existed) gives the same price by reading the order."""
    prices = []
    for carried in (True, False):
        ctx = fake_context()
        request = MarketOrderRequest(side=side, base_asset="SOL", quote_asset="USDC", amount=amount)
        to_quote = await intake.handle(NewOrder(request, "c", "k"), ctx)
        to_execute: ExecuteRequest = await route.handle(await quote.handle(to_quote, ctx), ctx)
        assert to_quote.side == to_execute.side == side
        if not carried:
            to_execute = msgspec.structs.replace(to_execute, side=None)
        reads = ctx.orders.reads
        await execute.handle(to_execute, ctx)
        assert ctx.orders.reads - reads == (0 if carried else 1)
        prices.append((await ctx.orders.events(to_execute.order_id))[-1].data["executionPrice"])
    assert prices[0] == prices[1]
    assert 140 < Decimal(prices[0]) < 260  # USDC per SOL, not SOL per USDC


async def test_each_step_run_twice_changes_nothing_the_second_time():
    ctx = fake_context()
    new = sell_sol()
    first = await intake.handle(new, ctx)
    assert await intake.handle(new, ctx) == first
    assert len(ctx.orders.orders) == 1
    to_route = await quote.handle(first, ctx)
    again = await quote.handle(first, ctx)
    assert again == to_route  # rebuilt from the stored routing event
    to_execute = await route.handle(to_route, ctx)
    assert await route.handle(to_route, ctx) == to_execute
    await execute.handle(to_execute, ctx)
    snapshot = (await ctx.orders.get(first.order_id), await ctx.orders.events(first.order_id))
    await execute.handle(to_execute, ctx)
    assert (await ctx.orders.get(first.order_id), await ctx.orders.events(first.order_id)) == snapshot
    assert len(ctx.venues.store.landed) == 1


async def test_execute_resumed_after_submitted_lands_the_same_transaction_once():
    ctx = fake_context()
    new = sell_sol()
    to_route = await quote.handle(await intake.handle(new, ctx), ctx)
    request: ExecuteRequest = await route.handle(to_route, ctx)
    order_id = request.order_id
    # What a crash right after `submitted` leaves behind.
    await ctx.record(order_id, Status.BUILDING, {})
    await ctx.record(order_id, Status.SUBMITTED, {})
    await execute.handle(request, ctx)
    await execute.handle(request, ctx)
    statuses = [e.status for e in await ctx.orders.events(order_id)]
    assert statuses == ["pending", "routing", "routed", "building", "submitted", "confirmed"]
    assert len(ctx.venues.store.landed) == 1


async def test_a_first_execute_lands_without_asking_the_ledger_and_a_resumed_one_reuses_the_landing():
    """The delivery that moves an order to `building` is the only one that can have sent its
    transaction, so it lands it without a ledger look-up; a delivery resuming after a crash
    between landing and `confirmed` takes the stored landing and leaves the pool alone."""
    ctx = fake_context()
    fresh: ExecuteRequest = await route.handle(await quote.handle(await intake.handle(sell_sol(key="a"), ctx), ctx), ctx)
    await execute.handle(fresh, ctx)
    assert ctx.venues.store.finds == 0
    assert len(ctx.venues.store.landed) == 1

    request: ExecuteRequest = await route.handle(await quote.handle(await intake.handle(sell_sol(key="b"), ctx), ctx),
                                                 ctx)
    await ctx.record(request.order_id, Status.BUILDING, {})
    await ctx.record(request.order_id, Status.SUBMITTED, {})
    (tx,) = execute.transactions(request.order_id, request.plan)
    landed = await ctx.chain.confirm(tx)  # the crashed delivery landed it, then died
    pool_after_landing = await ctx.venues.outcomes(tx.input_mint, tx.output_mint, [(tx.venue, tx.amount_in)])
    await execute.handle(request, ctx)
    confirmed = (await ctx.orders.events(request.order_id))[-1]
    assert confirmed.status == Status.CONFIRMED and confirmed.data["amountOut"] == landed.amount_out
    assert await ctx.venues.outcomes(tx.input_mint, tx.output_mint, [(tx.venue, tx.amount_in)]) == pool_after_landing
    assert len(ctx.venues.store.landed) == 2


async def test_fill_below_minimum_fails_with_slippage():
    ctx = fake_context()
    to_route = await quote.handle(await intake.handle(sell_sol(), ctx), ctx)
    request: ExecuteRequest = await route.handle(to_route, ctx)
    leg = request.plan.legs[0]
    greedy_leg = msgspec.structs.replace(leg, min_amount_out=leg.expected_amount_out + 1)
    greedy = msgspec.structs.replace(request.plan, legs=[greedy_leg])
    await execute.handle(ExecuteRequest(request.order_id, greedy), ctx)
    order = await ctx.orders.get(request.order_id)
    assert order.status == Status.FAILED
    assert order.failure_reason == "slippage"
    assert (await ctx.orders.events(request.order_id))[-1].data["error"] == "slippage"


async def test_giving_up_marks_the_order_failed_with_reason_and_attempts():
    ctx = fake_context()
    message = await intake.handle(sell_sol(), ctx)
    await give_up(message, "NoQuotes: no venue returned a quote", 3, ctx)
    order = await ctx.orders.get(message.order_id)
    assert (order.status, order.failure_reason, order.attempts) == (Status.FAILED, "NoQuotes: no venue returned a quote", 3)


@pytest.mark.parametrize(("error", "given_up"), [
    (ConnectionRefusedError(111, "Connection refused"), False),  # PostgreSQL or Redis away: the order is not at fault
    (TimeoutError(), True),  # the step itself too slow: given up on its last attempt, as any failure
])
async def test_a_step_meeting_an_outage_is_tried_again_past_its_attempts_and_never_given_up(monkeypatch, error, given_up):
    ctx = fake_context()
    message = await intake.handle(sell_sol(), ctx)

    async def unreachable(*args, **kwargs):
        raise error

    monkeypatch.setattr(ctx.venues, "price", unreachable)
    last = ctx.settings.job_attempts
    if given_up:
        assert await run_attempt(PIPELINE["quote"], message, ctx, last, last, 5) is None
        assert (await ctx.orders.get(message.order_id)).status == Status.FAILED
    else:
        for attempt in (last, last + 10):
            with pytest.raises(RetryLater):
                await run_attempt(PIPELINE["quote"], message, ctx, attempt, last, 5)
        assert (await ctx.orders.get(message.order_id)).status == Status.PENDING


async def test_an_order_no_pool_can_fill_fails_at_once_with_no_route():
    ctx = fake_context()
    dust = await intake.handle(sell_sol(amount="0.000000001"), ctx)  # 1 lamport: nothing comes out anywhere
    assert await quote.handle(dust, ctx) is None
    order = await ctx.orders.get(dust.order_id)
    assert order.status == Status.FAILED
    assert order.failure_reason.startswith("no_route")
    assert [e.status for e in await ctx.orders.events(dust.order_id)] == ["pending", "failed"]


async def test_venue_outage_is_retried_rather_than_failed():

    ctx = fake_context(Settings(sim=SimulationSettings(zero_delays=True, quote_failure_permille=1000)))
    message = await intake.handle(sell_sol(), ctx)
    with pytest.raises(quote.NoQuotes):
        await quote.handle(message, ctx)
    assert (await ctx.orders.get(message.order_id)).status == Status.PENDING


async def test_a_venue_slower_than_the_quote_timeout_counts_as_failed_and_the_other_still_quotes():
    sim = SimulationSettings(quote_latency_ms_raydium=0, quote_latency_ms_meteora=300, quote_jitter_ms=0,
                             quote_timeout_ms=50, drift_interval_ms=0)
    ctx = fake_context(Settings(sim=sim))
    sol, usdc = ctx.tokens.resolve("baseAsset", "SOL"), ctx.tokens.resolve("quoteAsset", "USDC")
    quotes, failures, _ = await ctx.venues.price(sol.mint, usdc.mint, 10**9, None, 100, 5)
    assert [q.venue for q in quotes] == ["raydium"]
    assert [(f.venue, f.error, f.retryable) for f in failures] == [("meteora", "no quote within 50 ms", True)]


@pytest.mark.parametrize(("timeout_ms", "waited"), [(1_500, [0.18]), (150, [0.15])])
async def test_a_quote_waits_once_for_its_slowest_venue_or_the_timeout(timeout_ms, waited):
    """The venues are asked at once: the order waits for the slowest answer (or the timeout),
    with one timer, not one per venue."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    sim = SimulationSettings(quote_latency_ms_raydium=120, quote_latency_ms_meteora=180, quote_jitter_ms=0,
                             quote_timeout_ms=timeout_ms, drift_interval_ms=0)
    ctx = fake_services(Settings(sim=sim), sleep=sleep).ctx
    sol, usdc = ctx.tokens.resolve("baseAsset", "SOL"), ctx.tokens.resolve("quoteAsset", "USDC")
    quotes, failures, _ = await ctx.venues.price(sol.mint, usdc.mint, 10**9, None, 100, 5)
    assert slept == waited
    assert len(quotes) + len(failures) == 2


@pytest.mark.parametrize(("short_legs", "status"), [
    ((), Status.CONFIRMED), ((1,), Status.PARTIALLY_FILLED), ((0,), Status.PARTIALLY_FILLED),
    ((0, 1), Status.FAILED),
])
async def test_the_terminal_event_alone_says_what_was_sold_bought_at_what_price_and_what_is_left(short_legs, status):
    """Whatever lands, the terminal event states the fill: amountIn sold (the landed legs' input),
    amountOut bought, executionPrice of that fill, unfilledAmountIn; the order record agrees."""
    ctx = fake_context()
    request: ExecuteRequest = await route.handle(await quote.handle(await intake.handle(sell_sol("2000"), ctx), ctx),
                                                 ctx)
    legs = [msgspec.structs.replace(leg, min_amount_out=leg.expected_amount_out + 1) if n in short_legs else leg
            for n, leg in enumerate(request.plan.legs)]
    assert len(legs) == 2
    plan = msgspec.structs.replace(request.plan, legs=legs)
    await execute.handle(ExecuteRequest(request.order_id, plan, "sell"), ctx)
    terminal = (await ctx.orders.events(request.order_id))[-1]
    order = await ctx.orders.get(request.order_id)
    landed = [leg for n, leg in enumerate(legs) if n not in short_legs]
    sold, bought = sum(leg.amount_in for leg in landed), sum(leg.expected_amount_out for leg in landed)
    assert terminal.status == order.status == status
    assert terminal.data["amountIn"] == order.filled_amount_in == sold
    assert terminal.data["amountOut"] == bought and order.amount_out == (bought or None)
    assert terminal.data["unfilledAmountIn"] == plan.amount_in - sold
    price = price_of_base("sell", SOL, USDC, sold, bought) if landed else None
    assert order.executed_price == price
    assert terminal.data["executionPrice"] == (None if price is None else format_decimal(price))
    assert [leg["succeeded"] for leg in terminal.data["legs"]] == [n not in short_legs for n in range(2)]
    if status != Status.CONFIRMED:
        assert terminal.data["error"] == order.failure_reason == "slippage"
        assert terminal.data["requestedAmountIn"] == plan.amount_in


# --- one rule for every decimal field; equivalent orders are the same order ------------------

DECIMAL_FIELDS = {  # field -> (the order it sits in, a valid value)
    "amount": (MarketOrderRequest, "1.5"),
    "minAmountOut": (MarketOrderRequest, "100"),
    "limitPrice": (LimitOrderRequest, "180.5"),
    "minLiquidity": (SniperOrderRequest, "50"),
    "maxPrice": (SniperOrderRequest, "0.001"),
}
ORDER_BASE = {
    MarketOrderRequest: {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1"},
    LimitOrderRequest: {"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1",
                        "limitPrice": "180", "expiresAt": 600},
    SniperOrderRequest: {"type": "sniper", "side": "buy", "baseAsset": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
                         "quoteAsset": "SOL", "amount": "1", "expiresAt": 600},
}


def decode(body: dict) -> OrderRequest:
    return msgspec.json.decode(msgspec.json.encode(body), type=OrderRequest)


@given(field=st.sampled_from(sorted(DECIMAL_FIELDS)), pad=st.sampled_from([" ", "\t", "\n", "\u00a0", "  "]),
       where=st.sampled_from(["before", "after", "both"]))
def test_every_decimal_field_refuses_surrounding_whitespace_naming_itself(field: str, pad: str, where: str) -> None:
    kind, valid = DECIMAL_FIELDS[field]
    ctx = fake_context()
    assert intake.read_order(decode({**ORDER_BASE[kind], field: valid}), ctx.tokens, ctx.settings)
    padded = {"before": pad + valid, "after": valid + pad, "both": pad + valid + pad}[where]
    with pytest.raises(FieldError) as caught:
        intake.read_order(decode({**ORDER_BASE[kind], field: padded}), ctx.tokens, ctx.settings)
    assert caught.value.field == field


def _spellings(draw, body: dict) -> dict:
    """The same order written another way: zeros, symbol case, a mint for a symbol, defaults spelled out."""
    mints = {"SOL": SOL.mint, "USDC": USDC.mint}
    spelled = dict(body)
    for key in ("baseAsset", "quoteAsset"):
        if body[key] in mints:
            spelled[key] = draw(st.sampled_from([body[key], body[key].lower(), mints[body[key]]]))
    for key in ("amount", "limitPrice", "minAmountOut"):
        if key in body:
            zeros = "0" * draw(st.integers(0, 2))
            spelled[key] = body[key] + ("." + zeros if zeros and "." not in body[key] else zeros if "." in body[key]
                                        else "")
    if "slippageBps" not in body and draw(st.booleans()):
        spelled["slippageBps"] = Settings().default_slippage_bps
    return spelled


@given(data=st.data(), kind=st.sampled_from([MarketOrderRequest, LimitOrderRequest]),
       amount=st.sampled_from(["1", "0.01", "2.5", "1000"]))
def test_equivalent_orders_have_one_fingerprint_and_different_orders_another(data, kind, amount: str) -> None:
    ctx = fake_context()
    body = {**ORDER_BASE[kind], "amount": amount}
    original = intake.read_order(decode(body), ctx.tokens, ctx.settings).fingerprint()
    respelled = intake.read_order(decode(_spellings(data.draw, body)), ctx.tokens, ctx.settings).fingerprint()
    assert respelled == original
    other = intake.read_order(decode({**body, "amount": amount + "1"}), ctx.tokens, ctx.settings).fingerprint()
    assert other != original


# --- executing a Jupiter quote: a market order whose plan is the quote's ---------------------------

QUOTED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
"""The fake clock's start: quotes below are priced then."""


async def jupiter_quote(ctx, token_in=SOL, token_out=USDC, amount_in=1_500_000_000, venues=None) -> dict:
    """The quote GET /swap/v1/quote answers now, as the client sends it back (JSON)."""
    priced = await plan_quote(ctx, token_in, token_out, amount_in, 50, venues)
    return msgspec.to_builtins(quote_response(priced.plan, priced.outcomes, 50, slot_at(QUOTED_AT), 0.001))


def execute_quote(quote: dict, key: str = "q1") -> NewOrder:
    return NewOrder(msgspec.convert({"quoteResponse": quote}, QuoteOrder), "client-a", key)


async def test_a_quote_executes_as_quoted_through_every_status():
    ctx = fake_context()
    quote_json = await jupiter_quote(ctx)
    order_id = await run_chain(ctx, execute_quote(quote_json))
    events = await ctx.orders.events(order_id)
    assert [e.status for e in events] == ["pending", "routing", "routed", "building", "submitted", "confirmed"]
    (leg,) = quote_json["routePlan"]
    routed, building = events[2].data, events[3].data
    assert routed["reason"] == f"as quoted at slot {quote_json['contextSlot']}"
    assert [(x["venue"], x["pool"], x["amountIn"]) for x in routed["legs"]] == [
        (leg["swapInfo"]["label"], leg["swapInfo"]["ammKey"], 1_500_000_000)]
    assert building["legs"][0]["minAmountOut"] == routed["minAmountOut"] == int(quote_json["otherAmountThreshold"])
    order = await ctx.orders.get(order_id)
    assert (order.kind, order.side, order.base_mint, order.quote_mint) == ("market", "sell", SOL.mint, USDC.mint)
    assert order.amount_out == events[-1].data["amountOut"] >= int(quote_json["otherAmountThreshold"])
    view = msgspec.to_builtins(order_view(order, ctx.tokens))
    assert view["conditions"]["fromQuote"]["contextSlot"] == quote_json["contextSlot"]
    assert view["conditions"]["fromQuote"]["plan"]["legs"][0]["pool"] == leg["swapInfo"]["ammKey"]


async def test_an_executed_quote_is_not_planned_again():
    """A quote on Meteora alone (dexes=meteora) is filled on Meteora, though Raydium pays more now."""
    ctx = fake_context()
    quote_json = await jupiter_quote(ctx, venues=["meteora"])
    best = await jupiter_quote(ctx)
    assert best["routePlan"][0]["swapInfo"]["label"] == "raydium" and int(best["outAmount"]) > int(quote_json["outAmount"])
    order_id = await run_chain(ctx, execute_quote(quote_json))
    _, routing, routed, *_, confirmed = await ctx.orders.events(order_id)
    assert [q["venue"] for q in routing.data["quotes"]] == ["meteora"]  # its one leg, priced now
    assert routed.data["venue"] == confirmed.data["venue"] == "meteora"


async def test_a_split_quote_buying_the_base_executes_each_leg_as_quoted():
    ctx = fake_context()
    quote_json = await jupiter_quote(ctx, USDC, SOL, 900_000_000_000)  # 900,000 USDC: split across both venues
    assert len(quote_json["routePlan"]) == 2
    order_id = await run_chain(ctx, execute_quote(quote_json))
    order = await ctx.orders.get(order_id)
    assert (order.status, order.side, order.base_mint, order.input_mint) == ("confirmed", "buy", SOL.mint, USDC.mint)
    building = (await ctx.orders.events(order_id))[3].data
    assert [(x["venue"], x["amountIn"]) for x in building["legs"]] == [
        (step["swapInfo"]["label"], int(step["swapInfo"]["inAmount"])) for step in quote_json["routePlan"]]
    assert sum(x["minAmountOut"] for x in building["legs"]) == int(quote_json["otherAmountThreshold"])
    assert order.amount_out >= int(quote_json["otherAmountThreshold"])


async def test_a_quote_the_market_moved_past_fails_with_slippage_before_anything_is_sent():
    ctx = fake_context()
    quote_json = await jupiter_quote(ctx)
    await ctx.venues.store.modify(lambda market: market.set_price(SOL.mint, USDC.mint, Decimal(140)))
    order_id = await run_chain(ctx, execute_quote(quote_json))
    events = await ctx.orders.events(order_id)
    assert [e.status for e in events] == ["pending", "routing", "failed"]
    assert events[-1].data["error"] == "slippage" and events[-1].data["floorAmountOut"] == int(
        quote_json["otherAmountThreshold"])
    assert ctx.venues.store.landed == {}


async def test_a_redriven_quote_order_carries_its_plan_from_the_store():
    """The reconciler rebuilds the quote step's message from the order record (quote_request): the
    quote's plan must come with it, or the order would be planned afresh."""
    ctx = fake_context()
    quote_json = await jupiter_quote(ctx, venues=["meteora"])
    first = await intake.handle(execute_quote(quote_json), ctx)
    rebuilt = intake.quote_request(await ctx.orders.get(first.order_id))
    assert rebuilt == first and rebuilt.plan.legs[0].venue == "meteora"
    to_execute = await route.handle(await quote.handle(rebuilt, ctx), ctx)
    assert [leg.venue for leg in to_execute.plan.legs] == ["meteora"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda q: q["routePlan"][0]["swapInfo"].update(ammKey=pool_address("raydium", SOL.mint, USDT.mint)),
     "quoteResponse.routePlan[0].swapInfo.ammKey"),
    (lambda q: q.update(inputMint=JUP.mint, outputMint=BONK.mint) or [
        step["swapInfo"].update(inputMint=JUP.mint, outputMint=BONK.mint, feeMint=JUP.mint) for step in q["routePlan"]],
     "quoteResponse.outputMint"),  # both listed, no venue trades JUP/BONK
    (lambda q: q.update(contextSlot=q["contextSlot"] - 76), "quoteResponse.contextSlot"),  # 30.4 s old
    (lambda q: q.update(contextSlot=q["contextSlot"] + 100), "quoteResponse.contextSlot"),  # from the future
])
async def test_intake_refuses_a_quote_the_market_or_the_clock_contradicts(change, field):
    ctx = fake_context()
    quote_json = await jupiter_quote(ctx)
    change(quote_json)
    with pytest.raises(FieldError) as caught:
        await intake.handle(execute_quote(quote_json), ctx)
    assert caught.value.field == field, caught.value.message
    assert ctx.orders.orders == {}


async def test_a_quote_older_than_the_maximum_age_is_refused():
    store = MemoryMarketStore(now_s=lambda: 0.0)
    quote_json = await jupiter_quote(fake_context(store=store))
    for seconds, accepted in ((30, True), (31, False)):
        ctx = fake_services(store=store, clock=FixedClock(QUOTED_AT + timedelta(seconds=seconds))).ctx
        if accepted:
            assert await intake.handle(execute_quote(quote_json), ctx) is not None
        else:
            with pytest.raises(FieldError) as caught:
                await intake.handle(execute_quote(quote_json), ctx)
            assert caught.value.field == "quoteResponse.contextSlot" and "stale" in caught.value.message


async def test_a_quote_over_the_largest_order_is_refused_naming_its_in_amount():
    ctx = fake_context(Settings(sim=SimulationSettings(zero_delays=True), max_order_sizes="SOL=1"))
    quote_json = await jupiter_quote(fake_context())
    with pytest.raises(FieldError) as caught:
        await intake.handle(execute_quote(quote_json), ctx)
    assert caught.value.field == "quoteResponse.inAmount"


async def test_the_desk_takes_jupiters_swap_body_once_per_idempotency_key():
    services = fake_services()
    quote_json = await jupiter_quote(services.ctx)
    body = msgspec.json.encode({"userPublicKey": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
                                "wrapAndUnwrapSol": True, "quoteResponse": quote_json})
    client = ApiClient("client-a")
    first = await services.desk.submit(body, client, idempotency_key="swap-1")
    again = await services.desk.submit(body, client, idempotency_key="swap-1")
    assert (again.order_id, again.repeat, first.repeat) == (first.order_id, True, False)
    other = msgspec.json.encode({"quoteResponse": {**quote_json, "otherAmountThreshold": "1"}})
    with pytest.raises(InputError) as caught:
        await services.desk.submit(other, client, idempotency_key="swap-1")
    assert (caught.value.status, caught.value.field) == (409, "Idempotency-Key")
    assert len(services.ctx.orders.orders) == 1


@pytest.mark.parametrize(("body", "field"), [
    (lambda q: {"quoteResponse": {**q, "inAmount": 1500000000}}, "quoteResponse.inAmount"),  # a number, not a string
    (lambda q: {"quoteResponse": {**q, "routePlan": [{"percent": 100, "swapInfo": {
        k: v for k, v in q["routePlan"][0]["swapInfo"].items() if k != "ammKey"}}]}},
     "quoteResponse.routePlan[0].swapInfo.ammKey"),
    (lambda q: {"quoteResponse": {**q, "swapMode": "Both"}}, "quoteResponse.swapMode"),
    (lambda q: {"quoteResponse": {**q, "slippageBps": 10_001}}, "quoteResponse.slippageBps"),
    (lambda q: {"quoteResponse": {**q, "otherAmountThreshold": "-1"}}, "quoteResponse.otherAmountThreshold"),
    (lambda q: {"quoteResponse": q, "clientOrderId": "\x00"}, "clientOrderId"),
])
async def test_the_desk_refuses_a_malformed_quote_naming_the_field_by_its_path(body, field):
    services = fake_services()
    raw = msgspec.json.encode(body(await jupiter_quote(services.ctx)))
    with pytest.raises(InputError) as caught:
        await services.desk.submit(raw, ApiClient("client-a"))
    assert (caught.value.status, caught.value.field) == (422, field), caught.value.message
    assert services.ctx.orders.orders == {}


def test_an_order_mentioning_quote_response_in_a_value_is_still_an_order():
    body = '{"type":"market","side":"sell","baseAsset":"SOL","quoteAsset":"USDC","amount":"1","clientOrderId":' \
           '"quoteResponse"}'
    assert isinstance(decode_order(body), MarketOrderRequest)
