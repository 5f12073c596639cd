"""Raydium AMM v4: a constant-product pool (x·y = k) with its fee taken from the input.

Integer math as the on-chain program does it: fee = ceil(in·25/10_000),
out = floor(R_out·in_net / (R_in + in_net)).
"""

from __future__ import annotations

from decimal import Decimal
from math import isqrt

import msgspec

from shared.domain.swap import DustAmount, SwapOutcome

FEE_DENOMINATOR = 10_000
MIN_RESERVE = 1_000
"""No price move may leave a side of the pool with fewer base units than this."""


class ConstantProductPool(msgspec.Struct, tag="constant_product", array_like=True):
    """The pool's whole state, as stored."""

    mint_x: str
    mint_y: str
    reserve_x: int
    reserve_y: int
    fee_bps: int = 25

    def _reserves(self, mint_in: str) -> tuple[int, int]:
        if mint_in == self.mint_x:
            return self.reserve_x, self.reserve_y
        if mint_in == self.mint_y:
            return self.reserve_y, self.reserve_x
        raise KeyError(mint_in)

    def quote(self, mint_in: str, amount_in: int, now_s: float = 0.0) -> SwapOutcome:
        """The swap's outcome without applying it (`now_s` is unused: a constant-product fee never varies)."""
        reserve_in, reserve_out = self._reserves(mint_in)
        fee = -(-amount_in * self.fee_bps // FEE_DENOMINATOR)
        in_net = amount_in - fee
        amount_out = reserve_out * in_net // (reserve_in + in_net)
        if amount_out <= 0:
            raise DustAmount("amount too small to produce any output")
        # As Raydium's SDK: |(out / in_net) / (R_out / R_in) − 1|
        impact = abs(Decimal(amount_out * reserve_in) / Decimal(in_net * reserve_out) - 1)
        return SwapOutcome(amount_in, amount_out, fee, impact)

    def swap(self, mint_in: str, amount_in: int, now_s: float = 0.0) -> SwapOutcome:
        outcome = self.quote(mint_in, amount_in)
        if mint_in == self.mint_x:
            self.reserve_x += amount_in
            self.reserve_y -= outcome.amount_out
        else:
            self.reserve_y += amount_in
            self.reserve_x -= outcome.amount_out
        return outcome

    def price(self) -> Decimal:
        """Spot price: base units of y per base unit of x."""
        return Decimal(self.reserve_y) / Decimal(self.reserve_x)

    def reserve_of(self, mint: str) -> int:
        """How much of `mint` the pool holds (its depth in that token)."""
        return self._reserves(mint)[0]

    def max_amount_in(self, mint_in: str, now_s: float = 0.0) -> int | None:
        """The most input a swap can take: None, any size (the output only nears the reserve)."""
        self._reserves(mint_in)
        return None

    def set_price(self, price: Decimal) -> None:
        """Move the spot price to `price` keeping k, as arbitrage would."""
        k = self.reserve_x * self.reserve_y
        reserve_x = isqrt(int(Decimal(k) / price))
        if reserve_x < MIN_RESERVE or k // reserve_x < MIN_RESERVE:
            raise ValueError(f"price {price} would drain the pool")
        self.reserve_x, self.reserve_y = reserve_x, k // reserve_x
