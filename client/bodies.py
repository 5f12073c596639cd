"""What the commands send: an order's body from `dex submit`'s flags (each flag one body field; the
server checks every value and names the field it refuses), and a key request's."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

ORDER_FIELDS = {
    "side": "side",
    "base": "baseAsset",
    "quote": "quoteAsset",
    "amount": "amount",
    "slippage_bps": "slippageBps",
    "min_out": "minAmountOut",
    "limit_price": "limitPrice",
    "min_liquidity": "minLiquidity",
    "max_price": "maxPrice",
    "max_price_impact_bps": "maxPriceImpactBps",
    "client_order_id": "clientOrderId",
}
"""Flag (as argparse names it) → body field."""
KEY_FIELDS = {"label": "label", "per_minute": "ordersPerMinute", "in_flight": "maxInFlight"}
SECONDS_FROM_NOW_BELOW = 10**9
"""The server reads an `expiresAt` number under this as seconds from now, otherwise as Unix seconds."""


def expires_at(expires_in: int | None, at: str | None) -> int | str | None:
    """`--expires-in SECONDS` as seconds from now; `--expires-at` as Unix seconds when it is all
    digits, else as ISO 8601 text."""
    if expires_in is not None:
        return expires_in
    if at is None:
        return None
    return int(at) if at.isascii() and at.isdigit() else at


def order_body(kind: str, args: Namespace) -> dict[str, Any]:
    """The body of POST /api/orders/execute for `dex submit KIND` with these flags (a flag not given
    is left out, so the server's default applies)."""
    body: dict[str, Any] = {"type": kind}
    for flag, field in ORDER_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            body[field] = value
    expiry = expires_at(getattr(args, "expires_in", None), getattr(args, "expires_at", None))
    if expiry is not None:
        body["expiresAt"] = expiry
    return body


def key_body(args: Namespace) -> dict[str, Any]:
    """The body of POST /api/keys for `dex keys create` (a limit left out: the calling key's)."""
    return {field: value for flag, field in KEY_FIELDS.items() if (value := getattr(args, flag, None)) is not None}
