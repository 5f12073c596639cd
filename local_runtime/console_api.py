"""The web console at `/` (static HTML, JavaScript and CSS from local_runtime/console/, no build
step) and `GET /api/markets`, the pools it shows. The page itself needs no key: it asks for one and
then uses only the public API (HTTP with `X-API-Key`, WebSockets with `?apiKey=`), like any client."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

from local_runtime.openapi import refusals
from shared.domain.market import DEFAULT_PAIRS, VENUES, Market, PairState, Venue, pair_key, pool_address
from shared.domain.tokens import Token, format_decimal

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
"""The files served under /console/ (nothing else in the directory is reachable)."""
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none';"
                               " form-action 'none'; frame-ancestors 'none'",
}
"""Same-origin everything: the page loads nothing from elsewhere and talks only to this server."""
PRICE_DIGITS = 10
_LISTED = {pair_key(spec.base.mint, spec.quote.mint): n for n, spec in enumerate(DEFAULT_PAIRS)}
"""The pairs the world starts with, in their order; launched ones follow."""


def _file(name: str, media_type: str) -> Response:
    return Response((CONSOLE_DIR / name).read_bytes(), media_type=media_type, headers=HEADERS)


@get("/", include_in_schema=False)
async def console_page() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@get("/console/{name:str}", include_in_schema=False)
async def console_asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFoundException()
    return _file(name, ASSETS[name])


class TokenView(msgspec.Struct, frozen=True):
    symbol: str
    mint: Annotated[str, msgspec.Meta(description="the token's mint (base58)")]
    decimals: Annotated[int, msgspec.Meta(ge=0, description="its decimals (9 for SOL: 1 SOL = 10^9 lamports)")]


class PoolView(msgspec.Struct, rename="camel", frozen=True):
    venue: Venue
    pool: Annotated[str, msgspec.Meta(description="the pool's address")]
    spot_price: Annotated[str, msgspec.Meta(
        description="quote per base before fees and price impact, 10 significant digits (decimal)")]
    base_depth: Annotated[str, msgspec.Meta(description="what the pool holds of the base token, in whole tokens")]
    quote_depth: Annotated[str, msgspec.Meta(description="what the pool holds of the quote token, in whole tokens")]


class PairView(msgspec.Struct, frozen=True):
    pair: Annotated[str, msgspec.Meta(description="BASE/QUOTE by symbol", examples=["SOL/USDC"])]
    base: TokenView
    quote: TokenView
    venues: Annotated[list[PoolView], msgspec.Meta(description="its pools, one per venue that has one")]


class Markets(msgspec.Struct, frozen=True):
    """Every pair of the simulated market every process shares, launched ones included."""

    pairs: Annotated[list[PairView], msgspec.Meta(
        description="the pairs the world starts with, in their order, then launched ones by symbol")]


def _token(token: Token) -> TokenView:
    return TokenView(token.symbol, token.mint, token.decimals)


def _significant(value: Decimal, digits: int = PRICE_DIGITS) -> str:
    """A price to `digits` significant digits, as plain text."""
    return format_decimal(value if not value else value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1)))


def _pair_order(state: PairState) -> tuple:
    return _LISTED.get(state.key, len(_LISTED)), state.base.symbol, state.quote.symbol, state.key


def markets_view(market: Market) -> Markets:
    """Every pair (those the world starts with, then launched ones by symbol) with each venue's pool:
    spot price (quote per base, before fees and impact) and depth in each token (what the pool holds,
    in whole tokens)."""
    pairs = []
    for state in sorted(market.pairs.values(), key=_pair_order):
        base, quote = state.base, state.quote
        venues = []
        for venue in VENUES:
            pool = market.pool(venue, base.mint, quote.mint)
            if pool is None:
                continue
            venues.append(PoolView(
                venue=venue,
                pool=pool_address(venue, base.mint, quote.mint),
                spot_price=_significant(market.spot_price(venue, base.mint, quote.mint)),
                base_depth=base.format(pool.reserve_of(base.mint)),
                quote_depth=quote.format(pool.reserve_of(quote.mint)),
            ))
        pairs.append(PairView(f"{base.symbol}/{quote.symbol}", _token(base), _token(quote), venues))
    return Markets(pairs)


@get("/api/markets", summary="Every pair's pools: spot price and depth per venue", operation_id="getMarkets",
     responses=refusals(401, 503))
async def get_markets(state: State) -> Response[Markets]:
    """Every pair of the simulated market every process shares, launched ones included, with each venue's
    pool: `spotPrice` is quote per base before fees and price impact (10 significant digits); `baseDepth` /
    `quoteDepth` are what the pool holds of each token, as decimal strings of whole tokens (a Meteora pool:
    the sum over its bins)."""
    return Response(markets_view(await state.services.market.load_all()))


CONSOLE_ROUTES = [console_page, console_asset]
"""Open to anyone: the page holds no key and asks for one."""
MARKET_ROUTES = [get_markets]
"""Behind the API-key guard."""
