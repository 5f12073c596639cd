"""intake: validate a new order, give it an id, store it with its `pending` event.

Market orders go on to `quote`; limit and sniper orders go to `trigger` to rest. An executed
Jupiter quote is a market order whose plan is the quote's: stored with it (under `fromQuote` in
the order's conditions), carried by every message after, and never planned again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from shared.context import Context
from shared.domain.errors import FieldError
from shared.domain.events import format_ts
from shared.domain.jupiter import FIELD as QUOTE_FIELD, QuotedPlan, check_age, check_pools, read_quote
from shared.domain.messages import (
    ArmRequest, LimitOrderRequest, NewOrder, OrderRequest, Plan, QuoteOrder, QuoteRequest, SniperOrderRequest,
)
from shared.domain.orders import FailureReason, Kind, OrderRecord, Side
from shared.domain.resting import Expiry, floor_amount_out, parse_expiry, read_expiry
from shared.domain.states import Status
from shared.domain.tokens import Token, TokenRegistry, check_mint, format_decimal, parse_amount, parse_price
from shared.settings import Settings

_encoder = msgspec.json.Encoder()
FROM_QUOTE = "fromQuote"
"""The key of an executed quote's record in the order's conditions: `contextSlot` and `plan`."""


class OrderRejected(FieldError):
    """The order cannot be accepted as sent; `field` names the culprit."""


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """An order request read field by field: assets resolved to mints, decimal strings to base
    units and Decimals, defaults applied. Two requests that read the same are the same order,
    however they were written ("0.010" or "0.01", "sol" or "SOL" or its mint)."""

    kind: str
    side: str
    base_mint: str
    base: Token | None
    """The listed base token (None: a sniper's token that no venue lists yet)."""
    quote: Token
    amount_in: int
    slippage_bps: int
    min_amount_out: int = 0
    """The explicit least amount out (0: none asked)."""
    limit_price: Decimal | None = None
    expiry: Expiry | None = None
    conditions: dict[str, Any] | None = None
    """A sniper's safety checks, normalised (decimal strings without trailing zeros)."""
    client_order_id: str | None = None
    quoted: QuotedPlan | None = None
    """An executed quote's plan (its side, base and quote are the pair's as listed: see `handle`)."""

    @property
    def sold_mint(self) -> str:
        return self.base_mint if self.side == Side.SELL else self.quote.mint

    @property
    def bought_mint(self) -> str:
        return self.quote.mint if self.side == Side.SELL else self.base_mint

    def fingerprint(self) -> str:
        """What the idempotency check compares: the parsed order, not the text it came as."""
        expiry = None if self.expiry is None else (self.expiry.seconds, self.expiry.at and format_ts(self.expiry.at))
        canonical = (self.kind, self.side, self.base_mint, self.quote.mint, self.amount_in, self.slippage_bps,
                     self.min_amount_out, None if self.limit_price is None else format_decimal(self.limit_price),
                     expiry, self.conditions)
        return hashlib.sha256(_encoder.encode(canonical)).hexdigest()


def check_size(settings: Settings, sold: Token, amount_in: int, field: str = "amount") -> None:
    """The per-asset maximum (DEX_MAX_ORDER_SIZES): an order, or a quote, over it is refused naming `field`."""
    largest = settings.max_order(sold.symbol)
    if largest is not None and sold.to_ui(amount_in) > largest:
        raise OrderRejected(field, f"{field} exceeds the largest order this engine takes: {largest} {sold.symbol}")


def order_assets(request: OrderRequest | QuoteOrder) -> tuple[str, str]:
    """The two assets a request names (what `TokenRegistry.ensure` must know before reading it)."""
    if isinstance(request, QuoteOrder):
        return request.quote_response.input_mint, request.quote_response.output_mint
    return request.base_asset, request.quote_asset


def read_order(request: OrderRequest | QuoteOrder, tokens: TokenRegistry, settings: Settings) -> OrderTerms:
    """Every field of `request` checked and parsed; what needs the clock or the market (the
    expiry's moment, whether the pair trades, a quote's pools and age) is left to `handle`.
    FieldError names the field."""
    if isinstance(request, QuoteOrder):
        return _read_quote(request, tokens, settings)
    kind = type(request).__struct_config__.tag
    quote = tokens.resolve("quoteAsset", request.quote_asset)
    slippage_bps = settings.default_slippage_bps if request.slippage_bps is None else request.slippage_bps
    common = {"kind": kind, "side": request.side, "quote": quote, "slippage_bps": slippage_bps,
              "client_order_id": request.client_order_id}
    if isinstance(request, SniperOrderRequest):
        return _read_sniper(request, tokens, settings, common)
    base = tokens.resolve("baseAsset", request.base_asset)
    if base == quote:
        raise OrderRejected("quoteAsset", "quoteAsset must differ from baseAsset")
    sold, bought = (base, quote) if request.side == Side.SELL else (quote, base)
    amount_in = parse_amount("amount", request.amount, sold)
    check_size(settings, sold, amount_in)
    floor = 0 if request.min_amount_out is None else parse_amount("minAmountOut", request.min_amount_out, bought)
    if not isinstance(request, LimitOrderRequest):
        return OrderTerms(base_mint=base.mint, base=base, amount_in=amount_in, min_amount_out=floor, **common)
    return OrderTerms(base_mint=base.mint, base=base, amount_in=amount_in, min_amount_out=floor,
                      limit_price=parse_price("limitPrice", request.limit_price),
                      expiry=read_expiry("expiresAt", request.expires_at), **common)


def _read_sniper(request: SniperOrderRequest, tokens: TokenRegistry, settings: Settings,
                 common: dict[str, Any]) -> OrderTerms:
    """A sniper's base is a mint no venue may list yet (it need not be a known token at all)."""
    quote = common["quote"]
    if request.side != Side.BUY:
        raise OrderRejected("side", "sniper orders buy a newly launched token: side must be \"buy\"")
    base = tokens.find(request.base_asset)
    base_mint = base.mint if base else check_mint("baseAsset", request.base_asset)
    if base_mint == quote.mint:
        raise OrderRejected("quoteAsset", "quoteAsset must differ from baseAsset")
    amount_in = parse_amount("amount", request.amount, quote)
    check_size(settings, quote, amount_in)
    min_liquidity = (None if request.min_liquidity is None
                     else quote.format(parse_amount("minLiquidity", request.min_liquidity, quote)))
    max_price = None if request.max_price is None else format_decimal(parse_price("maxPrice", request.max_price))
    conditions = {"minLiquidity": min_liquidity, "maxPrice": max_price,
                  "maxPriceImpactBps": request.max_price_impact_bps}
    return OrderTerms(base_mint=base_mint, base=base, amount_in=amount_in, conditions=conditions,
                      expiry=read_expiry("expiresAt", request.expires_at), **common)


def _read_quote(request: QuoteOrder, tokens: TokenRegistry, settings: Settings) -> OrderTerms:
    """A quote to execute, read as a market order selling its input for its output (the side the
    pair's listing gives is set by `handle`); its plan, slot and plan's minimum as its conditions."""
    quoted = read_quote(request.quote_response, tokens)
    plan = quoted.plan
    sold, bought = tokens.by_mint(plan.input_mint), tokens.by_mint(plan.output_mint)
    check_size(settings, sold, plan.amount_in, f"{QUOTE_FIELD}.inAmount")
    conditions = {FROM_QUOTE: {"contextSlot": quoted.context_slot, "plan": msgspec.to_builtins(plan)}}
    return OrderTerms(kind=Kind.MARKET, side=Side.SELL, base_mint=sold.mint, base=sold, quote=bought,
                      amount_in=plan.amount_in, slippage_bps=quoted.slippage_bps, min_amount_out=plan.min_amount_out,
                      conditions=conditions, client_order_id=request.client_order_id, quoted=quoted)


async def _place_quote(terms: OrderTerms, ctx: Context) -> OrderTerms:
    """An executed quote against the market and the clock: the pair trades, each leg's pool is its
    venue's, the quote is fresh; the order takes the pair's side as listed (buying the base when the
    quote sells the listed quote token)."""
    plan = terms.quoted.plan
    listing = await ctx.venues.listing(plan.input_mint, plan.output_mint)
    if listing is None:
        raise OrderRejected(f"{QUOTE_FIELD}.outputMint", f"no venue trades {terms.base.symbol}/{terms.quote.symbol}")
    check_pools(plan, listing.pools)
    check_age(terms.quoted.context_slot, ctx.clock.now(), ctx.settings.quote_max_age_s)
    if listing.base_mint == plan.input_mint:
        return terms
    return dataclasses.replace(terms, side=Side.BUY, base_mint=terms.quote.mint, base=terms.quote, quote=terms.base)


async def handle(message: NewOrder, ctx: Context) -> QuoteRequest | ArmRequest | None:
    await ctx.tokens.ensure(*order_assets(message.request))
    terms = read_order(message.request, ctx.tokens, ctx.settings)
    if terms.quoted is not None:
        terms = await _place_quote(terms, ctx)
    else:
        await _check_market(terms, ctx)
    order = _order(terms, message, ctx.ids.order_id(), ctx.clock.now())
    event = await ctx.orders.create(order, _pending_data(order, terms))
    if event is None:  # a delivery of this submission (or a racing one) stored the order first: it owns it
        raced = await ctx.orders.find_by_key(message.client_id, message.submission_key)
        return after_pending(raced) if raced is not None and raced.status == Status.PENDING else None
    await ctx.publisher.publish(event)
    return after_pending(order)


async def _check_market(terms: OrderTerms, ctx: Context) -> None:
    """A market or limit order needs a venue trading its pair; a sniper's token must not trade yet."""
    trades = await ctx.venues.supports(terms.base_mint, terms.quote.mint)
    if terms.kind == Kind.SNIPER:
        if terms.base is not None and trades:
            raise OrderRejected("baseAsset", "this token already trades; use a market or limit order")
    elif not trades:
        raise OrderRejected("quoteAsset", f"no venue trades {terms.base.symbol}/{terms.quote.symbol}")


def _order(terms: OrderTerms, message: NewOrder, order_id: str, now) -> OrderRecord:
    floor = terms.min_amount_out
    if terms.limit_price is not None:  # never worse than the limit: its floor, rounded in the client's favour
        floor = max(floor, floor_amount_out(terms.side, terms.amount_in, terms.limit_price, terms.base, terms.quote))
    return OrderRecord(
        id=order_id,
        client_id=message.client_id,
        idempotency_key=message.submission_key,
        request_hash=message.request_hash,
        kind=terms.kind,
        side=terms.side,
        status=Status.PENDING,
        base_mint=terms.base_mint,
        quote_mint=terms.quote.mint,
        input_mint=terms.sold_mint,
        output_mint=terms.bought_mint,
        amount_in=terms.amount_in,
        slippage_bps=terms.slippage_bps,
        created_at=now,
        updated_at=now,
        limit_price=terms.limit_price,
        expires_at=None if terms.expiry is None else parse_expiry("expiresAt", terms.expiry, now),
        conditions=terms.conditions,
        min_amount_out=floor or None,
    )


def _pending_data(order: OrderRecord, terms: OrderTerms) -> dict[str, Any]:
    """The `pending` event: the order as validated."""
    data = {
        "type": order.kind,
        "side": order.side,
        "baseAsset": terms.base.symbol if terms.base else terms.base_mint,
        "quoteAsset": terms.quote.symbol,
        "inputMint": order.input_mint,
        "outputMint": order.output_mint,
        "amountIn": order.amount_in,
        "slippageBps": order.slippage_bps,
        "clientOrderId": terms.client_order_id,
    }
    if order.expires_at is not None:
        data["expiresAt"] = format_ts(order.expires_at)
    if order.limit_price is not None:
        data["limitPrice"] = format_decimal(order.limit_price)
    if order.min_amount_out is not None:
        data["minAmountOut"] = order.min_amount_out
    if order.conditions is not None:
        data["conditions"] = order.conditions
    return data


def after_pending(order: OrderRecord) -> QuoteRequest | ArmRequest:
    """What follows `pending`: a market order is quoted; a limit or sniper order goes to rest."""
    if order.kind != Kind.MARKET:
        return ArmRequest(order.id)
    return quote_request(order)


def quote_request(order: OrderRecord) -> QuoteRequest:
    """What `quote` needs to price this order now (also used when a resting order fires); an
    executed quote's plan goes with it."""
    quoted = (order.conditions or {}).get(FROM_QUOTE) if order.kind == Kind.MARKET else None
    return QuoteRequest(
        order.id, order.input_mint, order.output_mint, order.amount_in, order.slippage_bps,
        floor_amount_out=order.min_amount_out or 0,
        floor_reason=FailureReason.LIMIT_NOT_MET if order.limit_price is not None else FailureReason.SLIPPAGE,
        side=order.side,
        plan=None if quoted is None else msgspec.convert(quoted["plan"], Plan),
    )
