"""Choosing where an order goes: the plan (one venue, or a split across two) with the most net
output for its size, every leg within the order's floor; equal outputs go to the deeper pool,
then the faster venue."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.domain.messages import Leg, Plan, QuoteCurve, VenueQuote
from shared.domain.tokens import format_decimal

BPS = 10_000


class NoRoute(Exception):
    """No venue returned a usable quote."""


@dataclass(frozen=True, slots=True)
class Decision:
    best: VenueQuote
    runner_up: VenueQuote | None
    reason: str


def _rank_key(quote: VenueQuote) -> tuple[int, int, int, str]:
    return (-quote.amount_out, -quote.liquidity, quote.latency_ms, quote.venue)


def choose_venue(quotes: list[VenueQuote]) -> Decision:
    """The quote with the largest amount out (already net of fees and price impact).

    Equal outputs go to the deeper pool, then to the faster venue; the venue name
    makes the order total so the same quotes always give the same decision.
    """
    if not quotes:
        raise NoRoute("no venue returned a quote")
    ranked = sorted(quotes, key=_rank_key)
    best = ranked[0]
    if len(ranked) == 1:
        return Decision(best, None, "only venue with a quote")
    second = ranked[1]
    if best.amount_out != second.amount_out:
        reason = "highest net amount out"
    elif best.liquidity != second.liquidity:
        reason = "tie on amount out; deeper liquidity"
    elif best.latency_ms != second.latency_ms:
        reason = "tie on amount out and liquidity; lower latency"
    else:
        reason = "full tie; venue name order"
    return Decision(best, second, reason)


def min_amount_out(expected_amount_out: int, slippage_bps: int) -> int:
    """The least the order accepts: floor(expected · (1 − bps/10⁴)), as Jupiter's threshold."""
    return expected_amount_out * (BPS - slippage_bps) // BPS


def advantage_bps(best: int, other: int) -> int:
    """How much more `best` yields than `other`, in basis points (rounded down)."""
    return (best - other) * BPS // other if other else 0


@dataclass(frozen=True, slots=True)
class Split:
    """`first_in` of the order to `first`'s venue, `second_in` to `second`'s."""

    first: QuoteCurve
    second: QuoteCurve
    first_in: int
    first_out: int
    second_in: int
    second_out: int

    @property
    def amount_out(self) -> int:
        return self.first_out + self.second_out


def splits(curves: list[QuoteCurve], amount_in: int) -> list[Split]:
    """Every split two curves offer: their sizes paired up, adding up to the order, both fillable."""
    if len(curves) != 2:
        return []
    first, second = curves
    return [
        Split(first, second, a, out_a, b, out_b)
        for a, out_a, b, out_b in zip(first.amounts_in, first.amounts_out, second.amounts_in, second.amounts_out,
                                      strict=False)
        if a + b == amount_in and out_a > 0 and out_b > 0
    ]


def best_split(curves: list[QuoteCurve], amount_in: int) -> Split | None:
    """The split giving the most output (the first such, in the curves' order), or None."""
    return max(splits(curves, amount_in), key=lambda split: split.amount_out, default=None)


def leg_floor(floor_amount_out: int, leg_in: int, amount_in: int) -> int:
    """A leg's share of the order's floor, by its share of the input, rounded up: with the floor
    a limit converted at the limit price (rounded up), each leg gets at least its own input
    converted at the limit, so no leg can fill worse than the limit."""
    return -(-floor_amount_out * leg_in // amount_in) if floor_amount_out else 0


@dataclass(frozen=True, slots=True)
class _Option:
    legs: list[tuple[str, str, int, int]]
    """(venue, pool, amount in, expected amount out) per leg."""
    meets_floor: bool

    @property
    def amount_out(self) -> int:
        return sum(leg[3] for leg in self.legs)


def share_percent(part: int, whole: int) -> str:
    """`part` of `whole` in percent, to two decimals (\"37.5\")."""
    return format_decimal((Decimal(part) * 100 / whole).quantize(Decimal("0.01")))


def plan_route(
    amount_in: int,
    quotes: list[VenueQuote],
    curves: list[QuoteCurve],
    input_mint: str,
    output_mint: str,
    slippage_bps: int,
    floor_amount_out: int = 0,
) -> Plan:
    """The plan with the most expected output among every venue alone and every split the curves
    offer, preferring one that gives each leg at least its share of the order's floor (a limit
    order's limit, a minAmountOut); on equal output one venue beats a split. Each leg's minimum
    is the larger of its slippage bound and that share. If no plan meets the floor, the best
    one is returned all the same: the caller sees a leg expected below its minimum."""
    ranked = sorted(quotes, key=_rank_key)
    found = splits(curves, amount_in)
    if not ranked and not found:
        raise NoRoute("no venue returned a quote")

    def option(legs: list[tuple[str, str, int, int]]) -> _Option:
        return _Option(legs, all(out >= leg_floor(floor_amount_out, leg_in, amount_in) for _, _, leg_in, out in legs))

    options = [option([(q.venue, q.pool, amount_in, q.amount_out)]) for q in ranked]
    options += [option([(s.first.venue, s.first.pool, s.first_in, s.first_out),
                        (s.second.venue, s.second.pool, s.second_in, s.second_out)]) for s in found]
    best = max(options, key=lambda o: (o.meets_floor, o.amount_out))  # the first of equals: singles come first
    best_single = ranked[0].amount_out if ranked else 0
    if len(best.legs) == 1:
        reason = choose_venue(quotes).reason
    else:
        shares = "/".join(f"{share_percent(leg[2], amount_in)}%" for leg in best.legs)
        if ranked:
            reason = (f"split {shares} beats {ranked[0].venue} alone by "
                      f"{advantage_bps(best.amount_out, best_single)} bps")
        else:
            reason = f"split {shares}: no venue can fill the whole order alone"
    legs = [
        Leg(venue=venue, pool=pool, amount_in=leg_in, expected_amount_out=leg_out,
            min_amount_out=max(min_amount_out(leg_out, slippage_bps), leg_floor(floor_amount_out, leg_in, amount_in)))
        for venue, pool, leg_in, leg_out in best.legs
    ]
    return Plan(
        input_mint=input_mint,
        output_mint=output_mint,
        amount_in=amount_in,
        expected_amount_out=best.amount_out,
        min_amount_out=sum(leg.min_amount_out for leg in legs),
        reason=reason,
        legs=legs,
        best_single_amount_out=best_single,
    )


def as_priced_now(plan: Plan, quotes: list[VenueQuote]) -> Plan:
    """A fixed plan (an executed quote's) with each leg's expected output what its venue quotes
    now for that leg's size (0 without a quote): venues, amounts in and minimums unchanged, so
    `Plan.short_leg` tells whether the market moved past the plan's minimums."""
    now = {(quote.venue, quote.amount_in): quote.amount_out for quote in quotes}
    legs = [Leg(venue=leg.venue, pool=leg.pool, amount_in=leg.amount_in, min_amount_out=leg.min_amount_out,
                expected_amount_out=now.get((leg.venue, leg.amount_in), 0)) for leg in plan.legs]
    return Plan(input_mint=plan.input_mint, output_mint=plan.output_mint, amount_in=plan.amount_in,
                expected_amount_out=sum(leg.expected_amount_out for leg in legs), min_amount_out=plan.min_amount_out,
                reason=plan.reason, legs=legs, best_single_amount_out=plan.best_single_amount_out)
