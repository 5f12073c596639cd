"""When a resting order fires: limit crossing, expiry, sniper safety checks. Pure code.

Prices are Decimals in UI terms: quote tokens per base token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext

import msgspec

from shared.domain.errors import FieldError
from shared.domain.orders import OrderRecord
from shared.domain.tokens import Token

MAX_LIFETIME = timedelta(days=30)


RELATIVE_SECONDS_BELOW = 1_000_000_000
"""An integer expiry below this (2001 as Unix time) is a number of seconds from now."""


@dataclass(frozen=True, slots=True)
class Expiry:
    """An expiry as the client gave it, read but not yet placed in time: `seconds` after the
    order is taken, or `at` a moment. Two orders with equal expiries are equal orders."""

    seconds: int | None = None
    at: datetime | None = None

    def moment(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds) if self.seconds is not None else self.at


def read_expiry(field: str, value: str | int) -> Expiry:
    """An ISO 8601 time (UTC if it has no offset), Unix seconds, or — below 10^9 — seconds from now."""
    try:
        if isinstance(value, int) and 0 < value < RELATIVE_SECONDS_BELOW:
            return Expiry(seconds=value)
        if isinstance(value, int):
            return Expiry(at=datetime.fromtimestamp(value, UTC))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise FieldError(field, f"{field} must be an ISO 8601 time or Unix seconds") from None
    return Expiry(at=moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def parse_expiry(field: str, value: str | int | Expiry, now: datetime) -> datetime:
    """The expiry as a moment, which must be in the future and within 30 days of `now`."""
    moment = (value if isinstance(value, Expiry) else read_expiry(field, value)).moment(now)
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


class RestingOrder(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a watcher needs of a waiting order, stored as JSON beside the index entries (the
    order id is the key's, so it is not stored)."""

    kind: str
    side: str
    base_mint: str
    quote_mint: str
    input_mint: str
    output_mint: str
    amount_in: int
    limit_price: Decimal | None = None
    conditions: dict | None = None
    order_id: str = ""

    @classmethod
    def of(cls, order: OrderRecord) -> RestingOrder:
        """The order's fields a watcher needs (by name: this struct declares which)."""
        return cls(**{name: getattr(order, name) for name in cls.__struct_fields__ if name != "order_id"})
