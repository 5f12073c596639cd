"""Driving the simulated world: scripted price moves and pool launches (for demos and tests)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, post
from litestar.datastructures import State
from msgspec import Meta

from functions.bootstrap import Services
from local_runtime.openapi import json_body, refusals
from shared.domain.errors import FieldError
from functions.desk import decode_body
from shared.domain.tokens import Token, check_mint, format_decimal, parse_amount, parse_price
from shared.domain.market import VENUES, LaunchPlan, Venue

MAX_MOVE = 100


class PriceMove(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A scripted price move: the pair's pools are traded to `price` (at most 100× up or down)."""

    base_asset: Annotated[str, Meta(description="the pair's base token: a symbol or a mint")]
    quote_asset: Annotated[str, Meta(description="the pair's quote token: a symbol or a mint")]
    price: Annotated[str, Meta(description="the new spot price, quote per base (decimal)")]
    venue: Annotated[Venue | None, Meta(description="only this venue's pool (default: both)")] = None


class PoolLaunch(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A new pool for a token no venue lists yet (on a venue that has none for the pair)."""

    venue: Annotated[Venue, Meta(description="the venue the pool opens on")]
    base_mint: Annotated[str, Meta(description="the new token's mint: a base58 Solana address")]
    quote_asset: Annotated[str, Meta(description="the token it trades against: a symbol or a mint")]
    base_amount: Annotated[str, Meta(description="the pool's depth in the new token, in whole tokens (decimal)")]
    quote_amount: Annotated[str, Meta(description="the pool's depth in quoteAsset, in whole tokens (decimal)")]
    symbol: Annotated[str | None, Meta(description="the new token's symbol (default: the mint's first 6 characters)"
                                       )] = None
    decimals: Annotated[int, Meta(description="the new token's decimals, 0 to 12 (default 6)")] = 6


class PriceMoved(msgspec.Struct, rename="camel", frozen=True):
    """The pair's spot price now, and the limit orders the move fired."""

    spot: Annotated[dict[Venue, str], Meta(description="each venue's spot price, quote per base (decimal)")]
    limit_orders_fired: Annotated[int, Meta(
        ge=0, description="limit orders the move really fired (one whose cancel came first is not counted)")]


class PoolLaunched(msgspec.Struct, rename="camel", frozen=True):
    """The pool is open, on the market every process shares."""

    venue: Venue
    base_mint: Annotated[str, Meta(description="the new token's mint")]
    symbol: Annotated[str, Meta(description="the new token's symbol")]
    decimals: Annotated[int, Meta(ge=0, le=12, description="the new token's decimals")]
    spot: Annotated[str, Meta(description="the new pool's spot price, quote per base (decimal)")]
    fired: Annotated[int, Meta(ge=0, description="sniper orders waiting for this token that fired")]
    refused: Annotated[int, Meta(ge=0, description="sniper orders whose checks the launch failed (they wait on)")]


_move_decoder = msgspec.json.Decoder(PriceMove)
_launch_decoder = msgspec.json.Decoder(PoolLaunch)
"""Made once, at import: a decoder's first construction for a type reads its annotations (a few
ms), which a launch would otherwise pay on its way to the waiting snipers."""


@post("/api/sim/prices", status_code=200, summary="Move a pair's price (simulation)", operation_id="movePrice",
      dto=json_body(PriceMove), return_dto=None,
      responses=refusals(400, 401, 422, 503, _422="a field is wrong (`field` names it): an unknown asset, a pair no"
                                                  " pool trades, a price beyond 100× the current one or one the pool"
                                                  " cannot reach"))
async def move_price(state: State, data: bytes = b"") -> Response[PriceMoved]:
    """Set a pair to `price` (quote per base) on one venue or both, on the market every process
    shares, then fire every limit order it crosses (`limitOrdersFired`: those that really fired)."""
    services: Services = state.services
    move = decode_body(data, PriceMove, _move_decoder)
    tokens = services.ctx.tokens
    await tokens.ensure(move.base_asset, move.quote_asset)
    base, quote = tokens.resolve("baseAsset", move.base_asset), tokens.resolve("quoteAsset", move.quote_asset)
    price = parse_price("price", move.price)
    market = await services.market.load(base.mint, quote.mint)
    if not market.has_pair(base.mint, quote.mint):
        raise FieldError("quoteAsset", f"no pool trades {base.symbol}/{quote.symbol}")
    current = [p for v in VENUES if (p := market.spot_price(v, base.mint, quote.mint))]
    if current and not min(current) / MAX_MOVE <= price <= max(current) * MAX_MOVE:
        raise FieldError("price", f"a scripted move may change the price at most {MAX_MOVE}× either way")
    try:
        moved, fired = await services.watcher.move_price(base, quote, price, move.venue)
    except ValueError as exc:  # the pool cannot be moved that far (it would drain a side)
        raise FieldError("price", str(exc)) from None
    spots = {v: format_decimal(p) for v in VENUES if (p := moved.spot_price(v, base.mint, quote.mint))}
    return Response(PriceMoved(spots, fired))


@post("/api/sim/launch", status_code=201, summary="Launch a new pool (simulation)", operation_id="launchPool",
      dto=json_body(PoolLaunch), return_dto=None,
      responses=refusals(400, 401, 422, 503, _422="a field is wrong (`field` names it): a malformed mint, an unknown"
                                                  " quote asset, decimals out of range, that venue has a pool for the"
                                                  " pair already"))
async def launch_pool(state: State, data: bytes = b"") -> Response[PoolLaunched]:
    """Open a pool for a token no venue listed yet, on the market every process shares; sniper
    orders waiting for it see it at once."""
    services: Services = state.services
    tokens = services.ctx.tokens
    launch = decode_body(data, PoolLaunch, _launch_decoder)
    mint = check_mint("baseMint", launch.base_mint)
    await tokens.ensure(mint, launch.quote_asset)
    quote = tokens.resolve("quoteAsset", launch.quote_asset)
    if not 0 <= launch.decimals <= 12:
        raise FieldError("decimals", "decimals must be between 0 and 12")
    if mint == quote.mint:
        raise FieldError("baseMint", "baseMint must differ from quoteAsset")
    base = tokens.find(mint) or Token(launch.symbol or mint[:6], mint, launch.decimals)
    base_amount = parse_amount("baseAmount", launch.base_amount, base)
    quote_amount = parse_amount("quoteAmount", launch.quote_amount, quote)
    try:
        snipers = await services.watcher.launch(LaunchPlan(launch.venue, base, base_amount, quote_amount), quote)
    except ValueError as exc:
        raise FieldError("venue", f"{launch.venue} already has a pool for this pair") from exc
    market = await services.market.load(mint, quote.mint)
    return Response(PoolLaunched(launch.venue, mint, base.symbol, base.decimals,
                                 format_decimal(market.spot_price(launch.venue, mint, quote.mint)), **snipers),
                    status_code=201)


SIM_ROUTES = [move_price, launch_pool]
