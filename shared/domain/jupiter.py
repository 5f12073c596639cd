"""Jupiter's quote, as pure code: a plan written as Jupiter's `QuoteResponse`, a `QuoteResponse`
read back into the plan it promises (every field checked; a refusal names its field, e.g.
`quoteResponse.routePlan[0].swapInfo.ammKey`), the venues' labels, amounts in base units, and the
slot clock that dates a quote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.domain.errors import FieldError
from shared.domain.market import METEORA, RAYDIUM, VENUES
from shared.domain.messages import Leg, Plan, QuoteResponse, RoutePlanStep, SwapInfo
from shared.domain.swap import SwapOutcome
from shared.domain.tokens import U64_MAX, TokenRegistry

EXACT_IN = "ExactIn"
FIELD = "quoteResponse"
SLOT_MS = 400
SLOT_EPOCH = datetime(2020, 3, 16, 14, 29, tzinfo=UTC)
"""The simulated chain's slot clock: a slot every 400 ms since Solana mainnet-beta's genesis, so a
quote's `contextSlot` reads like a Solana slot and dates it to the slot."""
CLOCK_SKEW_SLOTS = 5
"""How far ahead of this process's slot a quote's slot may be (another process's clock): 2 s."""
_IMPACT_QUANTUM = Decimal("1e-12")
_LABELS = {"raydium": RAYDIUM, "meteora": METEORA, "meteora dlmm": METEORA}
"""The venues' labels, any case: the engine's (`raydium`, `meteora`) and Jupiter's names of those
programs (`Raydium`, `Meteora DLMM`)."""


def slot_at(now: datetime) -> int:
    """The simulated chain's slot at `now`."""
    return (now - SLOT_EPOCH) // timedelta(milliseconds=SLOT_MS)


def venue_of(label: str) -> str | None:
    """The venue a label names, or None."""
    return _LABELS.get(label.strip().casefold())


def _labels(field: str, values: Sequence[str] | None) -> list[str]:
    """The venues of a `dexes` / `excludeDexes` parameter: repeated keys, comma-separated, or both."""
    venues = []
    for name in (part.strip() for value in values or () for part in value.split(",")):
        if not name:
            continue
        venue = venue_of(name)
        if venue is None:
            raise FieldError(field, f"unknown dex {name[:64]!r}: the venues are {', '.join(VENUES)}")
        venues.append(venue)
    return venues


def venues_for(dexes: Sequence[str] | None, exclude_dexes: Sequence[str] | None) -> list[str] | None:
    """The venues a quote may use, from Jupiter's `dexes` (only these) and `excludeDexes` (not
    these); None: every venue. A label naming no venue, or no venue left, is a FieldError."""
    wanted, excluded = _labels("dexes", dexes), _labels("excludeDexes", exclude_dexes)
    chosen = [venue for venue in VENUES if (not wanted or venue in wanted) and venue not in excluded]
    if not chosen:
        raise FieldError("excludeDexes" if excluded else "dexes", "NO_ROUTES_FOUND: no venue left to quote on")
    return None if len(chosen) == len(VENUES) else chosen


def parse_base_units(field: str, text: str, minimum: int = 1) -> int:
    """An amount in base units written as Jupiter writes it: ASCII digits, at least `minimum`, u64."""
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise FieldError(field, f"{field} must be an integer in base units, as digits (1.5 SOL = \"1500000000\")")
    value = int(text)
    if value < minimum:
        raise FieldError(field, f"{field} must be at least {minimum}")
    if value > U64_MAX:
        raise FieldError(field, f"{field} exceeds the largest possible token amount")
    return value


def percents(parts: Sequence[int], whole: int) -> list[int]:
    """Each part's share of `whole` in whole percents, rounded; the last takes what makes 100."""
    shares = [(part * 100 + whole // 2) // whole for part in parts[:-1]]
    return [*shares, 100 - sum(shares)]


def quote_response(plan: Plan, outcomes: Sequence[SwapOutcome], slippage_bps: int, context_slot: int,
                   time_taken: float) -> QuoteResponse:
    """The plan as Jupiter's quote: one routePlan leg per venue with its pool's fee (`outcomes`: each
    leg's pool math), the plan's least amount out as `otherAmountThreshold`, and its price impact
    (the legs' impacts weighted by input)."""
    impact = sum((o.price_impact * leg.amount_in / plan.amount_in for leg, o in zip(plan.legs, outcomes, strict=True)),
                 Decimal(0))
    shares = percents([leg.amount_in for leg in plan.legs], plan.amount_in)
    return QuoteResponse(
        input_mint=plan.input_mint, in_amount=str(plan.amount_in), output_mint=plan.output_mint,
        out_amount=str(plan.expected_amount_out), other_amount_threshold=str(plan.min_amount_out),
        swap_mode=EXACT_IN, slippage_bps=slippage_bps, price_impact_pct=format(impact.quantize(_IMPACT_QUANTUM), "f"),
        route_plan=[
            RoutePlanStep(swap_info=SwapInfo(
                amm_key=leg.pool, label=leg.venue, input_mint=plan.input_mint, output_mint=plan.output_mint,
                in_amount=str(leg.amount_in), out_amount=str(leg.expected_amount_out), fee_amount=str(outcome.fee),
                fee_mint=plan.input_mint,
            ), percent=share)
            for leg, outcome, share in zip(plan.legs, outcomes, shares, strict=True)
        ],
        context_slot=context_slot, time_taken=time_taken,
    )


@dataclass(frozen=True, slots=True)
class QuotedPlan:
    """What an executed quote promises: its plan (each leg's least amount out its share of
    `otherAmountThreshold`), the slippage it was quoted with, and the slot it was priced at."""

    plan: Plan
    slippage_bps: int
    context_slot: int


def _leg_field(index: int, name: str) -> str:
    return f"{FIELD}.routePlan[{index}].swapInfo.{name}"


def leg_minimums(threshold: int, outs: Sequence[int]) -> list[int]:
    """`threshold` shared among legs by their expected outputs (rounded down; the last leg takes the
    rest), so the legs' minimums add up to it exactly."""
    total = sum(outs)
    shares = [threshold * out // total for out in outs[:-1]]
    return [*shares, threshold - sum(shares)]


def _read_leg(index: int, step: RoutePlanStep, quote: QuoteResponse) -> tuple[str, str, int, int]:
    """(venue, pool, amount in, amount out) of one leg, every field checked."""
    info = step.swap_info
    for name, value, expected in (("inputMint", info.input_mint, quote.input_mint),
                                  ("outputMint", info.output_mint, quote.output_mint)):
        if value != expected:
            raise FieldError(_leg_field(index, name), f"{name} must be the quote's {name} ({expected[:64]}): every"
                                                      " leg swaps inputMint for outputMint directly (no multi-hop)")
    venue = None if info.label is None else venue_of(info.label)
    if venue is None:
        raise FieldError(_leg_field(index, "label"), f"label must name a venue: {', '.join(VENUES)}")
    amount_in = parse_base_units(_leg_field(index, "inAmount"), info.in_amount)
    amount_out = parse_base_units(_leg_field(index, "outAmount"), info.out_amount)
    if info.fee_amount is not None:
        parse_base_units(_leg_field(index, "feeAmount"), info.fee_amount, minimum=0)
    if info.fee_mint is not None and info.fee_mint not in (quote.input_mint, quote.output_mint):
        raise FieldError(_leg_field(index, "feeMint"), "feeMint must be the quote's inputMint or outputMint")
    return venue, info.amm_key, amount_in, amount_out


def read_quote(quote: QuoteResponse, tokens: TokenRegistry) -> QuotedPlan:
    """The plan a quote promises, every field checked (FieldError naming it): listed mints, positive
    amounts in base units, ExactIn, a threshold no higher than `outAmount`, one direct leg per venue
    whose amounts add up to the quote's and whose percents add up to 100, and a `contextSlot`. Which
    pools the venues have, and the quote's age, are the caller's to check (`check_pools`,
    `check_age`): they need the market and the clock."""
    if quote.swap_mode != EXACT_IN:
        raise FieldError(f"{FIELD}.swapMode", f"only {EXACT_IN} quotes are executed: ask for an {EXACT_IN} quote")
    for name, mint in (("inputMint", quote.input_mint), ("outputMint", quote.output_mint)):
        if tokens.find(mint) is None:
            raise FieldError(f"{FIELD}.{name}", f"unknown mint {mint[:64]!r}: no venue lists it")
    if quote.input_mint == quote.output_mint:
        raise FieldError(f"{FIELD}.outputMint", "outputMint must differ from inputMint")
    amount_in = parse_base_units(f"{FIELD}.inAmount", quote.in_amount)
    amount_out = parse_base_units(f"{FIELD}.outAmount", quote.out_amount)
    threshold = parse_base_units(f"{FIELD}.otherAmountThreshold", quote.other_amount_threshold, minimum=0)
    if threshold > amount_out:
        raise FieldError(f"{FIELD}.otherAmountThreshold", "otherAmountThreshold must not exceed outAmount")
    if quote.context_slot is None:
        raise FieldError(f"{FIELD}.contextSlot", "contextSlot is required: it dates the quote")
    if not quote.route_plan:
        raise FieldError(f"{FIELD}.routePlan", "routePlan must have at least one leg")
    legs = [_read_leg(index, step, quote) for index, step in enumerate(quote.route_plan)]
    for index, (venue, *_) in enumerate(legs):
        if any(other[0] == venue for other in legs[:index]):
            raise FieldError(_leg_field(index, "ammKey"), f"{venue}'s pool appears twice in routePlan")
    for name, total, expected in (("inAmount", sum(leg[2] for leg in legs), amount_in),
                                  ("outAmount", sum(leg[3] for leg in legs), amount_out)):
        if total != expected:
            raise FieldError(f"{FIELD}.{name}", f"the legs' {name}s add up to {total}, not {name} {expected}")
    percent = sum(step.percent for step in quote.route_plan)
    if percent != 100:
        raise FieldError(f"{FIELD}.routePlan", f"the legs' percents add up to {percent}, not 100")
    minimums = leg_minimums(threshold, [leg[3] for leg in legs])
    plan = Plan(
        input_mint=quote.input_mint, output_mint=quote.output_mint, amount_in=amount_in, expected_amount_out=amount_out,
        min_amount_out=threshold, reason=f"as quoted at slot {quote.context_slot}",
        legs=[Leg(venue=venue, pool=pool, amount_in=leg_in, expected_amount_out=leg_out, min_amount_out=least)
              for (venue, pool, leg_in, leg_out), least in zip(legs, minimums, strict=True)],
        best_single_amount_out=0,
    )
    return QuotedPlan(plan, quote.slippage_bps, quote.context_slot)


def check_pools(plan: Plan, pools: Mapping[str, str]) -> None:
    """Each leg's `ammKey` is its venue's pool for the pair (`pools`: venue → pool address, as the
    market lists them); FieldError naming the leg's field otherwise."""
    for index, leg in enumerate(plan.legs):
        if leg.venue not in pools:
            raise FieldError(_leg_field(index, "label"), f"{leg.venue} has no pool for this pair")
        if leg.pool != pools[leg.venue]:
            raise FieldError(_leg_field(index, "ammKey"),
                             f"ammKey {leg.pool[:64]!r} is not {leg.venue}'s pool for this pair ({pools[leg.venue]})")


def check_age(context_slot: int, now: datetime, max_age_s: int) -> None:
    """The quote was priced at most `max_age_s` before `now` (and not in the future); FieldError
    naming `quoteResponse.contextSlot` otherwise."""
    field, current = f"{FIELD}.contextSlot", slot_at(now)
    age_slots = current - context_slot
    if age_slots < -CLOCK_SKEW_SLOTS:
        raise FieldError(field, f"contextSlot {context_slot} is ahead of the chain (slot {current}): "
                                "not a quote from this engine")
    if age_slots * SLOT_MS > max_age_s * 1000:
        raise FieldError(field, f"the quote is stale: priced at slot {context_slot}, {age_slots * SLOT_MS / 1000:g} s"
                                f" ago (slot {current}); quotes are executed up to {max_age_s} s old: ask for a new one")
