"""The `dex` command (the console script pip installs in .venv/bin) against a live runtime, as a user
runs it: orders submitted, followed, listed and cancelled; quotes; keys made and revoked; the
server's refusals on stderr with the exit code for "refused"; --json; and a stream that resumes
with ?after= when its connection is really cut."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from tests.e2e.runtime import Runtime

pytestmark = pytest.mark.e2e

DEX = Path(sys.executable).with_name("dex")
EXIT_OK, EXIT_NOT_FILLED, EXIT_REFUSED = 0, 1, 3
MARKET = ("submit", "market", "--side", "sell", "--base", "SOL", "--quote", "USDC", "--amount", "0.5")
RESTING = ("submit", "limit", "--side", "sell", "--base", "SOL", "--quote", "USDC", "--amount", "0.5",
           "--limit-price", "5000", "--expires-in", "3600")
"""A sell limit far above any price this module reaches: it rests until cancelled."""
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


def dex_env(runtime: Runtime, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEX_")}
    env["DEX_URL"] = runtime.base
    if key is not None:
        env["DEX_API_KEY"] = key
    return env


def dex(runtime: Runtime, *argv: str, key: str | None = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `dex ARGV` against the runtime with its development key (`key`: another; None: no key
    in the environment), from `cwd` (default: a directory with no key file)."""
    assert DEX.exists(), f"{DEX} is missing: pip install -e . puts it there"
    return subprocess.run([str(DEX), *argv], capture_output=True, text=True, timeout=60, cwd=cwd or Path("/"),
                          env=dex_env(runtime, runtime.api_key if key == "" else key))


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == EXIT_OK, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def event_lines(stdout: str) -> list[list[str]]:
    """The stream's rows (seq, status, time, detail …), split on whitespace."""
    return [line.split() for line in stdout.splitlines() if line.split() and line.split()[0].isdigit()]


def submitted_id(stdout: str) -> str:
    first = stdout.splitlines()[0].split()
    assert first[0] == "order" and first[2] == "pending", stdout
    return first[1].rstrip(":")


def test_submit_market_with_watch_follows_the_order_to_confirmed(runtime):
    out = ok(dex(runtime, *MARKET, "--watch"))
    order_id = submitted_id(out)
    rows = event_lines(out)
    assert [row[1] for row in rows] == FLOW and [int(row[0]) for row in rows] == [1, 2, 3, 4, 5, 6]
    order = runtime.get(f"/api/orders/{order_id}").json()
    assert order["status"] == "confirmed"
    assert rows[0][3:] == ["sell:", "0.5", "SOL", "for", "USDC", "(market,", "slippage", "50", "bps)"]
    assert rows[-1][-2:] == ["tx", order["txSignature"]] and f"on {order['venue']};" in " ".join(rows[-1])


def test_a_resting_limit_order_is_listed_then_cancelled_and_its_watch_exits_not_filled(runtime):
    order_id = submitted_id(ok(dex(runtime, *RESTING)))
    assert runtime.wait_for_status(order_id, {"waiting"})["status"] == "waiting"
    listed = [line.split() for line in ok(dex(runtime, "orders", "--limit", "5")).splitlines()]
    assert [row[-1] for row in listed if row[:1] == [order_id]] == ["waiting"]  # status: the last column here
    assert ok(dex(runtime, "cancel", order_id)).strip() == f"order {order_id}: cancelled"
    assert runtime.get(f"/api/orders/{order_id}").json()["status"] == "cancelled"
    watched = dex(runtime, "watch", order_id)
    assert watched.returncode == EXIT_NOT_FILLED, watched
    assert [row[1] for row in event_lines(watched.stdout)] == ["pending", "waiting", "cancelled"]
    again = dex(runtime, "cancel", order_id)  # a second cancel: the server's 409, its words and field
    assert again.returncode == EXIT_REFUSED
    assert again.stderr.strip() == "error: order is cancelled: only pending or waiting orders can be cancelled" \
                                   " (field: orderId)"


def test_one_order_and_every_page_of_orders(runtime):
    ids = [submitted_id(ok(dex(runtime, *RESTING))) for _ in range(3)]
    shown = ok(dex(runtime, "order", ids[0]))
    assert ["orderId", ids[0]] in [line.split() for line in shown.splitlines()]
    assert ["amountIn", "0.5", "SOL"] in [line.split() for line in shown.splitlines()]
    every = json.loads(ok(dex(runtime, "orders", "--all", "--limit", "2", "--json")))
    served = runtime.get("/api/orders?limit=100").json()
    assert [o["orderId"] for o in every["orders"]] == [o["orderId"] for o in served["orders"]] and every["next"] is None
    assert set(ids) <= {o["orderId"] for o in every["orders"]}
    first_page = ok(dex(runtime, "orders", "--limit", "2")).splitlines()
    assert first_page[-1] == f"more: dex orders --before {served['orders'][1]['orderId']}"
    for order_id in ids:
        ok(dex(runtime, "cancel", order_id))


def test_quote_shows_the_plan_in_tokens_and_json_is_the_servers(runtime):
    served = runtime.get("/api/quote?inputMint=SOL&outputMint=USDC&amount=2").json()
    table = [line.split() for line in ok(dex(runtime, "quote", "--in", "SOL", "--out", "USDC", "--amount", "2"))
             .splitlines()]
    out_amount = format(Decimal(served["outAmount"]).scaleb(-6), "f").rstrip("0").rstrip(".")
    assert ["total", "2", "SOL", out_amount, "USDC"] in table
    assert [row[1] for row in table if row and row[0] == "route"] == [leg["swapInfo"]["label"]
                                                                       for leg in served["routePlan"]]
    as_json = json.loads(ok(dex(runtime, "quote", "--in", "SOL", "--out", "USDC", "--amount", "2", "--json")))
    stable = ("inputMint", "outputMint", "inAmount", "outAmount", "otherAmountThreshold", "routePlan")
    assert {k: as_json[k] for k in stable} == {k: served[k] for k in stable}  # (not the time it took, the slot)


def test_markets_lists_every_pool(runtime):
    pools = json.loads(ok(dex(runtime, "markets", "--json")))["pairs"]
    rows = [line.split() for line in ok(dex(runtime, "markets")).splitlines()[1:]]
    assert [(row[0], row[1], row[-1]) for row in rows] == [(p["pair"], v["venue"], v["pool"]) for p in pools
                                                           for v in p["venues"]]


def test_a_bad_amount_shows_the_servers_field_and_message_and_exits_refused(runtime):
    bad = (*MARKET[:-1], "1.5x")
    server = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                 "amount": "1.5x"}).json()
    done = dex(runtime, *bad)
    assert done.returncode == EXIT_REFUSED and done.stdout == ""
    assert done.stderr == f"error: {server['error']} (field: amount)\n"
    as_json = dex(runtime, *bad, "--json")
    assert as_json.returncode == EXIT_REFUSED and json.loads(as_json.stderr) == server == \
        {"error": server["error"], "field": "amount"}


def test_json_output_parses_one_document_a_line(runtime):
    lines = ok(dex(runtime, *MARKET, "--watch", "--json")).splitlines()
    documents = [json.loads(line) for line in lines]
    assert documents[0]["status"] == "pending" and set(documents[0]) == {"orderId", "status"}
    events = documents[1:]
    assert [e["status"] for e in events] == FLOW and {e["orderId"] for e in events} == {documents[0]["orderId"]}
    assert events == runtime.get(f"/api/orders/{documents[0]['orderId']}/events").json()
    assert json.loads(ok(dex(runtime, "keys", "list", "--json")))["keys"]


def test_the_key_comes_from_dev_api_key_in_the_current_directory(runtime, tmp_path):
    (tmp_path / ".dev-api-key").write_text(runtime.api_key + "\n")
    assert json.loads(ok(dex(runtime, "keys", "list", "--json", key=None, cwd=tmp_path)))["keys"]
    (tmp_path / ".dev-api-key").write_text("dex_not-a-key\n")
    refused = dex(runtime, "keys", "list", key=None, cwd=tmp_path)
    assert refused.returncode == EXIT_REFUSED and "(field: X-API-Key)" in refused.stderr


async def test_a_key_made_by_keys_create_works_until_keys_revoke(runtime):
    created = json.loads(ok(dex(runtime, "keys", "create", "--label", "cli e2e", "--per-minute", "30", "--json")))
    new_key = created["apiKey"]
    assert created["clientId"] == "dev" and created["ordersPerMinute"] == 30 and created["label"] == "cli e2e"
    assert "order" in ok(dex(runtime, "orders", "--limit", "1", key=new_key)).splitlines()[0]
    listed = ok(dex(runtime, "keys", "list", key=new_key))
    mine = [line.split() for line in listed.splitlines() if line.startswith(created["keyId"])]
    assert mine and mine[0][-3:] == ["active", "(this", "key)"]
    assert ok(dex(runtime, "keys", "revoke", new_key)).strip() == f"revoked key {created['keyId']}"  # hashed here
    deadline = time.monotonic() + 2
    while (refused := dex(runtime, "orders", key=new_key)).returncode == EXIT_OK:
        assert time.monotonic() < deadline, "the revoked key still works"
        await asyncio.sleep(0.05)
    assert refused.returncode == EXIT_REFUSED
    assert refused.stderr.strip() == "error: unknown or revoked API key (field: X-API-Key)"


# --- a stream whose connection is cut --------------------------------------------------------------

class CuttingProxy:
    """A TCP proxy in front of the runtime that can cut every connection through it (abort: no
    close frame, as when a network drops) and refuse new ones for a while. It keeps each
    connection's request line."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.refusing = False
        self.request_lines: list[str] = []
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._open |= {writer, up_writer}
        first = await reader.readline()
        self.request_lines.append(first.decode(errors="replace").strip())
        up_writer.write(first)
        with contextlib.suppress(Exception):
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        for end in (writer, up_writer):
            end.transport.abort()
            self._open.discard(end)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        sink.transport.abort()

    def cut(self) -> None:
        for end in list(self._open):
            end.transport.abort()

    def close(self) -> None:
        self.cut()
        self.server.close()


async def test_watch_resumes_with_after_when_its_connection_is_cut(runtime):
    """A sniper order waits; `dex watch` shows pending and waiting; the connection is cut and new
    ones refused while the token launches and the order fills; then the network is back: the watch
    reconnects with ?after=2 and prints seq 3 … 8 once each, exiting 0 for confirmed."""
    mint = str(Pubkey(os.urandom(32)))
    order = {"type": "sniper", "side": "buy", "baseAsset": mint, "quoteAsset": "SOL", "amount": "0.5",
             "minLiquidity": "50", "expiresAt": 600}
    order_id = runtime.post_order(order).json()["orderId"]
    assert runtime.wait_for_status(order_id, {"waiting"})["status"] == "waiting"
    proxy = await CuttingProxy(runtime.port).start()
    env = {**dex_env(runtime, runtime.api_key), "DEX_URL": proxy.url}
    watch = await asyncio.create_subprocess_exec(str(DEX), "watch", order_id, env=env, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE)
    try:
        seen = []
        while len(event_lines("\n".join(seen))) < 2:  # pending, waiting: it is following the live stream
            seen.append((await asyncio.wait_for(watch.stdout.readline(), 20)).decode())
        proxy.refusing = True
        proxy.cut()
        launch = runtime.post("/api/sim/launch", {"venue": "meteora", "baseMint": mint, "symbol": "CUT", "decimals": 6,
                                                  "quoteAsset": "SOL", "baseAmount": "1000000", "quoteAmount": "100"})
        assert launch.status_code == 201 and launch.json()["fired"] == 1, launch.text
        assert runtime.wait_for_status(order_id, {"confirmed", "failed"})["status"] == "confirmed"
        await asyncio.sleep(0.5)  # at least one reconnection is refused
        proxy.refusing = False
        rest, errors = await asyncio.wait_for(watch.communicate(), 30)
    finally:
        if watch.returncode is None:
            watch.kill()
        proxy.close()
    assert watch.returncode == EXIT_OK, (rest, errors)
    rows = event_lines("".join(seen) + rest.decode())
    stored = runtime.get(f"/api/orders/{order_id}/events").json()
    assert [(int(r[0]), r[1]) for r in rows] == [(e["seq"], e["status"]) for e in stored]
    assert [e["status"] for e in stored][-1] == "confirmed" and len(stored) == 8
    assert "stream dropped after seq 2" in errors.decode() and "?after=2" in errors.decode()
    streams = [line for line in proxy.request_lines if "/stream" in line]
    assert streams[0].startswith(f"GET /api/orders/{order_id}/stream?after=0 ")
    assert streams[-1].startswith(f"GET /api/orders/{order_id}/stream?after=2 ")
    assert rows[6][1:2] + rows[6][-1:] == ["submitted", runtime.get(f"/api/orders/{order_id}").json()["txSignature"]]
