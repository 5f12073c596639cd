"""Five simultaneous orders over five WebSockets: a live table of their statuses as events arrive,
then each routing decision (the venue or the split's legs, amounts, effective prices, advantage).

On a terminal the table is redrawn in place (rich's Live). When the output is not a terminal (piped,
redirected, in CI) each event is one plain line instead, the table is printed once at the end, and
nothing is styled."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import websockets
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from shared.domain.states import TERMINAL_STATUSES
from shared.domain.tokens import KNOWN_TOKENS, Token, format_decimal

DEMO_ORDERS = (
    {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5", "slippageBps": 100},
    {"type": "market", "side": "buy", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "250", "slippageBps": 50},
    {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDT", "amount": "12.25"},
    {"type": "market", "side": "buy", "baseAsset": "JUP", "quoteAsset": "USDC", "amount": "1000", "slippageBps": 75},
    {"type": "market", "side": "sell", "baseAsset": "BONK", "quoteAsset": "SOL", "amount": "25000000"},
)
EVENT_TIMEOUT_S = 30
PIPED_WIDTH = 160
"""Line width when the output is not a terminal (rich would otherwise wrap at 80 columns)."""
STYLES = {"confirmed": "bold green", "partially_filled": "bold yellow", "failed": "bold red", "error": "bold red",
          "cancelled": "yellow", "expired": "yellow", "routed": "cyan", "routing": "cyan"}
_TOKENS = {token.mint: token for token in KNOWN_TOKENS}


@dataclass
class OrderRow:
    """One demo order as the table shows it: its latest event, and every event it got."""

    number: int
    order: dict[str, Any]
    order_id: str = ""
    status: str = "connecting"
    seq: int = 0
    detail: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    elapsed_ms: int | None = None

    @property
    def label(self) -> str:
        """"sell 1.5 SOL → USDC", "buy 250 USDC → SOL": what is paid, for what."""
        o = self.order
        paid, bought = (o["baseAsset"], o["quoteAsset"]) if o["side"] == "sell" else (o["quoteAsset"], o["baseAsset"])
        return f"{o['side']} {o['amount']} {paid} → {bought}"

    @property
    def short_id(self) -> str:
        """The order id's last 8 characters (ids are time-ordered: their starts are alike)."""
        return f"…{self.order_id[-8:]}" if self.order_id else ""

    @property
    def routed(self) -> dict[str, Any] | None:
        return next((e["data"] for e in self.events if e.get("status") == "routed"), None)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES or self.status == "error"

    def took(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.order_id = event.get("orderId", self.order_id)
        self.status, self.seq = event.get("status", "?"), event.get("seq", self.seq)
        self.detail = event_detail(event, self.routed)
        if self.done:
            self.elapsed_ms = round((time.monotonic() - self.started) * 1000)

    def failed(self, detail: str) -> None:
        self.status, self.detail = "error", detail
        self.elapsed_ms = round((time.monotonic() - self.started) * 1000)


def token(mint: str | None) -> Token | None:
    return _TOKENS.get(mint or "")


def amount(base_units: Any, mint: str | None) -> str:
    """Base units as the token's amount with its symbol ("1.5 SOL"); raw units if the token is unknown."""
    known = token(mint)
    if known is None or not isinstance(base_units, int):
        return f"{base_units} units"
    return f"{known.format(base_units)} {known.symbol}"


def significant(value: Decimal, digits: int = 6) -> str:
    """A price to `digits` significant digits, never in exponent form."""
    if not value:
        return "0"
    return format_decimal(value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1)))


def quote_per_base(price: str, side: str) -> str:
    """An effective price (output per input) as the pair's price, quote asset per base asset: a sell
    gets quote for base (as is), a buy pays quote for base (inverted)."""
    try:
        value = Decimal(price)
        return significant(value if side == "sell" else (1 / value if value else value))
    except (InvalidOperation, ArithmeticError, TypeError):
        return str(price)


def event_detail(event: dict[str, Any], routed: dict[str, Any] | None = None) -> str:
    """What an event says, in a few words, for the table (`routed`: the order's routing decision,
    which names the tokens of a fill)."""
    data, status = event.get("data") or {}, event.get("status")
    if status == "pending":
        return f"accepted, {amount(data.get('amountIn'), data.get('inputMint'))} in"
    if status == "routing":
        venues = [q.get("venue") for q in data.get("quotes", []) if isinstance(q, dict)]
        return f"quoted by {', '.join(filter(None, venues))}" if venues else "quoting"
    if status == "routed":
        return f"{data.get('venue')}: expect {amount(data.get('expectedAmountOut'), data.get('outputMint'))}"
    if status == "building":
        return f"{len(data.get('transactions') or data.get('legs') or []) or 1} transaction(s)"
    if status == "submitted":
        return f"{len(data.get('signatures') or [])} signature(s) sent"
    if status in TERMINAL_STATUSES:
        parts = []
        if data.get("amountOut"):
            parts.append(f"{data.get('venue')}: {amount(data['amountOut'], (routed or {}).get('outputMint'))} out"
                         + (f" at {significant(Decimal(data['executionPrice']))}" if data.get("executionPrice") else ""))
        if data.get("error"):
            parts.append(str(data["error"]))
        if data.get("txHash"):
            parts.append(f"tx {str(data['txHash'])[:12]}…")
        return "; ".join(parts)
    return ""


def status_table(rows: list[OrderRow]) -> Table:
    table = Table(title="Demo orders", title_justify="left", expand=False)
    for name, justify in (("#", "right"), ("order", "left"), ("id", "left"), ("status", "left"), ("seq", "right"),
                          ("detail", "left"), ("ms", "right")):
        table.add_column(name, justify=justify)
    for row in rows:
        style = STYLES.get(row.status, "")
        table.add_row(str(row.number), escape(row.label), row.short_id, f"[{style}]{row.status}[/]" if style
                      else row.status, str(row.seq or ""), escape(row.detail),
                      "" if row.elapsed_ms is None else str(row.elapsed_ms))
    return table


def event_line(row: OrderRow) -> str:
    """One event as one plain line (output that is not a terminal)."""
    return f"[order {row.number}] {row.short_id or '-':<9} seq={row.seq} {row.status:<16} {row.detail}"


def decision_lines(row: OrderRow) -> list[str]:
    """The routing decision of one order, as rich markup lines."""
    o, routed = row.order, row.routed
    head = f"{row.number}. {escape(row.label)}"
    final = f"[{STYLES.get(row.status, '')}]{row.status}[/]" if STYLES.get(row.status) else row.status
    if routed is None:
        return [f"{head}: not routed, {final}" + (f" ({escape(row.detail)})" if row.detail else "")]
    side, mint_in, mint_out = o["side"], routed.get("inputMint"), routed.get("outputMint")
    base, quote = o["baseAsset"].upper(), o["quoteAsset"].upper()
    venue = routed.get("venue")
    lines = [f"{head}: [bold]{escape(str(venue))}[/], {final}",
             f"   {amount(routed.get('amountIn'), mint_in)} in, expect {amount(routed.get('expectedAmountOut'), mint_out)}"
             f" out, at least {amount(routed.get('minAmountOut'), mint_out)}"
             + (f" (slippage {routed['slippageBps']} bps)" if routed.get("slippageBps") is not None else "")]
    legs = routed.get("legs") or []
    if venue == "split" and legs:
        lines.append("   legs: " + "; ".join(
            f"{escape(str(leg.get('venue')))} {leg.get('sharePct')}%: {amount(leg.get('amountIn'), mint_in)}"
            f" → {amount(leg.get('expectedAmountOut'), mint_out)} (at least {amount(leg.get('minAmountOut'), mint_out)})"
            for leg in legs))
    prices = routed.get("effectivePrices") or {}
    if prices:
        chosen = {leg.get("venue") for leg in legs} if venue == "split" else {venue}
        lines.append(f"   effective price ({quote} per {base}): " + ", ".join(
            f"{escape(name)} {quote_per_base(price, side)}" + (" ✓" if name in chosen else "")
            for name, price in prices.items()))
    if venue == "split":
        gain = routed.get("splitGainBps")
        lines.append(f"   split gain: {'+' + str(gain) + ' bps over the best single venue' if gain is not None else 'n/a'}")
    advantage = routed.get("advantageBps")
    lines.append("   advantage: " + (f"+{advantage} bps over the next best" if advantage is not None
                                     else "no other venue quoted"))
    if routed.get("reason"):
        lines.append(f"   reason: {escape(str(routed['reason']))}")
    final_event = row.events[-1] if row.events and row.done else None
    if final_event and (data := final_event.get("data") or {}).get("executionPrice"):
        lines.append(f"   filled: {amount(data.get('amountIn'), mint_in)} → {amount(data.get('amountOut'), mint_out)}"
                     f" at {significant(Decimal(data['executionPrice']))} {quote} per {base}")  # already quote/base
    return lines


async def follow(ws_url: str, row: OrderRow, api_key: str, changed: Callable[[OrderRow], None]) -> None:
    """Send the row's order on its own socket; update the row with every event until a terminal one."""
    try:
        async with websockets.connect(ws_url, additional_headers={"X-API-Key": api_key}) as socket:
            row.status, row.started = "sent", time.monotonic()
            changed(row)
            await socket.send(json.dumps(row.order))
            while not row.done:
                message = json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT_S))
                if message.get("type") == "error":
                    row.failed(f"{message.get('status')}: {message.get('error')}")
                else:
                    row.took(message)
                changed(row)
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        row.failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        changed(row)


async def run_demo(base_url: str, api_key: str, console: Console | None = None) -> int:
    """Run the five orders; 0 if every one was confirmed."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=PIPED_WIDTH)
    ws_url = base_url.replace("http", "ws", 1).rstrip("/") + "/api/orders/execute"
    rows = [OrderRow(number, order) for number, order in enumerate(DEMO_ORDERS, start=1)]

    async def run_all(changed: Callable[[OrderRow], None]) -> None:
        await asyncio.gather(*(follow(ws_url, row, api_key, changed) for row in rows))

    if console.is_terminal:
        with Live(status_table(rows), console=console, refresh_per_second=12) as live:
            await run_all(lambda _row: live.update(status_table(rows)))
    else:
        await run_all(lambda row: console.print(event_line(row), markup=False, highlight=False, soft_wrap=True))
        console.print(status_table(rows))
    console.print()
    console.print("[bold]Routing decisions[/]")
    for row in rows:
        for line in decision_lines(row):
            console.print(line, highlight=False)
    if any(row.status == "error" for row in rows):
        console.print(f"could not run every order against {escape(base_url)}: is the engine running "
                      "(python3 dev.py start) and the API key current?", highlight=False)
    return 0 if all(row.status == "confirmed" for row in rows) else 1
