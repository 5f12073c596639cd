"""The web console at `/` in a real headless Chromium (Debian's `chromium`, driven by Playwright),
against the runtime as a user starts it: the page asks for the key, then uses only the public API.

Each test opens its own tab (sessionStorage, hence the key, is per tab), so the tests need no
order among themselves. Screenshots are left in .artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_sync
from tests.e2e.runtime import ROOT, Runtime

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("DEX_CHROMIUM", "/usr/bin/chromium"))
"""Debian's chromium package (.ci/run installs it); never a browser Playwright downloads."""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / ".artifacts" / "console"
VIEWPORT = {"width": 1500, "height": 1000}
WAIT_MS = 20_000
KEY_STORAGE = "dex-console.apiKey"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One headless Chromium per test module, on a fresh profile."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the console test needs Debian's chromium package "
                    "(`apt-get install -y chromium`, as .ci/run does)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: install the dev extras (`pip install -e '.[dev]'`)", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            headless=True, viewport=VIEWPORT,
        )
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


@pytest.fixture
def console(browser, runtime: Runtime) -> Iterator:
    """A new tab on the console with the development key entered, the pools shown."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{runtime.base}/")
    page.fill("#api-key", runtime.api_key)
    page.click("#use-key")
    page.locator('#pools tr[data-pair="SOL/USDC"]').first.wait_for()
    yield page
    page.close()
    assert not errors, f"the page raised: {errors}"


def submit(page, **fields: str) -> None:
    form = page.locator("#order-form")
    form.locator("[name=type]").select_option(fields.pop("type", "market"))
    form.locator("[name=side]").select_option(fields.pop("side", "sell"))
    for name, value in {"baseAsset": "SOL", "quoteAsset": "USDC", **fields}.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()


def newest_row(page, count_before: int):
    """The timeline row of the order just submitted (rows are prepended)."""
    rows = page.locator("#timeline > .order")
    rows.nth(count_before).wait_for()  # one more row than before (no wait_for_function: the page's CSP forbids eval)
    return rows.first


def expect(locator):
    """Playwright's retrying assertions (imported late: without playwright, the browser fixture says so)."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    return playwright_expect(locator)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# --- the API the console reads (no browser needed) ---------------------------------------------------

def test_recent_orders_are_the_clients_own_newest_first_a_page_at_a_time(runtime: Runtime) -> None:
    other_key = run_sync(runtime.create_key(f"lister-{uuid.uuid4().hex[:6]}"))
    headers = {"X-API-Key": other_key}
    placed = []
    for amount in ("0.1", "0.2", "0.3"):
        response = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                       "amount": amount}, headers=headers)
        placed.append(response.json()["orderId"])
    first = runtime.get("/api/orders?limit=2", key=other_key).json()
    assert [o["orderId"] for o in first["orders"]] == placed[:0:-1]  # newest first
    assert first["next"] == placed[1]
    view = runtime.get(f"/api/orders/{placed[2]}", key=other_key).json()
    listed = first["orders"][0]
    assert listed.keys() == view.keys()  # the order view of GET /api/orders/{id}
    assert [listed[k] for k in ("orderId", "type", "amountIn", "createdAt")] == [
        view[k] for k in ("orderId", "type", "amountIn", "createdAt")]
    last = runtime.get(f"/api/orders?limit=2&before={first['next']}", key=other_key).json()
    assert ([o["orderId"] for o in last["orders"]], last["next"]) == ([placed[0]], None)
    assert runtime.get("/api/orders?limit=3", key=other_key).json()["next"] is None  # exactly one full page
    mine = {o["orderId"] for o in runtime.get("/api/orders?limit=100").json()["orders"]}
    assert not mine & set(placed)  # the development client sees none of them
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("before=nope", "before"),
                         ("before=", "before")):
        response = runtime.get(f"/api/orders?{query}", key=other_key)
        assert (response.status_code, response.json()["field"]) == (422, field), (query, response.text)
    assert httpx.get(f"{runtime.base}/api/orders", timeout=10).status_code == 401


def test_markets_show_every_pair_with_each_venue_price_and_depth(runtime: Runtime) -> None:
    pairs = {p["pair"]: p for p in runtime.get("/api/markets").json()["pairs"]}
    assert {"SOL/USDC", "SOL/USDT", "USDT/USDC", "BONK/SOL", "JUP/USDC"} <= set(pairs)
    sol_usdc = pairs["SOL/USDC"]
    assert (sol_usdc["base"]["symbol"], sol_usdc["base"]["decimals"], sol_usdc["quote"]["mint"]) == (
        "SOL", 9, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
    venues = {v["venue"]: v for v in sol_usdc["venues"]}
    assert set(venues) == {"raydium", "meteora"}
    for venue in venues.values():
        assert 100 < float(venue["spotPrice"]) < 250
        assert float(venue["baseDepth"]) > 1000 and float(venue["quoteDepth"]) > 100_000
    quote = runtime.get("/api/quote?inputMint=SOL&outputMint=USDC&amount=1").json()
    spot = {v["venue"]: float(venues[v["venue"]]["spotPrice"]) for v in quote["venues"]}
    for v in quote["venues"]:  # a tiny sale gets about the spot, less the fee
        assert 0.99 * spot[v["venue"]] < int(v["outAmount"]) / 1e6 <= spot[v["venue"]]


# --- the console in the browser -----------------------------------------------------------------------

def test_the_page_is_served_without_a_key_and_never_holds_one(runtime: Runtime, console) -> None:
    page = httpx.get(f"{runtime.base}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css"):
        assert httpx.get(f"{runtime.base}/console/{asset}", timeout=10).status_code == 200
    assert httpx.get(f"{runtime.base}/console/index.html", timeout=10).status_code == 404  # only the listed files
    assert httpx.get(f"{runtime.base}/api/markets", timeout=10).status_code == 401  # the API stays behind the key
    assert runtime.api_key not in console.content()  # in the tab's sessionStorage, not in the document
    assert console.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == runtime.api_key
    venues = console.locator('#pools tr[data-pair="SOL/USDC"]')
    assert {venues.nth(i).get_attribute("data-venue") for i in range(venues.count())} == {"raydium", "meteora"}


def test_a_market_order_is_confirmed_with_its_quotes_and_routing_decision(runtime: Runtime, console) -> None:
    before = console.locator("#timeline > .order").count()
    submit(console, amount="1.5")
    row = newest_row(console, before)
    row.locator('.step[data-status="confirmed"]').wait_for()
    assert row.get_attribute("data-status") == "confirmed"
    steps = row.locator(".step")
    assert [steps.nth(i).get_attribute("data-status") for i in range(steps.count())] == [
        "pending", "routing", "routed", "building", "submitted", "confirmed"]
    step_time = row.locator('.step[data-status="routed"] .step-time').inner_text()
    assert re.fullmatch(r"\+\d.*\(step .*\)", step_time, re.DOTALL), step_time  # since submit, and this step
    quotes = row.locator('.step[data-status="routing"] table.quotes tbody tr')
    assert {quotes.nth(i).get_attribute("data-venue") for i in range(quotes.count())} == {"raydium", "meteora"}
    assert "USDC" in quotes.first.inner_text() and "%" in quotes.first.inner_text()  # amount out, price impact
    order = runtime.get(f"/api/orders/{row.get_attribute('data-order-id')}").json()
    decision = row.locator('.step[data-status="routed"] .decision').inner_text()
    assert (f"Routed to {order['venue']}" if order["venue"] != "split" else "Split") in decision
    assert "bps more than" in decision and "Expected" in decision
    filled = row.locator('.step[data-status="confirmed"]').inner_text()
    assert "Sold 1.5 SOL, got" in filled and "USDC at" in filled
    signature = row.locator('.step[data-status="confirmed"] .signature code').get_attribute("title")
    assert signature == order["txSignature"]
    shot(console, "market-order-confirmed")


def test_a_resting_limit_order_waits_and_is_cancelled(runtime: Runtime, console) -> None:
    before = console.locator("#timeline > .order").count()
    submit(console, type="limit", amount="1", limitPrice="100000", expiresAt="3600")  # far above the market
    row = newest_row(console, before)
    row.locator('.step[data-status="waiting"]').wait_for()
    assert row.locator(".order-head .status").inner_text() == "waiting"
    assert "Resting until" in row.locator('.step[data-status="waiting"]').inner_text()
    shot(console, "limit-order-waiting")
    row.locator("button.cancel").click()
    row.locator('.step[data-status="cancelled"]').wait_for()
    assert row.locator("button.cancel").is_hidden()
    assert runtime.get(f"/api/orders/{row.get_attribute('data-order-id')}").json()["status"] == "cancelled"
    shot(console, "limit-order-cancelled")


def test_a_bad_field_is_refused_next_to_it(runtime: Runtime, console) -> None:
    rows = console.locator("#timeline > .order").count()
    submit(console, amount="abc")
    error = console.locator('#order-form .field-error[data-field="amount"]')
    error.wait_for()
    assert "amount" in error.inner_text()
    assert console.locator("#order-form [name=amount]").get_attribute("aria-invalid") == "true"
    shot(console, "bad-amount")
    submit(console, type="limit", amount="1", limitPrice="-5")  # another field the server names
    console.locator('#order-form .field-error[data-field="limitPrice"]').wait_for()
    assert console.locator('#order-form .field-error[data-field="amount"]').inner_text() == ""
    assert console.locator("#timeline > .order").count() == rows  # nothing was placed


def test_recent_orders_reopen_into_their_stream_after_a_reload(runtime: Runtime, console) -> None:
    before = console.locator("#timeline > .order").count()
    submit(console, amount="0.25")
    order_id = newest_row(console, before).get_attribute("data-order-id")
    console.locator(f'#timeline .order[data-order-id="{order_id}"] .step[data-status="confirmed"]').wait_for()
    console.reload()  # the key stays in this tab's sessionStorage; the timeline starts empty
    listed = console.locator(f'#recent tr[data-order-id="{order_id}"]')
    listed.wait_for()
    assert listed.locator(".status").inner_text() == "confirmed"
    assert console.locator("#timeline > .order").count() == 0
    listed.locator("button.open").click()
    row = console.locator(f'#timeline .order[data-order-id="{order_id}"]')
    row.locator('.step[data-status="confirmed"]').wait_for()
    assert row.locator(".step").count() == 6  # replayed from seq 1 by the stream socket


def test_a_sniper_order_waits_for_the_pool_the_simulation_launches(runtime: Runtime, console) -> None:
    """The simulation controls: a price move shows in the pools, a launch opens a pool for a new mint
    (made up by the page) and fires the sniper order the form placed for it."""
    move = console.locator("#move-form")
    move.locator("[name=pair]").select_option("JUP/USDC")
    move.locator("[name=venue]").select_option("raydium")
    move.locator("[name=price]").fill("0.9")
    move.locator("button[type=submit]").click()
    expect(move.locator(".result")).to_contain_text("limit orders fired: 0")
    assert console.locator('#pools tr[data-pair="JUP/USDC"][data-venue="raydium"] td').nth(1).inner_text() == "0.9"

    launch = console.locator("#launch-form")
    mint = launch.locator("[name=baseMint]").input_value()
    launch.locator("[name=symbol]").fill("SNIPE")
    launch.locator("#snipe-mint").click()  # the order form: a sniper buying this mint with SOL
    before = console.locator("#timeline > .order").count()
    submit(console, type="sniper", side="buy", baseAsset=mint, quoteAsset="SOL", amount="0.5", expiresAt="600")
    row = newest_row(console, before)
    row.locator('.step[data-status="waiting"]').wait_for()
    launch.locator("button[type=submit]").click()
    expect(launch.locator(".result")).to_contain_text("snipers fired: 1")
    row.locator('.step[data-status="confirmed"]').wait_for()
    assert "Fired by a launch on meteora" in row.locator('.step[data-status="triggered"]').inner_text()
    assert console.locator('#pools tr[data-pair="SNIPE/SOL"]').count() == 1
    shot(console, "sniper-launch")


def test_the_console_shows_a_confirmed_order_a_resting_order_and_the_pools(runtime: Runtime, console) -> None:
    """The picture in the README (docs/console.png is a copy of .artifacts/console/overview.png)."""
    submit(console, type="limit", amount="2", limitPrice="250", expiresAt="3600")
    console.locator('#timeline .order[data-status="waiting"]').wait_for()
    submit(console, amount="3000")  # large: split across both venues
    console.locator('#timeline > .order').first.locator('.step[data-status="confirmed"]').wait_for()
    console.locator('#recent tr[data-status="waiting"]').first.wait_for()
    console.locator('#recent tr[data-status="confirmed"]').first.wait_for()
    shot(console, "overview")
