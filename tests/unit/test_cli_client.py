"""The `dex` client's pure parts: flags → request bodies, where the URL and key come from, key ids,
how answers and events are shown, the stream's reconnection waits, and its exit codes."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from client import config
from client.api import ApiError, Backoff
from client.bodies import key_body, order_body
from client.cli import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, build_parser, main
from client.config import NoKey, api_key, key_id, server_url, socket_url
from client.tables import Timeline, error_line, keys_table, orders_table
from client.units import Tokens, price

SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
MARKETS = {"pairs": [{"pair": "SOL/USDC", "base": {"symbol": "SOL", "mint": SOL, "decimals": 9},
                      "quote": {"symbol": "USDC", "mint": USDC, "decimals": 6}, "venues": []}]}
TOKENS = Tokens.from_markets(MARKETS)


def parse(*argv: str):
    return build_parser().parse_args(argv)


def rendered(renderable) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(renderable, soft_wrap=True)
    return console.file.getvalue()


# --- flags → bodies --------------------------------------------------------------------------------

def test_a_market_order_sends_exactly_the_flags_given():
    args = parse("submit", "market", "--side", "sell", "--base", "SOL", "--quote", "USDC", "--amount", "1.5",
                 "--slippage-bps", "100", "--min-out", "220", "--client-order-id", "mine-1")
    assert order_body(args.kind, args) == {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                           "amount": "1.5", "slippageBps": 100, "minAmountOut": "220",
                                           "clientOrderId": "mine-1"}


def test_a_limit_order_expiring_in_seconds_sends_a_number_and_an_iso_time_as_text():
    flags = ("submit", "limit", "--side", "buy", "--base", "SOL", "--quote", "USDC", "--amount", "300",
             "--limit-price", "140.5")
    assert order_body("limit", parse(*flags, "--expires-in", "3600")) == {
        "type": "limit", "side": "buy", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "300",
        "limitPrice": "140.5", "expiresAt": 3600}
    assert order_body("limit", parse(*flags, "--expires-at", "2027-01-01T00:00:00Z"))["expiresAt"] == \
        "2027-01-01T00:00:00Z"
    assert order_body("limit", parse(*flags, "--expires-at", "1800000000"))["expiresAt"] == 1_800_000_000
    assert "expiresAt" not in order_body("limit", parse(*flags))  # the server names the missing field


def test_a_sniper_order_buys_by_default_and_sends_its_launch_checks():
    args = parse("submit", "sniper", "--base", "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", "--quote", "SOL",
                 "--amount", "0.5", "--min-liquidity", "50", "--max-price", "0.001", "--max-price-impact-bps", "300",
                 "--expires-in", "600", "--idempotency-key", "k-1")
    assert order_body(args.kind, args) == {
        "type": "sniper", "side": "buy", "baseAsset": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
        "quoteAsset": "SOL", "amount": "0.5", "minLiquidity": "50", "maxPrice": "0.001", "maxPriceImpactBps": 300,
        "expiresAt": 600}
    assert args.idempotency_key == "k-1"  # a header, not a body field


@pytest.mark.parametrize("argv", [
    ("submit", "limit", "--side", "sell", "--base", "SOL", "--quote", "USDC", "--amount", "1", "--limit-price", "1",
     "--expires-in", "1000000000"),  # the server would read it as a Unix time
    ("submit", "market", "--side", "hold", "--base", "SOL", "--quote", "USDC", "--amount", "1"),
    ("submit", "limit", "--side", "sell", "--base", "SOL", "--quote", "USDC", "--amount", "1", "--limit-price", "1",
     "--expires-in", "60", "--expires-at", "1800000000"),
    ("orders", "--before", "x", "--all"),
])
def test_usage_errors_exit_with_the_usage_code(argv):
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == EXIT_USAGE


def test_a_key_request_sends_only_the_limits_given():
    assert key_body(parse("keys", "create", "--label", "ci", "--per-minute", "5")) == {"label": "ci",
                                                                                      "ordersPerMinute": 5}
    assert key_body(parse("keys", "create", "--in-flight", "2")) == {"maxInFlight": 2}


def test_global_flags_work_before_and_after_the_command():
    assert parse("--json", "orders").json and parse("orders", "--json").json
    assert parse("--url", "http://a", "orders").url == "http://a"
    assert parse("orders", "--api-key", "k").api_key == "k"


# --- where the URL and the key come from -------------------------------------------------------------

def test_the_url_comes_from_the_flag_then_dex_url_then_the_local_runtime():
    assert server_url("http://flag:1/", {"DEX_URL": "http://env:2"}) == "http://flag:1"
    assert server_url(None, {"DEX_URL": "http://env:2"}) == "http://env:2"
    assert server_url(None, {}) == "http://127.0.0.1:8000"
    assert socket_url("https://dex.example/base") == "wss://dex.example/base"
    assert socket_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000"


def test_the_key_comes_from_the_flag_then_the_environment_then_the_dev_key_files(tmp_path):
    here, engine = tmp_path / "here", tmp_path / "engine"
    here.mkdir()
    engine.mkdir()
    (engine / ".dev-api-key").write_text("dex_engine\n")
    env = {"DEX_API_KEY": "dex_env"}
    assert api_key("dex_flag", env, here, engine) == ("dex_flag", "--api-key")
    assert api_key(None, env, here, engine) == ("dex_env", "DEX_API_KEY")
    assert api_key(None, {}, here, engine) == ("dex_engine", str(engine / ".dev-api-key"))
    (here / ".dev-api-key").write_text("dex_here\n")
    assert api_key(None, {}, here, engine) == ("dex_here", str(here / ".dev-api-key"))
    (here / ".dev-api-key").write_text("\n")  # an empty file is no key
    assert api_key(None, {}, here, engine)[0] == "dex_engine"


def test_no_key_anywhere_is_a_usage_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(NoKey):
        api_key(None, {}, tmp_path, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEX_API_KEY", raising=False)
    monkeypatch.setattr(config, "ENGINE_ROOT", tmp_path)
    assert main(["orders"]) == EXIT_USAGE
    assert "error: no API key" in capsys.readouterr().err


def test_an_unreachable_server_exits_with_its_own_code(monkeypatch, capsys):
    monkeypatch.setenv("DEX_API_KEY", "dex_any")
    assert main(["--url", "http://127.0.0.1:9", "orders"]) == EXIT_UNREACHABLE
    assert capsys.readouterr().err.startswith("error: cannot reach http://127.0.0.1:9")


def test_a_key_given_in_full_is_hashed_and_an_id_is_kept():
    assert key_id("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256("abc")
    assert key_id("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD") == key_id("abc")


# --- errors, waits ---------------------------------------------------------------------------------

def test_a_refusal_reads_as_its_message_and_field():
    refusal = ApiError(422, {"error": "amount must be a positive decimal", "field": "amount"})
    assert error_line(refusal.message, refusal.field) == "error: amount must be a positive decimal (field: amount)"
    assert not refusal.unavailable and ApiError(503, {"error": "down", "field": None}).unavailable
    assert error_line("not found", None) == "error: not found"
    assert ApiError(404, {"status_code": 404, "detail": "Not Found"}).message == "Not Found"


def test_exit_codes_are_distinct():
    from client import cli
    codes = [cli.EXIT_OK, cli.EXIT_NOT_FILLED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE]
    assert len(set(codes)) == len(codes)


def test_reconnection_waits_double_up_to_a_bound():
    backoff = Backoff(first_s=0.25, most_s=4.0, attempts=12)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


# --- amounts and events ----------------------------------------------------------------------------

def test_base_units_read_as_token_amounts():
    assert TOKENS.amount(1_500_000_000, SOL) == "1.5 SOL"
    assert TOKENS.amount("227701757", USDC) == "227.701757 USDC"
    assert TOKENS.amount(1_000_000, USDC, with_symbol=False) == "1"
    assert TOKENS.amount(42, "Unknown1111111111111111111111111111111111111") == "42 units of Unknown1…"
    assert TOKENS.amount(None, SOL) == "–"
    assert price("151.846654666666667") == "151.84665" and price("0.000101420900363726546") == "0.0001014209"


ORDER = {"orderId": "01a251ce-40a8-7e93-976e-83fb1b88f26b", "inputMint": SOL, "outputMint": USDC}
STREAM = [
    ({"seq": 1, "status": "pending", "ts": "2026-12-07T18:40:01.193Z",
      "data": {"side": "sell", "type": "market", "amountIn": 1_500_000_000, "inputMint": SOL, "outputMint": USDC,
               "slippageBps": 50}},
     "   1  pending            18:40:01.193  sell: 1.5 SOL for USDC (market, slippage 50 bps)"),
    ({"seq": 2, "status": "routing", "ts": "2026-12-07T18:40:01.403Z",
      "data": {"quotes": [{"venue": "raydium", "amountOut": 227_769_982}, {"venue": "meteora", "amountOut": 221_445_331}],
               "failures": []}},
     "   2  routing            18:40:01.403  quotes: raydium 227.769982 USDC; meteora 221.445331 USDC"),
    ({"seq": 3, "status": "routed", "ts": "2026-12-07T18:40:01.407Z",
      "data": {"venue": "raydium", "legs": [{"venue": "raydium"}], "expectedAmountOut": 227_769_982,
               "minAmountOut": 226_631_132, "reason": "highest net amount out", "advantageBps": 285}},
     "   3  routed             18:40:01.407  raydium: expect 227.769982 USDC, at least 226.631132 USDC"
     " (highest net amount out, +285 bps)"),
    ({"seq": 4, "status": "building", "ts": "2026-12-07T18:40:01.410Z",
      "data": {"legs": [{"venue": "raydium", "signature": "4x8a"}]}},
     "   4  building           18:40:01.410  1 transaction(s): raydium 4x8a"),
    ({"seq": 5, "status": "submitted", "ts": "2026-12-07T18:40:02.112Z", "data": {"signatures": ["4x8a"]}},
     "   5  submitted          18:40:02.112  sent 4x8a"),
    ({"seq": 6, "status": "confirmed", "ts": "2026-12-07T18:40:03.929Z",
      "data": {"venue": "raydium", "txHash": "4x8a", "amountIn": 1_500_000_000, "amountOut": 227_769_982,
               "executionPrice": "151.846654666666667", "unfilledAmountIn": 0}},
     "   6  confirmed          18:40:03.929  227.769982 USDC for 1.5 SOL at 151.84665 on raydium; tx 4x8a"),
]


def test_each_event_is_one_line_with_seq_status_time_and_what_it_says():
    timeline = Timeline(TOKENS, ORDER)
    assert rendered(timeline.header()).rstrip() == " seq  status             time (UTC)    detail"
    for event, line in STREAM:
        assert rendered(timeline.line(event)).rstrip() == line


def test_resting_and_ending_events_name_their_reason():
    timeline = Timeline(TOKENS, ORDER)
    assert timeline.detail("waiting", {"expiresAt": "2026-12-07T19:40:13.447Z"}) == \
        "resting until 2026-12-07T19:40:13.447Z"
    assert timeline.detail("waiting", {"refused": "liquidity 10 under 50", "launch": {"venue": "meteora"}}) == \
        "launch on meteora refused: liquidity 10 under 50; still waiting"
    assert timeline.detail("triggered", {"venue": "raydium", "price": "181.2345678912", "limitPrice": "180"}) == \
        "raydium at 181.23457 reached the limit 180"
    assert timeline.detail("cancelled", {"reason": "cancelled by client"}) == "cancelled by client"
    assert timeline.detail("failed", {"amountIn": 0, "amountOut": 0, "error": "slippage"}) == "reason: slippage"
    assert timeline.detail("partially_filled", {
        "venue": "split", "amountIn": 500_000_000, "amountOut": 75_000_000, "executionPrice": "150",
        "unfilledAmountIn": 1_500_000_000, "error": "slippage"}) == \
        "75 USDC for 0.5 SOL at 150 on split; unfilled 1.5 SOL; reason: slippage"


def test_the_orders_table_shows_amounts_in_tokens():
    order = {**ORDER, "createdAt": "2026-12-07T18:40:01.193Z", "type": "market", "side": "sell", "baseAsset": "SOL",
             "quoteAsset": "USDC", "amountIn": 1_500_000_000, "status": "confirmed", "amountOut": 227_769_982,
             "executionPrice": "151.846654666666667", "venue": "raydium"}
    lines = rendered(orders_table([order], TOKENS)).splitlines()
    assert lines[0].split() == ["order", "created", "(UTC)", "type", "side", "pair", "in", "status", "out", "price",
                                "venue"]
    assert lines[1].split() == ["01a251ce-40a8-7e93-976e-83fb1b88f26b", "2026-12-07", "18:40:01", "market", "sell",
                                "SOL/USDC", "1.5", "SOL", "confirmed", "227.769982", "USDC", "151.84665", "raydium"]


def test_the_keys_table_marks_the_key_in_use_and_revoked_ones():
    keys = [{"keyId": "a" * 64, "label": "ci", "ordersPerMinute": 5, "maxInFlight": 2,
             "createdAt": "2026-12-07T18:45:28.000Z", "revokedAt": None, "current": True},
            {"keyId": "b" * 64, "label": "", "ordersPerMinute": 100, "maxInFlight": 10,
             "createdAt": "2026-12-07T18:42:16.000Z", "revokedAt": "2026-12-07T18:50:00.000Z", "current": False}]
    lines = rendered(keys_table(keys)).splitlines()
    assert lines[1].split() == ["a" * 64, "ci", "5", "2", "2026-12-07", "18:45:28", "active", "(this", "key)"]
    assert lines[2].split() == ["b" * 64, "100", "10", "2026-12-07", "18:42:16", "revoked", "2026-12-07", "18:50:00"]
