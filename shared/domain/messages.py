"""Typed messages: what clients send, and what each function hands to the next.

Amounts are integers in base units; prices are decimal strings. Step messages carry
ids and the little the next step needs; PostgreSQL stays the source of truth.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from shared.domain.orders import Side

SlippageBps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
AssetText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AmountText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


PriceText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
PRINTABLE_KEY = r"^[^\x00-\x1f\x7f]{1,128}$"
"""An idempotency key: 1–128 characters, no control characters (PostgreSQL text cannot hold NUL)."""
ExpiresAt = Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | int


class _OrderFields(
    msgspec.Struct, tag_field="type", rename="camel", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    """What every order has. `amount` is in the token being sold (exact in)."""

    side: Side
    base_asset: AssetText
    quote_asset: AssetText
    amount: AmountText
    slippage_bps: SlippageBps | None = None
    client_order_id: Annotated[str, msgspec.Meta(pattern=PRINTABLE_KEY)] | None = None


class MarketOrderRequest(_OrderFields, tag="market", frozen=True, kw_only=True):
    """Execute now at the best price the venues give for this size."""

    min_amount_out: AmountText | None = None
    """Explicit least amount of the bought token (decimal string), instead of or on top of slippageBps."""


class LimitOrderRequest(_OrderFields, tag="limit", frozen=True, kw_only=True):
    """Rest until the executable price for this size reaches `limitPrice` (quote per base),
    then execute never worse than it. `expiresAt`: ISO 8601 time or Unix seconds."""

    limit_price: PriceText
    expires_at: ExpiresAt
    min_amount_out: AmountText | None = None


class SniperOrderRequest(_OrderFields, tag="sniper", frozen=True, kw_only=True):
    """Buy a token that has no pool yet, in the first moments after one launches, if the
    launch passes the safety checks; otherwise keep waiting until `expiresAt`."""

    expires_at: ExpiresAt
    min_liquidity: AmountText | None = None
    """Least depth of the new pool, in quoteAsset (e.g. "50" SOL)."""
    max_price: PriceText | None = None
    """Highest acceptable price, quote per base, for this order's size."""
    max_price_impact_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None


OrderRequest = MarketOrderRequest | LimitOrderRequest | SniperOrderRequest

RawAmount = Annotated[str, msgspec.Meta(
    pattern=r"^[0-9]{1,20}$",
    description="an integer in the token's base units, as a string (1.5 SOL = \"1500000000\")")]


class SwapInfo(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """One leg of a Jupiter route: `inAmount` of `inputMint` into the pool `ammKey` of the venue
    `label`, giving `outAmount` of `outputMint` after the pool's fee (`feeAmount` of `feeMint`)."""

    amm_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="the pool's address")]
    label: Annotated[str, msgspec.Meta(max_length=64, description="the venue: `raydium` or `meteora`")] | None = None
    input_mint: Annotated[str, msgspec.Meta(max_length=64)]
    output_mint: Annotated[str, msgspec.Meta(max_length=64)]
    in_amount: RawAmount
    out_amount: RawAmount
    fee_amount: RawAmount | None = None
    fee_mint: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class RoutePlanStep(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    swap_info: SwapInfo
    percent: Annotated[int, msgspec.Meta(ge=0, le=100, description="this leg's share of `inAmount`, in percent")]


class PlatformFee(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    amount: RawAmount
    fee_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class QuoteResponse(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """Jupiter's quote (its Swap API's `QuoteResponse`), amounts in base units: `inAmount` of
    `inputMint` gives `outAmount` of `outputMint` (after fees, before slippage), and no less than
    `otherAmountThreshold` once slippage is allowed for; `routePlan` has one leg per venue (a split:
    several legs with the same mints, their percents adding up to 100). Other fields Jupiter adds
    are accepted and ignored."""

    input_mint: Annotated[str, msgspec.Meta(max_length=64)]
    in_amount: RawAmount
    output_mint: Annotated[str, msgspec.Meta(max_length=64)]
    out_amount: RawAmount
    other_amount_threshold: RawAmount
    swap_mode: Literal["ExactIn", "ExactOut"]
    slippage_bps: SlippageBps
    platform_fee: PlatformFee | None = None
    price_impact_pct: Annotated[str, msgspec.Meta(max_length=64, description="a fraction (0.01 = 1 %), as a string")]
    route_plan: Annotated[list[RoutePlanStep], msgspec.Meta(max_length=16)]
    context_slot: Annotated[int, msgspec.Meta(ge=0, description="the simulated chain's slot the quote was priced at")
                            ] | None = None
    time_taken: Annotated[float, msgspec.Meta(description="seconds spent quoting")] | None = None


class QuoteExecution(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """Execute a quote as it was quoted (POST /api/orders/execute, the body of Jupiter's swap call):
    a market order whose plan is the quote's `routePlan`, with `otherAmountThreshold` as its least
    amount out. The swap call's other fields (`userPublicKey`, `wrapAndUnwrapSol`, ...) are
    accepted and ignored."""

    quote_response: QuoteResponse
    client_order_id: Annotated[str, msgspec.Meta(pattern=PRINTABLE_KEY)] | None = None


class QuoteOrder(QuoteExecution, tag_field="type", tag="quote", frozen=True, kw_only=True):
    """A QuoteExecution as `intake` takes it: tagged, beside the other orders (a body need not carry
    the tag)."""


ORDER_BODIES = (OrderRequest, QuoteExecution)
"""The shapes a submission takes, over HTTP and on the order socket alike (functions/desk.py's
`decode_order` reads them): an order, or a quote to execute. The API documents describe each as one
branch of the body's `oneOf`; a new kind of body is one more entry here."""


class NewOrder(msgspec.Struct, frozen=True):
    """Input of `intake`: the client's request, who sent it, and a key unique to this
    submission (the client's order id, or one the transport made up) so that running
    intake twice on the same message stores one order."""

    request: OrderRequest | QuoteOrder
    client_id: str
    submission_key: str
    request_hash: str | None = None
    """Fingerprint of the request: the same key with a different order is a conflict."""


class ArmRequest(msgspec.Struct, frozen=True, tag=True):
    """Input of `trigger` for a new limit or sniper order: make it rest (`waiting`)."""

    order_id: str


class TriggerFired(msgspec.Struct, frozen=True, tag=True):
    """Input of `trigger`: the price (or a launch) reached the order's condition."""

    order_id: str
    reason: dict = {}


class ExpireRequest(msgspec.Struct, frozen=True, tag=True):
    """Input of `trigger`: the order's time ran out."""

    order_id: str


class LaunchRefused(msgspec.Struct, frozen=True, tag=True):
    """Input of `trigger`: a launch the sniper order saw failed its safety checks."""

    order_id: str
    reason: str
    launch: dict = {}


TriggerMessage = ArmRequest | TriggerFired | ExpireRequest | LaunchRefused


class QuoteRequest(msgspec.Struct, frozen=True):
    """Input of `quote`."""

    order_id: str
    input_mint: str
    output_mint: str
    amount_in: int
    slippage_bps: int
    floor_amount_out: int = 0
    """The least any fill may give, whatever the slippage (a limit order's limit, or minAmountOut)."""
    floor_reason: str = "slippage"
    """The failure reason when the venues cannot give the floor."""
    venues: list[str] = []
    """Only these venues (a sniper buys on the pool that passed its checks); empty: all."""
    side: str | None = None
    """The order's side, carried to `execute` (which then needs no read to price the fill)."""
    plan: Plan | None = None
    """An executed quote's plan: its venues, amounts and minimums as quoted (not planned again)."""


class VenueQuote(msgspec.Struct, frozen=True, rename="camel"):
    venue: str
    pool: str
    amount_in: int
    amount_out: int
    fee: int
    price_impact: str
    liquidity: int
    """The pool's depth in the output token: how much of it the pool holds, in base units (the
    first tie-breaker)."""
    latency_ms: int


class QuoteCurve(msgspec.Struct, frozen=True, rename="camel"):
    """A venue's output at sampled sizes of one order: `amounts_in[i]` of the input gives
    `amounts_out[i]` (0: the pool cannot fill that size). Two venues' curves are sampled so
    that their sizes pair up into splits of the whole order (see SimulatedVenues.split_curves)."""

    venue: str
    pool: str
    amounts_in: list[int]
    amounts_out: list[int]
    max_amount_in: int | None = None
    """The most this pool can take in one swap (None: any size)."""


class VenueFailure(msgspec.Struct, frozen=True, rename="camel"):
    venue: str
    error: str
    retryable: bool = True
    """False when asking again cannot help (the pool cannot fill this size)."""


class RouteRequest(msgspec.Struct, frozen=True):
    """Input of `route`: every venue's answer for this order."""

    order_id: str
    input_mint: str
    output_mint: str
    slippage_bps: int
    quotes: list[VenueQuote]
    failures: list[VenueFailure] = []
    floor_amount_out: int = 0
    curves: list[QuoteCurve] = []
    floor_reason: str = "slippage"
    side: str | None = None
    amount_in: int = 0
    """The order's size (0 in a message from before this field: the quotes' size)."""
    plan: Plan | None = None
    """An executed quote's plan (`quotes`: its legs priced now): carried out as quoted."""

    @property
    def size(self) -> int:
        return self.amount_in or (self.quotes[0].amount_in if self.quotes else 0)


class Leg(msgspec.Struct, frozen=True, rename="camel"):
    """One venue's part of a plan; each leg is its own transaction."""

    venue: str
    pool: str
    amount_in: int
    expected_amount_out: int
    min_amount_out: int


class Plan(msgspec.Struct, frozen=True, rename="camel"):
    input_mint: str
    output_mint: str
    amount_in: int
    expected_amount_out: int
    min_amount_out: int
    reason: str
    legs: list[Leg]
    best_single_amount_out: int
    """What the best single venue would give: a split's gain is measured against it."""

    @property
    def venue(self) -> str:
        return self.legs[0].venue if len(self.legs) == 1 else "split"

    def short_leg(self) -> Leg | None:
        """A leg expected to give less than its minimum (its share of the order's floor): the
        plan cannot be filled within the order's bounds."""
        return next((leg for leg in self.legs if leg.expected_amount_out < leg.min_amount_out), None)


class ExecuteRequest(msgspec.Struct, frozen=True):
    """Input of `execute`: the plan to carry out."""

    order_id: str
    plan: Plan
    side: str | None = None
    """"buy" or "sell": which of the plan's mints is the base (None: read it from the order)."""


StepMessage = NewOrder | TriggerMessage | QuoteRequest | RouteRequest | ExecuteRequest
