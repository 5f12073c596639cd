"""How orders look in the HTTP API (local runtime and cloud alike)."""

from __future__ import annotations

from typing import Any

from shared.domain.orders import AUTO_KEY_PREFIX
from shared.domain.events import format_ts
from shared.domain.orders import OrderRecord
from shared.domain.tokens import TokenRegistry, format_decimal


def order_view(order: OrderRecord, tokens: TokenRegistry) -> dict[str, Any]:
    base, quote = tokens.find(order.base_mint), tokens.find(order.quote_mint)
    key = order.idempotency_key
    return {
        "orderId": order.id,
        "status": order.status.value,
        "type": order.kind,
        "side": order.side,
        "baseAsset": base.symbol if base else order.base_mint,
        "quoteAsset": quote.symbol if quote else order.quote_mint,
        "inputMint": order.input_mint,
        "outputMint": order.output_mint,
        "amountIn": order.amount_in,
        "slippageBps": order.slippage_bps,
        "limitPrice": None if order.limit_price is None else format_decimal(order.limit_price),
        "expiresAt": None if order.expires_at is None else format_ts(order.expires_at),
        "conditions": order.conditions,
        "minAmountOut": order.min_amount_out,
        "venue": order.venue,
        "plan": order.plan,
        "txSignature": order.tx_signature,
        "amountOut": order.amount_out,
        "filledAmountIn": order.filled_amount_in,
        "executionPrice": None if order.executed_price is None else format_decimal(order.executed_price),
        "failureReason": order.failure_reason,
        "attempts": order.attempts,
        "lastSeq": order.last_seq,
        "clientOrderId": None if key is None or key.startswith(AUTO_KEY_PREFIX) else key,
        "createdAt": format_ts(order.created_at),
        "updatedAt": format_ts(order.updated_at),
    }
