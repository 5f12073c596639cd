"""Choosing where an order goes: most net output for its size, then liquidity, then latency."""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages import VenueQuote

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
