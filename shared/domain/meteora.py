"""Meteora DLMM: liquidity in discrete price bins, price(id) = (1 + binStep/10_000)^id.

A swap fills the active bin at that bin's constant price, then walks to the next
bin (down when selling x, up when buying x). Each bin charges the base fee plus a
variable fee that grows with the volatility accumulator, as in the DLMM program.
Prices are y base units per x base unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from functools import lru_cache

import msgspec

from shared.domain.swap import DustAmount, InsufficientLiquidity, SwapOutcome

FEE_PRECISION = 10**9
MAX_FEE_RATE = 10**8  # 10 %
BASIS_POINT_MAX = 10_000
_MATH = Context(prec=50)


@lru_cache(maxsize=1 << 16)
def _bin_price(bin_step: int, bin_id: int) -> Decimal:
    """(1 + binStep/10_000)^id, computed once per (step, id): a swap walks the same bins again and again."""
    return _MATH.power(Decimal(BASIS_POINT_MAX + bin_step) / BASIS_POINT_MAX, bin_id)


class FeeParameters(msgspec.Struct, frozen=True, array_like=True):
    """Defaults are the ones the DLMM SDK's own tests use."""

    base_factor: int = 10_000
    variable_fee_control: int = 40_000
    filter_period_s: float = 30
    decay_period_s: float = 600
    reduction_factor: int = 5_000
    max_volatility_accumulator: int = 350_000


@dataclass(frozen=True, slots=True)
class Bin:
    amount_x: int
    amount_y: int


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class DlmmPool(msgspec.Struct, tag="dlmm", array_like=True):
    """The pool's whole state, as stored: bins `lowest_id` … `lowest_id + len − 1`, their x and y
    amounts in two lists (compact to store and quick to load)."""

    mint_x: str
    mint_y: str
    bin_step: int
    active_id: int
    lowest_id: int
    amounts_x: list[int]
    amounts_y: list[int]
    fees: FeeParameters = FeeParameters()
    volatility_accumulator: int = 0
    volatility_reference: int = 0
    index_reference: int = 0
    last_swap_at_s: float | None = None
    """When the last swap happened (None: never)."""
    y_per_bin: int = 0
    bins_each_side: int = 0

    @classmethod
    def with_uniform_liquidity(
        cls, mint_x: str, mint_y: str, bin_step: int, price: Decimal, y_per_bin: int, bins_each_side: int
    ) -> DlmmPool:
        pool = cls(mint_x, mint_y, bin_step, 0, 0, [], [])
        pool.fill_around(pool.bin_id_for(price), y_per_bin, bins_each_side)
        return pool

    @property
    def bins(self) -> dict[int, Bin]:
        """Every bin by id (a copy, for reading)."""
        return {self.lowest_id + i: Bin(x, y) for i, (x, y) in enumerate(zip(self.amounts_x, self.amounts_y))}

    def _index(self, bin_id: int) -> int | None:
        index = bin_id - self.lowest_id
        return index if 0 <= index < len(self.amounts_x) else None

    def bin_price(self, bin_id: int) -> Decimal:
        return _bin_price(self.bin_step, bin_id)

    def bin_id_for(self, price: Decimal) -> int:
        step = _MATH.ln(Decimal(BASIS_POINT_MAX + self.bin_step) / BASIS_POINT_MAX)
        return round(_MATH.ln(price) / step)

    def fill_around(self, active_id: int, y_per_bin: int, bins_each_side: int) -> None:
        """Lay liquidity out evenly: y below the active bin, x above, half of each in it."""
        self.active_id, self.y_per_bin, self.bins_each_side = active_id, y_per_bin, bins_each_side
        self.lowest_id = active_id - bins_each_side
        self.amounts_x = [0] * bins_each_side + [_floor(_MATH.divide(y_per_bin // 2, self.bin_price(active_id)))] + [
            _floor(_MATH.divide(y_per_bin, self.bin_price(active_id + offset))) for offset in range(1, bins_each_side + 1)
        ]
        self.amounts_y = [y_per_bin] * bins_each_side + [y_per_bin // 2] + [0] * bins_each_side

    def price(self) -> Decimal:
        return self.bin_price(self.active_id)

    def reserve_of(self, mint: str) -> int:
        """How much of `mint` the pool holds across its bins (its depth in that token)."""
        if mint not in (self.mint_x, self.mint_y):
            raise KeyError(mint)
        return sum(self.amounts_x if mint == self.mint_x else self.amounts_y)

    def max_amount_in(self, mint_in: str, now_s: float) -> int | None:
        """The most input one swap at `now_s` can take: the cost of emptying every bin on its way
        (selling x walks down from the active bin, buying x walks up), fees included, plus what
        the last bin still absorbs through rounding. One base unit more finds no bin to fill."""
        if mint_in not in (self.mint_x, self.mint_y):
            raise KeyError(mint_in)
        selling_x = mint_in == self.mint_x
        reference, index_reference = self._volatility_start(now_s)
        total, bin_id = 0, self.active_id
        while (index := self._index(bin_id)) is not None:
            _, rate = self._bin_rate(bin_id, reference, index_reference)
            reserve_out = self.amounts_y[index] if selling_x else self.amounts_x[index]
            net, fee = self._drain(reserve_out, bin_id, rate, selling_x)
            total += net + fee
            bin_id += -1 if selling_x else 1
        if total == 0:
            return 0
        # Rounding lets the last bin take a few units more: find the exact edge (fills are monotone).
        step = 1
        while self._fills(mint_in, total + step, now_s):
            step *= 2
        low, high = total + step // 2, total + step  # low fills (or is `total`), high does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self._fills(mint_in, middle, now_s) else (low, middle)
        return low

    def _fills(self, mint_in: str, amount_in: int, now_s: float) -> bool:
        try:
            self._walk(mint_in, amount_in, now_s, apply=False)
        except InsufficientLiquidity:
            return False
        return True

    def _bin_rate(self, bin_id: int, reference: int, index_reference: int) -> tuple[int, int]:
        """(volatility accumulator, fee rate) for a swap crossing into `bin_id`."""
        accumulator = min(
            reference + abs(index_reference - bin_id) * BASIS_POINT_MAX, self.fees.max_volatility_accumulator
        )
        return accumulator, min(self.base_fee_rate() + self.variable_fee_rate(accumulator), MAX_FEE_RATE)

    def _drain(self, reserve_out: int, bin_id: int, rate: int, selling_x: bool) -> tuple[int, int]:
        """(net input, fee) that takes all `reserve_out` of a bin."""
        price = self.bin_price(bin_id)
        net = _ceil(_MATH.divide(reserve_out, price) if selling_x else _MATH.multiply(reserve_out, price))
        return net, _ceil_div(net * rate, FEE_PRECISION - rate)

    def base_fee_rate(self) -> int:
        return self.fees.base_factor * self.bin_step * 10

    def variable_fee_rate(self, volatility_accumulator: int) -> int:
        square = (volatility_accumulator * self.bin_step) ** 2
        return _ceil_div(self.fees.variable_fee_control * square, 10**11)

    def _volatility_start(self, now_s: float) -> tuple[int, int]:
        """(reference, index reference) for a swap at `now_s`, decayed as the program does."""
        elapsed = float("inf") if self.last_swap_at_s is None else now_s - self.last_swap_at_s
        reference, index_reference = self.volatility_reference, self.index_reference
        if elapsed >= self.fees.filter_period_s:
            index_reference = self.active_id
            if elapsed < self.fees.decay_period_s:
                reference = self.volatility_accumulator * self.fees.reduction_factor // BASIS_POINT_MAX
            else:
                reference = 0
        return reference, index_reference

    def quote(self, mint_in: str, amount_in: int, now_s: float) -> SwapOutcome:
        return self._walk(mint_in, amount_in, now_s, apply=False)

    def swap(self, mint_in: str, amount_in: int, now_s: float) -> SwapOutcome:
        return self._walk(mint_in, amount_in, now_s, apply=True)

    def _walk(self, mint_in: str, amount_in: int, now_s: float, apply: bool) -> SwapOutcome:
        if mint_in not in (self.mint_x, self.mint_y):
            raise KeyError(mint_in)
        selling_x = mint_in == self.mint_x
        reference, index_reference = self._volatility_start(now_s)
        remaining, amount_out, fee_total = amount_in, 0, 0
        bin_id, accumulator = self.active_id, self.volatility_accumulator
        fills: list[tuple[int, int, int]] = []  # (bin index, used in, paid out): applied only if the walk succeeds
        while remaining > 0:
            index = self._index(bin_id)
            if index is None:
                raise InsufficientLiquidity("the pool has no more bins to fill this size")
            accumulator, rate = self._bin_rate(bin_id, reference, index_reference)
            price = self.bin_price(bin_id)
            reserve_out = self.amounts_y[index] if selling_x else self.amounts_x[index]
            fee = _ceil_div(remaining * rate, FEE_PRECISION)
            net = remaining - fee
            out = _floor(_MATH.multiply(net, price) if selling_x else _MATH.divide(net, price))
            if out <= reserve_out:
                used, got = remaining, out
            else:
                net, fee = self._drain(reserve_out, bin_id, rate, selling_x)
                used, got = min(net + fee, remaining), reserve_out
            fills.append((index, used, got))
            remaining -= used
            amount_out += got
            fee_total += fee
            if remaining > 0:
                bin_id += -1 if selling_x else 1
        if amount_out <= 0:
            raise DustAmount("amount too small to produce any output")
        spot = self.price()
        net_in = amount_in - fee_total
        at_spot = _MATH.multiply(net_in, spot) if selling_x else _MATH.divide(net_in, spot)
        impact = max(Decimal(0), 1 - _MATH.divide(amount_out, at_spot))
        if apply:
            into, out_of = (self.amounts_x, self.amounts_y) if selling_x else (self.amounts_y, self.amounts_x)
            for index, used, got in fills:
                into[index] += used
                out_of[index] -= got
            self.active_id = bin_id
            self.volatility_reference, self.index_reference = reference, index_reference
            self.volatility_accumulator, self.last_swap_at_s = accumulator, now_s
        return SwapOutcome(amount_in, amount_out, fee_total, impact)

    def set_price(self, price: Decimal) -> None:
        """Re-centre the same liquidity shape on `price`, as LPs and arbitrage would."""
        self.fill_around(self.bin_id_for(price), self.y_per_bin, self.bins_each_side)
