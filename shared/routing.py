"""Choosing where an order goes: most net output for its size, then liquidity, then latency."""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages import Leg, Plan, QuoteCurve, VenueQuote

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
    """Fraction `share`/`steps` of the input to `first`, the rest to `second`."""

    first: QuoteCurve
    second: QuoteCurve
    share: int
    steps: int
    amount_out: int


def best_split(curves: list[QuoteCurve]) -> Split | None:
    """The most output from sharing the order between two venues, searched over every
    1/steps of the input. Both outputs are concave in size, so this is where their
    marginal prices meet (to within one step). None without two curves to combine."""
    if len(curves) != 2 or curves[0].steps != curves[1].steps:
        return None
    first, second = curves
    steps = first.steps
    share = max(range(1, steps), key=lambda i: first.amounts_out[i] + second.amounts_out[steps - i])
    return Split(first, second, share, steps, first.amounts_out[share] + second.amounts_out[steps - share])


def _ceil_share(total: int, part: int, whole: int) -> int:
    return -(-total * part // whole) if whole else 0


def plan_route(
    quotes: list[VenueQuote],
    curves: list[QuoteCurve],
    input_mint: str,
    output_mint: str,
    slippage_bps: int,
    floor_amount_out: int = 0,
) -> Plan:
    """Best single venue, or a split when it gives more. Each leg's minimum is the larger of
    its slippage bound and its share of the order's floor (a limit order's limit)."""
    decision = choose_venue(quotes)
    best = decision.best
    amount_in = best.amount_in
    split = best_split(curves)
    if split is not None and split.amount_out > best.amount_out:
        first_in = amount_in * split.share // split.steps
        parts = [
            (split.first, first_in, split.first.amounts_out[split.share]),
            (split.second, amount_in - first_in, split.second.amounts_out[split.steps - split.share]),
        ]
        gain = advantage_bps(split.amount_out, best.amount_out)
        reason = f"split {split.share}/{split.steps} beats {best.venue} alone by {gain} bps"
    else:
        parts = [(best, amount_in, best.amount_out)]
        reason = decision.reason
    expected = sum(out for _, _, out in parts)
    legs = [
        Leg(
            venue=source.venue,
            pool=source.pool,
            amount_in=leg_in,
            expected_amount_out=leg_out,
            min_amount_out=max(min_amount_out(leg_out, slippage_bps), _ceil_share(floor_amount_out, leg_out, expected)),
        )
        for source, leg_in, leg_out in parts
    ]
    return Plan(
        input_mint=input_mint,
        output_mint=output_mint,
        amount_in=amount_in,
        expected_amount_out=expected,
        min_amount_out=sum(leg.min_amount_out for leg in legs),
        reason=reason,
        legs=legs,
        best_single_amount_out=best.amount_out,
    )
