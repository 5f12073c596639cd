"""When a resting order fires: limit crossing, expiry, sniper safety checks. Pure code.

Prices are Decimals in UI terms: quote tokens per base token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext

from shared.errors import FieldError
from shared.tokens import Token

MAX_LIFETIME = timedelta(days=30)
_PRICE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def parse_price(field: str, text: str) -> Decimal:
    """A positive decimal string such as "180.5" (no signs, no exponents)."""
    if not _PRICE_RE.fullmatch(text) or len(text.replace(".", "").lstrip("0")) > 30:
        raise FieldError(field, f"{field} must be a positive decimal string such as \"180.5\"")
    price = Decimal(text)
    if price <= 0:
        raise FieldError(field, f"{field} must be greater than zero")
    return price


RELATIVE_SECONDS_BELOW = 1_000_000_000
"""An integer expiry below this (2001 as Unix time) is a number of seconds from now."""


def parse_expiry(field: str, value: str | int, now: datetime) -> datetime:
    """An ISO 8601 time (UTC if it has no offset), Unix seconds, or — below 10^9 — seconds
    from now; in the future and within 30 days."""
    try:
        if isinstance(value, int) and 0 < value < RELATIVE_SECONDS_BELOW:
            moment = now + timedelta(seconds=value)
        elif isinstance(value, int):
            moment = datetime.fromtimestamp(value, UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise FieldError(field, f"{field} must be an ISO 8601 time or Unix seconds") from None
    if moment <= now:
        raise FieldError(field, f"{field} is in the past")
    if moment - now > MAX_LIFETIME:
        raise FieldError(field, f"{field} is more than {MAX_LIFETIME.days} days away")
    return moment


def unit_price(price: Decimal, base: Token, quote: Token) -> Decimal:
    """UI price → quote base units per base base unit."""
    return price.scaleb(quote.decimals - base.decimals)


def floor_amount_out(side: str, amount_in: int, limit_price: Decimal, base: Token, quote: Token) -> int:
    """The least a fill at `limit_price` or better gives: a sell of base must bring
    amount·limit in quote; a buy with quote must bring amount/limit in base. Rounded up,
    so a fill at exactly the limit passes and anything worse does not."""
    with localcontext() as exact_math:
        exact_math.prec = 80  # u64 amounts × 30-digit prices, exactly (the default 28 digits round)
        per_unit = unit_price(limit_price, base, quote)
        exact = amount_in * per_unit if side == "sell" else Decimal(amount_in) / per_unit
        return int(exact.to_integral_value(rounding=ROUND_CEILING))


def crossed(side: str, limit_price: Decimal, executable_price: Decimal) -> bool:
    """A sell fires when the price reaches or passes the limit from below; a buy from above."""
    return executable_price >= limit_price if side == "sell" else executable_price <= limit_price


def expired(expires_at: datetime, now: datetime) -> bool:
    return now >= expires_at


@dataclass(frozen=True, slots=True)
class Launch:
    """What a sniper sees of a new pool, for its order's size."""

    venue: str
    liquidity_quote: Decimal
    """Depth of the new pool in quote tokens (UI units)."""
    price: Decimal
    """Executable price for this order's size, quote per base."""
    price_impact_bps: int


def launch_refusal(conditions: dict, launch: Launch) -> str | None:
    """Why this launch fails the order's safety checks, or None if the order may buy."""
    try:
        min_liquidity = conditions.get("minLiquidity")
        if min_liquidity is not None and launch.liquidity_quote < Decimal(min_liquidity):
            return f"liquidity {launch.liquidity_quote} below minLiquidity {min_liquidity}"
        max_price = conditions.get("maxPrice")
        if max_price is not None and launch.price > Decimal(max_price):
            return f"price {launch.price} above maxPrice {max_price}"
    except InvalidOperation:
        return "unreadable conditions"
    max_impact = conditions.get("maxPriceImpactBps")
    if max_impact is not None and launch.price_impact_bps > max_impact:
        return f"price impact {launch.price_impact_bps} bps above maxPriceImpactBps {max_impact}"
    return None
