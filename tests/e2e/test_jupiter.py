"""Jupiter's own client (@jup-ag/api, tests/js/jupiter_client.mjs) against a running engine: it
quotes in base units on GET /swap/v1/quote, and the quote it got back executes as Jupiter's swap
body on POST /api/orders/execute — confirmed as quoted, or refused naming the field when tampered
with or stale."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from shared.domain.jupiter import SLOT_MS
from shared.domain.tokens import SOL, USDC
from shared.settings import Settings
from tests.e2e.runtime import Runtime
from tests.node import node_package

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[1] / "js" / "jupiter_client.mjs"
SELL_1_5_SOL = {"inputMint": SOL.mint, "outputMint": USDC.mint, "amount": 1_500_000_000, "slippageBps": 50}


def jupiter(runtime: Runtime, command: str, argument: dict) -> tuple[int, dict]:
    """One call of Jupiter's client (`quote` parameters, or a quote to `execute`): (status, body)."""
    node_package("@jup-ag/api")
    done = subprocess.run(
        ["node", str(SCRIPT), command, json.dumps(argument)], cwd=SCRIPT.parent, capture_output=True, text=True,
        timeout=30, env={**os.environ, "ENGINE_URL": runtime.base, "ENGINE_API_KEY": runtime.api_key},
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    return answer["status"], answer["body"]


@pytest.fixture(scope="module")
def pools(runtime: Runtime) -> dict[str, dict]:
    """SOL/USDC at 150, as GET /api/markets shows it: venue → its pool and spot price."""
    assert runtime.post("/api/sim/prices", {"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"}).status_code == 200
    pairs = runtime.get("/api/markets").json()["pairs"]
    return {venue["venue"]: venue for pair in pairs if pair["pair"] == "SOL/USDC" for venue in pair["venues"]}


def test_jupiters_client_quotes_1_5_sol_in_lamports_near_the_pools_price(runtime, pools):
    status, quote = jupiter(runtime, "quote", SELL_1_5_SOL)
    assert status == 200, quote
    assert (quote["inputMint"], quote["outputMint"], quote["inAmount"]) == (SOL.mint, USDC.mint, "1500000000")
    assert (quote["swapMode"], quote["slippageBps"]) == ("ExactIn", 50)
    (leg,) = quote["routePlan"]
    venue = pools[leg["swapInfo"]["label"]]
    assert leg["swapInfo"]["ammKey"] == venue["pool"] and leg["percent"] == 100
    price = Decimal(quote["outAmount"]) / 10**6 / Decimal("1.5")  # USDC per SOL
    spot = Decimal(venue["spotPrice"])
    assert spot * Decimal("0.99") < price < spot  # the 0.25 % fee and a little impact below the pool's spot
    assert max(Decimal(v["spotPrice"]) for v in pools.values()) == spot  # the better pool for a small sale
    assert int(quote["otherAmountThreshold"]) == int(quote["outAmount"]) * 9_950 // 10_000
    assert isinstance(quote["contextSlot"], int) and quote["timeTaken"] >= 0


def test_dexes_and_exclude_dexes_choose_the_venues(runtime, pools):
    status, quote = jupiter(runtime, "quote", {**SELL_1_5_SOL, "dexes": ["Meteora DLMM"]})
    assert status == 200 and [leg["swapInfo"]["label"] for leg in quote["routePlan"]] == ["meteora"], quote
    assert quote["routePlan"][0]["swapInfo"]["ammKey"] == pools["meteora"]["pool"]
    big = {**SELL_1_5_SOL, "amount": 3_000_000_000_000}  # 3,000 SOL: a split across both pools
    status, quote = jupiter(runtime, "quote", {**big, "dexes": ["raydium", "meteora"]})
    assert status == 200 and {leg["swapInfo"]["label"] for leg in quote["routePlan"]} == {"raydium", "meteora"}
    status, quote = jupiter(runtime, "quote", {**big, "excludeDexes": ["meteora"]})
    assert status == 200 and [leg["swapInfo"]["label"] for leg in quote["routePlan"]] == ["raydium"]
    # Jupiter also takes the labels comma-separated in one parameter.
    comma = httpx.get(f"{runtime.base}/swap/v1/quote", headers=runtime.headers, params={
        **big, "dexes": "Raydium,Meteora DLMM", "onlyDirectRoutes": "true", "maxAccounts": "64"})
    assert comma.status_code == 200 and len(comma.json()["routePlan"]) == 2, comma.text


@pytest.mark.parametrize(("parameters", "field"), [
    ({"swapMode": "ExactOut"}, "swapMode"),
    ({"dexes": ["Orca"]}, "dexes"),
    ({"excludeDexes": ["raydium", "meteora"]}, "excludeDexes"),
    ({"amount": 0}, "amount"),
    ({"amount": 30_000 * 10**9}, "amount"),  # over the largest SOL order (20,000)
])
def test_what_the_engine_cannot_quote_is_a_422_naming_the_parameter(runtime, parameters, field):
    status, body = jupiter(runtime, "quote", {**SELL_1_5_SOL, **parameters})
    assert (status, body["field"]) == (422, field), body


def test_decimals_are_for_api_quote_and_base_units_for_swap_quote(runtime):
    decimal = httpx.get(f"{runtime.base}/swap/v1/quote", headers=runtime.headers,
                        params={**SELL_1_5_SOL, "amount": "1.5"})
    assert decimal.status_code == 422 and decimal.json()["field"] == "amount", decimal.text
    whole = runtime.get(f"/api/quote?inputMint=SOL&outputMint=USDC&amount=1.5").json()
    assert whole["inAmount"] == "1500000000"


def test_the_quote_jupiters_client_got_executes_as_quoted(runtime, pools):
    status, quote = jupiter(runtime, "quote", SELL_1_5_SOL)
    assert status == 200, quote
    status, placed = jupiter(runtime, "execute", quote)
    assert status == 201, placed
    order = runtime.wait_for_status(placed["orderId"], {"confirmed", "failed"})
    assert order["status"] == "confirmed", order
    assert order["amountOut"] >= int(quote["otherAmountThreshold"]) == order["minAmountOut"]
    assert order["venue"] == quote["routePlan"][0]["swapInfo"]["label"]
    assert order["conditions"]["fromQuote"]["contextSlot"] == quote["contextSlot"]
    events = runtime.get(f"/api/orders/{placed['orderId']}/events").json()
    assert [e["status"] for e in events] == ["pending", "routing", "routed", "building", "submitted", "confirmed"]


@pytest.mark.parametrize(("tamper", "field"), [
    (lambda q, pools: q["routePlan"][0]["swapInfo"].update(ammKey=pools["raydium"]["pool"][::-1]),
     "quoteResponse.routePlan[0].swapInfo.ammKey"),
    (lambda q, pools: q.update(inAmount="3000000000"), "quoteResponse.inAmount"),
    (lambda q, pools: q.update(otherAmountThreshold=str(int(q["outAmount"]) + 1)), "quoteResponse.otherAmountThreshold"),
    (lambda q, pools: q["routePlan"][0].update(percent=90), "quoteResponse.routePlan"),
    (lambda q, pools: q.update(swapMode="ExactOut"), "quoteResponse.swapMode"),
    (lambda q, pools: q.update(contextSlot=q["contextSlot"] - 40_000 // SLOT_MS), "quoteResponse.contextSlot"),  # 40 s
])
def test_a_tampered_or_stale_quote_is_refused_naming_the_field(runtime, pools, tamper, field):
    assert Settings().quote_max_age_s == 30
    status, quote = jupiter(runtime, "quote", SELL_1_5_SOL)
    assert status == 200, quote
    tamper(quote, pools)
    status, body = jupiter(runtime, "execute", quote)
    assert (status, body["field"]) == (422, field), body
