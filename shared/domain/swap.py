"""What every venue's math returns for one exact-in swap."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class InsufficientLiquidity(Exception):
    """The pool cannot fill this size (no bins left, or nothing would come out)."""


class DustAmount(InsufficientLiquidity):
    """So little that nothing would come out (a larger amount would fill)."""


@dataclass(frozen=True, slots=True)
class SwapOutcome:
    amount_in: int
    amount_out: int
    fee: int
    """Fee in base units of the input token."""
    price_impact: Decimal
    """How much worse than the pool's spot price this size fills, as a fraction."""
