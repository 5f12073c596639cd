"""Driving the simulated world: scripted price moves and pool launches (for demos and tests)."""

from __future__ import annotations


import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State

from functions.bootstrap import Services
from shared.domain.errors import FieldError
from functions.desk import decode_body
from shared.domain.tokens import Token, check_mint, format_decimal, parse_amount, parse_price
from shared.domain.market import VENUES, LaunchPlan, Venue

MAX_MOVE = 100


class PriceMove(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    base_asset: str
    quote_asset: str
    price: str
    venue: Venue | None = None


class PoolLaunch(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    venue: Venue
    base_mint: str
    quote_asset: str
    base_amount: str
    quote_amount: str
    symbol: str | None = None
    decimals: int = msgspec.field(default=6)


@post("/api/sim/prices", status_code=200, summary="Move a pair's price (simulation)")
async def move_price(request: Request, state: State) -> Response:
    """Set a pair to `price` (quote per base) on one venue or both, on the market every process
    shares, then fire every limit order it crosses (`limitOrdersFired`: those that really fired)."""
    services: Services = state.services
    move = decode_body(await request.body(), PriceMove)
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
    return Response({"spot": spots, "limitOrdersFired": fired})


@post("/api/sim/launch", status_code=201, summary="Launch a new pool (simulation)")
async def launch_pool(request: Request, state: State) -> Response:
    """Open a pool for a token no venue listed yet, on the market every process shares; sniper
    orders waiting for it see it at once."""
    services: Services = state.services
    tokens = services.ctx.tokens
    launch = decode_body(await request.body(), PoolLaunch)
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
    return Response({"venue": launch.venue, "baseMint": mint, "symbol": base.symbol, "decimals": base.decimals,
                     "spot": format_decimal(market.spot_price(launch.venue, mint, quote.mint)), **snipers},
                    status_code=201)


SIM_ROUTES = [move_price, launch_pool]
