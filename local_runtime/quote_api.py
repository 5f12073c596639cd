"""GET /api/quote: what the engine would do for an order, without placing it — in Jupiter's quote
shape, asked for in whole tokens (Jupiter's own units are at GET /swap/v1/quote: swap_api.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.params import Parameter

from functions.intake import check_size
from functions.quote import PricedPlan, plan_quote, quote_pair
from local_runtime.openapi import refusals
from shared.context import Context
from shared.domain.jupiter import quote_response, slot_at
from shared.domain.messages import QuoteResponse, RawAmount
from shared.domain.tokens import Token, parse_amount


class VenueAnswer(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """One venue's quote for the whole amount."""

    venue: str
    out_amount: RawAmount
    fee_amount: RawAmount
    price_impact_pct: str


class VenueRefusal(msgspec.Struct, frozen=True):
    """A venue that gave no quote, and why."""

    venue: str
    error: str


class EngineQuote(QuoteResponse, frozen=True, kw_only=True):
    """Jupiter's quote, and the engine's reasons: the plan's reason, every venue's quote for the
    whole amount, the venues that gave none."""

    reason: str
    venues: list[VenueAnswer]
    failures: list[VenueRefusal]


async def quoted(ctx: Context, input_mint: str | None, output_mint: str | None, read_amount: Callable[[Token], int],
                 slippage_bps: int, venues: list[str] | None = None) -> tuple[PricedPlan, QuoteResponse]:
    """What both quote routes answer: the pair, the amount (`read_amount` of the input token: each
    route has its units) within the per-asset maximum, and the plan a market order of it would get
    now, as Jupiter's QuoteResponse (`timeTaken` counting from the pair's reading)."""
    started, slot = time.perf_counter(), slot_at(ctx.clock.now())
    token_in, token_out = await quote_pair(ctx, input_mint, output_mint)
    amount_in = read_amount(token_in)
    check_size(ctx.settings, token_in, amount_in)
    priced = await plan_quote(ctx, token_in, token_out, amount_in, slippage_bps, venues)
    return priced, quote_response(priced.plan, priced.outcomes, slippage_bps, slot, round(time.perf_counter() - started, 6))


@get("/api/quote", summary="Quote an order without placing it (amounts in whole tokens)",
     responses=refusals(401, 422, _422="a parameter is wrong (`field` names it), or no venue can fill the amount"
                                       " (`field`: amount, NO_ROUTES_FOUND)"))
async def get_quote(
    state: State,
    amount: str = Parameter(description="how much of the input token to sell, in WHOLE TOKENS as a decimal string"
                                        " (\"1.5\" = 1.5 SOL; at most the token's decimals). GET /swap/v1/quote takes"
                                        " Jupiter's raw base units instead"),
    input_mint: str | None = Parameter(query="inputMint", default=None, description="mint or symbol sold"),
    output_mint: str | None = Parameter(query="outputMint", default=None, description="mint or symbol bought"),
    slippage_bps: int = Parameter(query="slippageBps", default=50, ge=0, le=10_000,
                                  description="slippage allowed for `otherAmountThreshold`, in basis points"),
) -> EngineQuote:
    """Best plan (one venue or a split), every venue's quote, amount out, minimum amount out
    (`otherAmountThreshold`), price impact: what a market order of this size would be routed to
    now, by the same quote and route code. Nothing is stored. The answer's amounts are in base
    units (as Jupiter's), the request's `amount` in whole tokens."""
    priced, quote = await quoted(state.services.ctx, input_mint, output_mint,
                                 lambda token: parse_amount("amount", amount, token), slippage_bps)
    return EngineQuote(
        **msgspec.structs.asdict(quote),
        reason=priced.plan.reason,
        venues=[VenueAnswer(venue=q.venue, out_amount=str(q.amount_out), fee_amount=str(q.fee),
                            price_impact_pct=q.price_impact) for q in priced.quotes],
        failures=[VenueRefusal(f.venue, f.error) for f in priced.failures],
    )
