"""The demo's output (local_runtime/demo.py): the status table, one line per event when not on a
terminal, and each routing decision — one venue or a split's legs, amounts, prices, advantage."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console

from local_runtime.demo import OrderRow, decision_lines, event_line, quote_per_base, significant, status_table
from shared.domain.tokens import SOL, USDC

BUY = {"type": "market", "side": "buy", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "3000"}


def events(routed: dict, final: dict) -> list[dict]:
    return [
        {"orderId": "01a2-0000-aaaa-bbbb-cccc11112222", "seq": 1, "status": "pending",
         "data": {"amountIn": 3_000_000_000, "inputMint": USDC.mint}},
        {"orderId": "01a2-0000-aaaa-bbbb-cccc11112222", "seq": 3, "status": "routed", "data": routed},
        {"orderId": "01a2-0000-aaaa-bbbb-cccc11112222", "seq": 6, "status": "confirmed", "data": final},
    ]


SPLIT = {
    "inputMint": USDC.mint, "outputMint": SOL.mint, "amountIn": 3_000_000_000, "expectedAmountOut": 19_800_000_000,
    "minAmountOut": 19_701_000_000, "venue": "split", "slippageBps": 50, "reason": "split 60% / 40% beats raydium",
    "effectivePrices": {"raydium": "0.00655", "meteora": "0.0066"}, "advantageBps": 40, "splitGainBps": 12,
    "legs": [{"venue": "raydium", "sharePct": "60", "amountIn": 1_800_000_000, "expectedAmountOut": 11_880_000_000,
              "minAmountOut": 11_820_600_000},
             {"venue": "meteora", "sharePct": "40", "amountIn": 1_200_000_000, "expectedAmountOut": 7_920_000_000,
              "minAmountOut": 7_880_400_000}],
}
FILLED = {"venue": "split", "amountIn": 3_000_000_000, "amountOut": 19_800_000_000, "executionPrice": "151.5151515",
          "txHash": "5abcdefghijklmnopq"}


def row_with(routed: dict, final: dict) -> OrderRow:
    row = OrderRow(2, BUY)
    for event in events(routed, final):
        row.took(event)
    return row


def test_a_split_decision_shows_each_leg_the_prices_per_base_and_the_gains():
    text = "\n".join(decision_lines(row_with(SPLIT, FILLED)))
    assert "2. buy 3000 USDC → SOL: [bold]split[/]" in text
    assert "3000 USDC in, expect 19.8 SOL out, at least 19.701 SOL (slippage 50 bps)" in text
    assert "raydium 60%: 1800 USDC → 11.88 SOL (at least 11.8206 SOL)" in text
    assert "meteora 40%: 1200 USDC → 7.92 SOL (at least 7.8804 SOL)" in text
    # a buy's effective prices (SOL per USDC) are shown as the pair's price, USDC per SOL
    assert "effective price (USDC per SOL): raydium 152.672 ✓, meteora 151.515 ✓" in text
    assert "split gain: +12 bps over the best single venue" in text and "advantage: +40 bps" in text
    assert "filled: 3000 USDC → 19.8 SOL at 151.515 USDC per SOL" in text


def test_the_table_row_follows_the_latest_event():
    row = row_with(SPLIT, FILLED)
    assert (row.status, row.seq, row.short_id, row.done) == ("confirmed", 6, "…11112222", True)
    assert row.detail.startswith("split: 19.8 SOL out at 151.515; tx 5abcdefghijk…")
    assert event_line(row).startswith("[order 2] …11112222 seq=6 confirmed")
    console = Console(file=io.StringIO(), width=160)  # not a terminal: plain text
    console.print(status_table([row, OrderRow(3, BUY)]))
    out = console.file.getvalue()
    assert "\x1b[" not in out and "│ confirmed " in out and "│ connecting │" in out


def test_an_order_refused_or_unreachable_is_shown_as_not_routed():
    row = OrderRow(1, {**BUY, "side": "sell", "amount": "1.5"})
    row.failed("401: unknown or revoked API key")
    assert decision_lines(row) == ["1. sell 1.5 SOL → USDC: not routed, [bold red]error[/] (401: unknown or revoked API key)"]


def test_prices_to_six_significant_digits_never_in_exponent_form():
    assert significant(Decimal("151.79872466666")) == "151.799"
    assert significant(Decimal("0.00000015107301584")) == "0.000000151073"
    assert quote_per_base("0.0066", "buy") == "151.515" and quote_per_base("151.5", "sell") == "151.5"
