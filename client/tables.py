"""How answers look on a terminal: tables (rich) for orders, quotes, markets and keys, and one line
per event of an order's stream. Every function here is pure: data in, a renderable or text out."""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from client.units import Tokens, price

STATUS_STYLES = {
    "confirmed": "green", "partially_filled": "yellow", "failed": "red", "cancelled": "magenta",
    "expired": "magenta", "waiting": "cyan", "triggered": "cyan",
}
EVENT_COLUMNS = (("seq", 4), ("status", 17), ("time (UTC)", 12))
"""The stream's fixed columns (name, width); the detail follows."""


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def error_line(message: str, field: str | None) -> str:
    return f"error: {message}" + (f" (field: {field})" if field else "")


# --- an order's events ---------------------------------------------------------------------------

class Timeline:
    """What the events of one order say, one line each. It remembers what earlier events named (the
    tokens, the side) to word later ones; start it from the order (GET /api/orders/{id})."""

    def __init__(self, tokens: Tokens, order: dict[str, Any] | None = None) -> None:
        self.tokens = tokens
        self.order = dict(order or {})

    def header(self) -> Text:
        (seq, seq_width), *rest = EVENT_COLUMNS
        names = [seq.rjust(seq_width), *(name.ljust(width) for name, width in rest)]
        return Text("  ".join(names) + "  detail", style="bold")

    def line(self, event: dict[str, Any]) -> Text:
        status = str(event.get("status"))
        if status == "pending":
            self.order.update(event.get("data") or {})
        line = Text(f"{event.get('seq', ''):>4}  ")
        line.append(status.ljust(EVENT_COLUMNS[1][1]), style=STATUS_STYLES.get(status, ""))
        line.append(f"  {_clock(event.get('ts')):<{EVENT_COLUMNS[2][1]}}  {self.detail(status, event.get('data') or {})}")
        return line

    def detail(self, status: str, data: dict[str, Any]) -> str:
        describe = getattr(self, f"_{status}", None)
        if describe is not None:
            return describe(data)
        return ", ".join(f"{k} {v}" for k, v in data.items() if isinstance(v, (str, int, float)))

    def _in(self, units: Any) -> str:
        return self.tokens.amount(units, self.order.get("inputMint"))

    def _out(self, units: Any) -> str:
        return self.tokens.amount(units, self.order.get("outputMint"))

    def _pending(self, data: dict) -> str:
        terms = [f"{data.get('type')}", f"slippage {data.get('slippageBps')} bps"]
        if data.get("limitPrice"):
            terms.insert(1, f"limit {data['limitPrice']}")
        if data.get("expiresAt"):
            terms.append(f"expires {data['expiresAt']}")
        sold = self._in(data.get("amountIn"))
        return f"{data.get('side')}: {sold} for {self.tokens.symbol(data.get('outputMint'))} ({', '.join(terms)})"

    def _waiting(self, data: dict) -> str:
        if data.get("refused"):
            launch = data.get("launch") or {}
            return f"launch on {launch.get('venue', '?')} refused: {data['refused']}; still waiting"
        return f"resting until {data.get('expiresAt')}"

    def _triggered(self, data: dict) -> str:
        launch = data.get("launch")
        if launch:
            return (f"launch on {launch.get('venue')} at {price(launch.get('price'))}"
                    f" (liquidity {launch.get('liquidity')}, impact {launch.get('priceImpactBps')} bps)")
        return f"{data.get('venue')} at {price(data.get('price'))} reached the limit {data.get('limitPrice')}"

    def _routing(self, data: dict) -> str:
        quotes = [f"{q.get('venue')} {self._out(q.get('amountOut'))}" for q in data.get("quotes", [])]
        failures = [f"{f.get('venue')} failed: {f.get('error')}" for f in data.get("failures", [])]
        return "quotes: " + "; ".join(quotes + failures) if quotes or failures else "quoting"

    def _routed(self, data: dict) -> str:
        legs = data.get("legs") or []
        where = data.get("venue") or "?"
        if len(legs) > 1:
            where = "split " + " + ".join(f"{leg.get('venue')} {self._in(leg.get('amountIn'))}" for leg in legs)
        edge = f", +{data['advantageBps']} bps" if data.get("advantageBps") else ""
        return (f"{where}: expect {self._out(data.get('expectedAmountOut'))}, at least"
                f" {self._out(data.get('minAmountOut'))} ({data.get('reason')}{edge})")

    def _building(self, data: dict) -> str:
        legs = data.get("legs") or []
        return f"{len(legs)} transaction(s): " + ", ".join(f"{leg.get('venue')} {leg.get('signature')}" for leg in legs)

    def _submitted(self, data: dict) -> str:
        return "sent " + ", ".join(data.get("signatures") or [])

    def _confirmed(self, data: dict) -> str:
        filled = (f"{self._out(data.get('amountOut'))} for {self._in(data.get('amountIn'))}"
                  f" at {price(data.get('executionPrice'))} on {data.get('venue')}")
        parts = [filled] if data.get("amountOut") else []
        if data.get("unfilledAmountIn"):
            parts.append(f"unfilled {self._in(data['unfilledAmountIn'])}")
        if data.get("error"):
            parts.append(f"reason: {data['error']}")
        if data.get("txHash"):
            parts.append(f"tx {data['txHash']}")
        return "; ".join(parts) or "nothing filled"

    _partially_filled = _confirmed
    _failed = _confirmed

    def _cancelled(self, data: dict) -> str:
        return str(data.get("reason") or "cancelled")

    def _expired(self, data: dict) -> str:
        return f"expired at {data.get('expiresAt')}"


def _clock(ts: Any) -> str:
    """The time of day of an ISO 8601 UTC timestamp (the date is today's, mostly)."""
    text = str(ts or "")
    return text[11:23] if len(text) >= 23 and text[10] == "T" else text


# --- tables --------------------------------------------------------------------------------------

def _table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return table


def pair(order: dict[str, Any]) -> str:
    return f"{order.get('baseAsset')}/{order.get('quoteAsset')}"


def orders_table(orders: list[dict[str, Any]], tokens: Tokens) -> Table:
    table = _table("order", "created (UTC)", "type", "side", "pair", "in", "status", "out", "price", "venue",
                   right=("in", "out", "price"))
    for order in orders:
        table.add_row(order.get("orderId"), str(order.get("createdAt", "")).replace("T", " ")[:19], order.get("type"),
                      order.get("side"), escape(pair(order)), tokens.amount(order.get("amountIn"), order.get("inputMint")),
                      status_text(str(order.get("status"))),
                      tokens.amount(order.get("amountOut"), order.get("outputMint")) if order.get("amountOut") else "",
                      price(order["executionPrice"]) if order.get("executionPrice") else "", order.get("venue") or "")
    return table


def order_table(order: dict[str, Any], tokens: Tokens) -> Table:
    """One order, a field a row (empty fields left out)."""
    inputs, outputs = order.get("inputMint"), order.get("outputMint")
    amounts = {"amountIn": inputs, "filledAmountIn": inputs, "minAmountOut": outputs, "amountOut": outputs}
    table = _table("field", "value")
    for field, value in order.items():
        if value is None or value == "" or field == "plan":
            continue
        if field in amounts:
            shown: Any = tokens.amount(value, amounts[field])
        elif field == "status":
            shown = status_text(str(value))
        elif isinstance(value, (dict, list)):
            shown = escape(json.dumps(value))
        else:
            shown = escape(str(value))
        table.add_row(field, shown)
    return table


def quote_table(answer: dict[str, Any], tokens: Tokens) -> Table:
    """A quote: the plan's legs, then each venue's own quote, then the totals."""
    inputs, outputs = answer.get("inputMint"), answer.get("outputMint")
    table = _table("", "venue", "share", "in", "out", "fee", title=f"{answer.get('reason', '')}",
                   right=("share", "in", "out", "fee"))
    for leg in answer.get("routePlan", []):
        swap = leg.get("swapInfo", {})
        table.add_row("route", swap.get("label"), f"{leg.get('percent')} %", tokens.amount(swap.get("inAmount"), inputs),
                      tokens.amount(swap.get("outAmount"), outputs), tokens.amount(swap.get("feeAmount"), swap.get("feeMint")))
    for venue in answer.get("venues", []):
        table.add_row("alone", venue.get("venue"), "100 %", tokens.amount(answer.get("inAmount"), inputs),
                      tokens.amount(venue.get("outAmount"), outputs), tokens.amount(venue.get("feeAmount"), inputs))
    for failure in answer.get("failures", []):
        table.add_row("failed", failure.get("venue"), "", "", escape(str(failure.get("error"))), "")
    table.add_row("total", "", "", tokens.amount(answer.get("inAmount"), inputs),
                  tokens.amount(answer.get("outAmount"), outputs), "")
    table.add_row("at least", "", "", "", tokens.amount(answer.get("otherAmountThreshold"), outputs),
                  f"slippage {answer.get('slippageBps')} bps")
    table.add_row("impact", "", "", "", f"{price(answer.get('priceImpactPct'), 4)} %", "")
    return table


def markets_table(markets: dict[str, Any]) -> Table:
    table = _table("pair", "venue", "spot price", "base depth", "quote depth", "pool",
                   right=("spot price", "base depth", "quote depth"))
    for entry in markets.get("pairs", []):
        base, quote = entry.get("base", {}).get("symbol", ""), entry.get("quote", {}).get("symbol", "")
        for venue in entry.get("venues", []):
            table.add_row(escape(str(entry.get("pair"))), venue.get("venue"), price(venue.get("spotPrice")),
                          f"{venue.get('baseDepth')} {escape(base)}", f"{venue.get('quoteDepth')} {escape(quote)}",
                          venue.get("pool"))
    return table


def keys_table(keys: list[dict[str, Any]]) -> Table:
    table = _table("key id", "label", "per minute", "in flight", "created (UTC)", "state",
                   right=("per minute", "in flight"))
    for key in keys:
        state = (Text(f"revoked {key['revokedAt'][:19].replace('T', ' ')}", style="magenta") if key.get("revokedAt")
                 else Text("active" + (" (this key)" if key.get("current") else ""), style="green"))
        table.add_row(key.get("keyId"), escape(str(key.get("label") or "")), str(key.get("ordersPerMinute")),
                      str(key.get("maxInFlight")), str(key.get("createdAt", ""))[:19].replace("T", " "), state)
    return table


def created_key_lines(created: dict[str, Any]) -> list[str]:
    return [
        f"API key (shown once, keep it): {created.get('apiKey')}",
        f"key id: {created.get('keyId')}",
        f"client {created.get('clientId')}, label {created.get('label')!r}, {created.get('ordersPerMinute')} orders"
        f" per minute, {created.get('maxInFlight')} in flight",
    ]

