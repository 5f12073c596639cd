"""`dex`: the command line over the public API. Parses the command, calls the server (client/api.py)
and shows the answer as tables (client/tables.py) or, with --json, as the server's JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from client import bodies, tables
from client.api import Api, ApiError, Unreachable
from client import config
from client.config import NoKey, api_key, key_id, server_url
from client.units import Tokens

EXIT_OK = 0
EXIT_NOT_FILLED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4
EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done (watch: the order was confirmed)
  {EXIT_NOT_FILLED}  watch: the order ended otherwise (failed, partially_filled, cancelled, expired)
  {EXIT_USAGE}  usage: a bad command or flag, or no API key to use
  {EXIT_REFUSED}  refused: the server answered 4xx (the error and its field are printed)
  {EXIT_UNREACHABLE}  unreachable: no answer, a 5xx (503: Redis or PostgreSQL down), or a stream that kept dropping

the API key: --api-key, else $DEX_API_KEY, else .dev-api-key in the current directory, else in the
engine's checkout (python3 dev.py start writes it). The server: --url, else $DEX_URL, else
http://127.0.0.1:8000. With --json every answer is printed as the server's JSON, one document a line
(watch: one event a line); errors as the server's error body, on stderr."""


def _common() -> argparse.ArgumentParser:
    """--url, --api-key and --json, taken before or after the command (SUPPRESS: a later parser
    does not overwrite what an earlier one read)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="the server (default $DEX_URL or the local runtime)")
    common.add_argument("--api-key", default=argparse.SUPPRESS, help="the API key (default $DEX_API_KEY or"
                                                                     " .dev-api-key)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the server's JSON")
    return common


def _order_flags(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--side", choices=("buy", "sell"), required=kind != "sniper",
                        default="buy" if kind == "sniper" else None, help="sell base, or buy base with quote")
    parser.add_argument("--base", required=True, help="base asset: a symbol (SOL, BONK …) or a mint"
                        + (" (the token to snipe)" if kind == "sniper" else ""))
    parser.add_argument("--quote", required=True, help="quote asset: a symbol or a mint")
    parser.add_argument("--amount", required=True, help="decimal amount of the token sold (base for a sell, quote"
                                                        " for a buy)")
    parser.add_argument("--slippage-bps", type=int, help="0 to 10000 (the server's default: 50)")
    if kind != "sniper":
        parser.add_argument("--min-out", help="least amount of the token bought (decimal)")
    if kind == "limit":
        parser.add_argument("--limit-price", required=True, help="quote per base")
    if kind != "market":
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in", type=_seconds, metavar="SECONDS", help="seconds from now")
        expiry.add_argument("--expires-at", metavar="TIME", help="ISO 8601 or Unix seconds")
    if kind == "sniper":
        parser.add_argument("--min-liquidity", help="least depth of the new pool, in the quote asset")
        parser.add_argument("--max-price", help="highest price (quote per base) for this size")
        parser.add_argument("--max-price-impact-bps", type=int, help="0 to 10000")
    parser.add_argument("--client-order-id", help="your id for the order: resubmitting it returns the same order")
    parser.add_argument("--idempotency-key", help="sent as the Idempotency-Key header")
    parser.add_argument("--watch", action="store_true", help="follow the order to its end (exit code: see below)")


def _seconds(text: str) -> int:
    value = int(text)
    if not 0 < value < bodies.SECONDS_FROM_NOW_BELOW:
        raise argparse.ArgumentTypeError(f"between 1 and {bodies.SECONDS_FROM_NOW_BELOW - 1} seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="dex", parents=[common], formatter_class=formatter, epilog=EXIT_CODES,
                                     description="A client of the DEX order execution engine's public API.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, under=commands) -> argparse.ArgumentParser:
        return under.add_parser(name, parents=[common], help=help_text, description=help_text, epilog=EXIT_CODES,
                                formatter_class=formatter)

    submit = command("submit", "submit an order and print its id and status").add_subparsers(
        dest="kind", required=True, metavar="KIND")
    for kind, help_text in (("market", "now, at the best price for the size"),
                            ("limit", "rests until the executable price reaches --limit-price"),
                            ("sniper", "buys a new token as soon as its pool launches, if the launch passes the"
                                       " checks")):
        _order_flags(command(kind, help_text, submit), kind)
    watch = command("watch", "follow an order's events to its end, resuming if the connection drops")
    watch.add_argument("order_id", metavar="ORDER_ID")
    command("cancel", "cancel a pending or waiting order").add_argument("order_id", metavar="ORDER_ID")
    command("order", "show one order").add_argument("order_id", metavar="ORDER_ID")
    orders = command("orders", "list your orders, newest first")
    orders.add_argument("--limit", type=int, help="orders per page, 1 to 100 (default 20)")
    pages = orders.add_mutually_exclusive_group()
    pages.add_argument("--before", metavar="ORDER_ID", help="the page after this order (a page's `next`)")
    pages.add_argument("--all", action="store_true", help="every page")
    quote = command("quote", "what a market order would get now, without placing it")
    quote.add_argument("--in", dest="input", required=True, metavar="ASSET", help="the token sold (symbol or mint)")
    quote.add_argument("--out", dest="output", required=True, metavar="ASSET", help="the token bought")
    quote.add_argument("--amount", required=True, help="decimal amount of the token sold")
    quote.add_argument("--slippage-bps", type=int)
    command("markets", "every pair's pools: spot price and depth per venue")
    keys = command("keys", "your API keys").add_subparsers(dest="action", required=True, metavar="ACTION")
    create = command("create", "make a key for your client (printed once)", keys)
    create.add_argument("--label")
    create.add_argument("--per-minute", type=int, help="orders per minute (at most your key's; default: the same)")
    create.add_argument("--in-flight", type=int, help="orders in flight (at most your key's; default: the same)")
    command("list", "your client's keys (ids, never the keys)", keys)
    revoke = command("revoke", "revoke a key: give the key itself (hashed here) or its id", keys)
    revoke.add_argument("key", metavar="KEY_OR_ID")
    return parser


@dataclass
class Session:
    api: Api
    out: Console
    err: Console
    json: bool

    def emit(self, document: Any) -> None:
        """One JSON document, one line."""
        self.out.print(json.dumps(document), markup=False, highlight=False, soft_wrap=True)

    def say(self, text: Any) -> None:
        self.out.print(text, highlight=False, soft_wrap=True)

    async def tokens(self) -> Tokens:
        return Tokens.from_markets(await self.api.markets())


# --- the commands ---------------------------------------------------------------------------------

async def submit(s: Session, args: argparse.Namespace) -> int:
    answer = await s.api.submit(bodies.order_body(args.kind, args), args.idempotency_key)
    if s.json:
        s.emit({k: v for k, v in answer.items() if k != "events"})
    else:
        repeat = "repeat of order" if answer.get("repeat") else "order"
        s.say(f"{repeat} {answer['orderId']}: {answer['status']}")
    return await _follow(s, answer["orderId"], answer) if args.watch else EXIT_OK


async def watch(s: Session, args: argparse.Namespace) -> int:
    return await _follow(s, args.order_id, await s.api.order(args.order_id))


async def _follow(s: Session, order_id: str, order: dict[str, Any]) -> int:
    """Print each event as it comes; the exit code says how the order ended."""
    timeline = tables.Timeline(await s.tokens(), order)
    if not s.json:
        s.say(timeline.header())

    def dropped(last: int, attempt: int, wait_s: float, why: str) -> None:
        s.err.print(f"stream dropped after seq {last} ({why}); reconnecting with ?after={last} in {wait_s:g} s"
                    f" (attempt {attempt})", markup=False, highlight=False, soft_wrap=True)

    status = None
    async for event in s.api.events(order_id, dropped=dropped):
        status = event["status"]
        if status == "routing" and any(m not in timeline.tokens.by_mint for m in _mints(timeline.order)):
            with contextlib.suppress(ApiError, Unreachable):  # (without them: amounts in base units)
                timeline.tokens = await s.tokens()  # a sniper's token: its pool launched since
        s.emit(event) if s.json else s.say(timeline.line(event))
    return EXIT_OK if status == "confirmed" else EXIT_NOT_FILLED


def _mints(order: dict[str, Any]) -> list[str]:
    return [m for m in (order.get("inputMint"), order.get("outputMint")) if m]


async def cancel(s: Session, args: argparse.Namespace) -> int:
    answer = await s.api.cancel(args.order_id)
    s.emit(answer) if s.json else s.say(f"order {answer['orderId']}: {answer['status']}")
    return EXIT_OK


async def show_order(s: Session, args: argparse.Namespace) -> int:
    order = await s.api.order(args.order_id)
    s.emit(order) if s.json else s.say(tables.order_table(order, await s.tokens()))
    return EXIT_OK


async def list_orders(s: Session, args: argparse.Namespace) -> int:
    page = await s.api.orders(args.limit, args.before)
    found = list(page["orders"])
    while args.all and page.get("next"):
        page = await s.api.orders(args.limit, page["next"])
        found += page["orders"]
    if s.json:
        s.emit({"orders": found, "next": page.get("next")})
        return EXIT_OK
    s.say(tables.orders_table(found, await s.tokens()))
    if page.get("next") and not args.all:
        s.say(f"more: dex orders --before {page['next']}")
    return EXIT_OK


async def show_quote(s: Session, args: argparse.Namespace) -> int:
    answer = await s.api.quote(args.input, args.output, args.amount, args.slippage_bps)
    s.emit(answer) if s.json else s.say(tables.quote_table(answer, await s.tokens()))
    return EXIT_OK


async def show_markets(s: Session, _: argparse.Namespace) -> int:
    markets = await s.api.markets()
    s.emit(markets) if s.json else s.say(tables.markets_table(markets))
    return EXIT_OK


async def manage_keys(s: Session, args: argparse.Namespace) -> int:
    if args.action == "create":
        created = await s.api.create_key(bodies.key_body(args))
        if s.json:
            s.emit(created)
        else:
            for line in tables.created_key_lines(created):
                s.say(line)
    elif args.action == "list":
        listed = await s.api.keys()
        s.emit(listed) if s.json else s.say(tables.keys_table(listed["keys"]))
    else:
        revoked = await s.api.revoke_key(key_id(args.key))
        s.emit(revoked) if s.json else s.say(f"revoked key {revoked['keyId']}")
    return EXIT_OK


COMMANDS = {"submit": submit, "watch": watch, "cancel": cancel, "order": show_order, "orders": list_orders,
            "quote": show_quote, "markets": show_markets, "keys": manage_keys}


# --- running one -----------------------------------------------------------------------------------

def _consoles() -> tuple[Console, Console]:
    """Terminals get colours and their width; pipes plain text, wide enough not to fold ids."""
    def console(stream) -> Console:
        return Console(file=stream, width=None if stream.isatty() else 250, highlight=False)
    return console(sys.stdout), console(sys.stderr)


async def run(args: argparse.Namespace, key: str, out: Console, err: Console) -> int:
    async with Api(server_url(args.url, os.environ), key) as api:
        return await COMMANDS[args.command](Session(api, out, err, args.json), args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, default in (("url", None), ("api_key", None), ("json", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    out, err = _consoles()
    try:
        key, _ = api_key(args.api_key, os.environ, Path.cwd(), config.ENGINE_ROOT)
        return asyncio.run(run(args, key, out, err))
    except NoKey as exc:
        err.print(tables.error_line(str(exc), None), markup=False)
        return EXIT_USAGE
    except ApiError as exc:
        if args.json:
            err.print(json.dumps(exc.body), markup=False, soft_wrap=True)
        else:
            err.print(tables.error_line(exc.message, exc.field), markup=False, soft_wrap=True)
        return EXIT_UNREACHABLE if exc.unavailable else EXIT_REFUSED
    except Unreachable as exc:
        body = {"error": str(exc), "field": None}
        err.print(json.dumps(body) if args.json else tables.error_line(str(exc), None), markup=False, soft_wrap=True)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
