"""Prices from base-unit amounts, in UI terms (quote tokens per base token), as Decimals."""

from __future__ import annotations

from decimal import Context, Decimal

from shared.domain.tokens import Token

_PRICE = Context(prec=18)


def price_of_base(side: str, base: Token, quote: Token, amount_in: int, amount_out: int) -> Decimal:
    """Quote per base for a fill: a sell gave `amount_in` base for `amount_out` quote, a buy the reverse."""
    base_units, quote_units = (amount_in, amount_out) if side == "sell" else (amount_out, amount_in)
    return _PRICE.divide(quote.to_ui(quote_units), base.to_ui(base_units))


def output_per_input(token_in: Token, token_out: Token, amount_in: int, amount_out: int) -> Decimal:
    """Effective price of a swap: output tokens received per input token paid, after fees and impact."""
    return _PRICE.divide(token_out.to_ui(amount_out), token_in.to_ui(amount_in))
