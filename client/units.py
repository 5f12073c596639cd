"""Amounts as people read them: the API gives base units (lamports, micro-USDC) and mints; the
tokens' symbols and decimals come from GET /api/markets."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class Token:
    symbol: str
    decimals: int


class Tokens:
    """Mint → symbol and decimals, as the server lists them."""

    def __init__(self, by_mint: dict[str, Token] | None = None) -> None:
        self.by_mint = by_mint or {}

    @classmethod
    def from_markets(cls, markets: dict[str, Any]) -> Tokens:
        by_mint = {}
        for pair in markets.get("pairs", []):
            for side in ("base", "quote"):
                token = pair.get(side) or {}
                if "mint" in token:
                    by_mint[token["mint"]] = Token(token.get("symbol") or token["mint"][:6], int(token["decimals"]))
        return cls(by_mint)

    def symbol(self, mint: str | None) -> str:
        token = self.by_mint.get(mint or "")
        return token.symbol if token else short(mint)

    def amount(self, base_units: Any, mint: str | None, with_symbol: bool = True) -> str:
        """Base units as a decimal amount of the token ("1.5 SOL"); the raw number when the token or
        the value is unknown."""
        if base_units is None:
            return "–"
        token = self.by_mint.get(mint or "")
        try:
            units = int(base_units)
        except (TypeError, ValueError):
            return str(base_units)
        if token is None:
            return f"{units} units" + (f" of {short(mint)}" if with_symbol and mint else "")
        text = plain(Decimal(units).scaleb(-token.decimals))
        return f"{text} {token.symbol}" if with_symbol else text


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 1.5, 0.000001, 1500."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def price(text: Any, digits: int = 8) -> str:
    """A decimal price to `digits` significant digits (the API gives up to 18)."""
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return str(text)
    if not value.is_finite() or not value:
        return plain(value) if value.is_finite() else str(text)
    return plain(value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1)))


def short(text: str | None, keep: int = 8) -> str:
    """A long id or signature cut to its first characters."""
    if not text:
        return "–"
    return text if len(text) <= keep + 1 else text[:keep] + "…"
