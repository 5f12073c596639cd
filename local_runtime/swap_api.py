"""GET /swap/v1/quote: Jupiter's quote call, with Jupiter's parameters and units, so Jupiter's own
client (`@jup-ag/api`, basePath `http://HOST:PORT/swap/v1`) quotes on the engine. Executing a quote
is POST /api/orders/execute with `{"quoteResponse": <the quote>}` (Jupiter's swap body)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.datastructures import State
from litestar.params import Parameter

from local_runtime.openapi import refusals
from local_runtime.quote_api import quoted
from shared.domain.errors import FieldError
from shared.domain.jupiter import EXACT_IN, parse_base_units, venues_for
from shared.domain.messages import QuoteResponse

_LABELS = "labels, any case: `raydium`, `meteora` (Jupiter's `Raydium`, `Meteora DLMM` too)"


@get("/swap/v1/quote", summary="Jupiter's quote (amounts in base units)",
     responses=refusals(401, 422, _422="a parameter is wrong (`field` names it): `swapMode` ExactOut is not"
                                       " supported; no venue can fill the amount (`field`: amount, NO_ROUTES_FOUND)"))
async def get_swap_quote(
    state: State,
    input_mint: Annotated[str, Parameter(query="inputMint", description="the mint sold (a symbol is taken too)")],
    output_mint: Annotated[str, Parameter(query="outputMint", description="the mint bought (a symbol is taken too)")],
    amount: Annotated[str, Parameter(
        description="how much of the input token to sell, in BASE UNITS as an integer (1.5 SOL = 1500000000"
                    " lamports; 1 USDC = 1000000), as Jupiter takes it. GET /api/quote takes whole tokens instead")],
    slippage_bps: Annotated[int, Parameter(
        query="slippageBps", ge=0, le=10_000, description="slippage allowed for `otherAmountThreshold`, in basis points",
    )] = 50,
    swap_mode: Annotated[Literal["ExactIn", "ExactOut"], Parameter(
        query="swapMode", description="only ExactIn is quoted: ExactOut is a 422")] = "ExactIn",
    dexes: Annotated[list[str] | None, Parameter(
        description=f"quote on these venues only: {_LABELS}; repeated or comma-separated")] = None,
    exclude_dexes: Annotated[list[str] | None, Parameter(
        query="excludeDexes", description=f"never quote on these venues: {_LABELS}")] = None,
) -> QuoteResponse:
    """Jupiter's `QuoteResponse` for `amount` (base units) of `inputMint`: the plan a market order of
    this size would get now (one venue, or a split: one routePlan leg per venue), with
    `otherAmountThreshold` the least it accepts after `slippageBps`. `contextSlot` is the simulated
    chain's slot (400 ms each) the quote was priced at: POST /api/orders/execute executes a quote up
    to DEX_QUOTE_MAX_AGE_S (30 s) old. Every route here is direct (each leg one swap on one pool), so
    `onlyDirectRoutes` changes nothing; Jupiter's other parameters (`restrictIntermediateTokens`,
    `asLegacyTransaction`, `platformFeeBps` — no platform fee is charged: `platformFee` is null —,
    `maxAccounts`, `instructionVersion`, `dynamicSlippage`) are accepted and ignored."""
    if swap_mode != EXACT_IN:
        raise FieldError("swapMode", f"swapMode {swap_mode} is not supported: this engine quotes {EXACT_IN} only")
    venues = venues_for(dexes, exclude_dexes)
    _, quote = await quoted(state.services.ctx, input_mint, output_mint,
                            lambda _: parse_base_units("amount", amount), slippage_bps, venues)
    return quote


SWAP_ROUTES = [get_swap_quote]
"""Behind the API-key guard, like every /api route."""
