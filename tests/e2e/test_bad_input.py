"""Every kind of bad input gets a clear error naming the field, and hurts nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from shared.domain.events import MAX_SEQ
from tests.e2e.runtime import ROOT, close_code, connect, receive_json, receive_until_terminal
from tests.unit.test_events import BAD_AFTER

RUNTIME_LOG = ROOT / ".pytest-runtime.log"
"""Where tests/e2e/runtime.py sends every runtime's output."""

GOOD = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5", "slippageBps": 100}
# (description, body, expected HTTP status, field named in the error)
BAD_INPUTS = [
    ("not JSON", b"{nope", 400, None),
    ("not an object", b"[1, 2]", 422, None),
    ("missing field", {k: v for k, v in GOOD.items() if k != "amount"}, 422, "amount"),
    ("unknown field", {**GOOD, "price": "1"}, 422, "price"),
    ("unknown asset", {**GOOD, "baseAsset": "DOGE"}, 422, "baseAsset"),
    ("unknown mint", {**GOOD, "quoteAsset": "1111111111111111111111111111111111111111111"}, 422, "quoteAsset"),
    ("same asset both sides", {**GOOD, "quoteAsset": "SOL"}, 422, "quoteAsset"),
    ("amount zero", {**GOOD, "amount": "0"}, 422, "amount"),
    ("amount negative", {**GOOD, "amount": "-1.5"}, 422, "amount"),
    ("amount non-numeric", {**GOOD, "amount": "one"}, 422, "amount"),
    ("amount as a number", {**GOOD, "amount": 1.5}, 422, "amount"),
    ("amount too many decimals", {**GOOD, "amount": "1.0000000001"}, 422, "amount"),
    ("amount absurdly large", {**GOOD, "amount": "99999999999999999999"}, 422, "amount"),
    ("amount empty", {**GOOD, "amount": ""}, 422, "amount"),
    ("slippage negative", {**GOOD, "slippageBps": -1}, 422, "slippageBps"),
    ("slippage above 10,000", {**GOOD, "slippageBps": 10_001}, 422, "slippageBps"),
    ("unknown type", {**GOOD, "type": "stop"}, 422, "type"),
    ("unknown side", {**GOOD, "side": "hold"}, 422, "side"),
]


def _bytes(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.mark.parametrize(("case", "body", "status", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_http_bad_input_is_refused_naming_the_field(runtime, case, body, status, field):
    response = runtime.post_order(_bytes(body))
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["field"] == field
    assert payload["error"]


async def test_websocket_bad_input_gets_error_messages_and_the_socket_stays_usable(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        for case, body, _status, field in BAD_INPUTS:
            await socket.send(_bytes(body).decode())
            reply = await receive_json(socket)
            assert reply["type"] == "error", case
            assert reply["field"] == field, case
        await socket.send(b"\x00\x01binary")
        assert (await receive_json(socket))["type"] == "error"
        await socket.send(json.dumps(GOOD))
        events = await receive_until_terminal(socket)
    assert events[-1]["status"] == "confirmed"


async def test_bad_input_stores_no_order(runtime):
    before = await runtime.count_orders()
    for _case, body, _status, _field in BAD_INPUTS:
        runtime.post_order(_bytes(body))
    assert await runtime.count_orders() == before


# --- query parameters ------------------------------------------------------------------------------
# One reading of `?after=` for HTTP and the stream socket (shared.domain.events.parse_after), and every
# query parameter of every route: a wrongly typed, out-of-range or missing value is a 422 naming
# it (camelCase, as sent), logged as one line without a traceback.

def _order_id(runtime) -> str:
    answer = runtime.post_order(GOOD)
    assert answer.status_code == 201, answer.text
    return answer.json()["orderId"]


@pytest.mark.parametrize("after", BAD_AFTER, ids=[repr(a) for a in BAD_AFTER])
async def test_a_bad_after_is_a_422_naming_after_over_http_and_on_the_stream_socket(runtime, after):
    order_id = _order_id(runtime)
    answer = runtime.get(f"/api/orders/{order_id}/events?after={quote(after)}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "after" and answer.json()["error"]
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after={quote(after)}") as socket:
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 422 and refusal["field"] == "after", refusal
        assert await close_code(socket) == 1008


async def test_after_in_ascii_digits_up_to_max_seq_is_read_the_same_by_http_and_the_socket(runtime):
    order_id = _order_id(runtime)
    assert runtime.wait_for_status(order_id, {"confirmed"})["status"] == "confirmed"  # its events are all stored
    stored = runtime.get(f"/api/orders/{order_id}/events").json()
    assert len(stored) > 2 and runtime.get(f"/api/orders/{order_id}/events?after=0").json() == stored
    for after in ("2", "002", str(MAX_SEQ)):
        over_http = runtime.get(f"/api/orders/{order_id}/events?after={after}")
        assert over_http.status_code == 200, over_http.text
        assert over_http.json() == [e for e in stored if e["seq"] > int(after)]
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=002") as socket:
        assert [e["seq"] for e in await receive_until_terminal(socket)] == [e["seq"] for e in stored if e["seq"] > 2]


VALID_QUERIES = {
    "/api/quote": {"inputMint": "SOL", "outputMint": "USDC", "amount": "1", "slippageBps": "50"},
    "/api/orders/{order_id}/events": {"after": "0"},
    "/api/orders": {"limit": "5", "before": "ffffffff-ffff-ffff-ffff-ffffffffffff"},
    "/swap/v1/quote": {"inputMint": "SOL", "outputMint": "USDC", "amount": "1000000000", "slippageBps": "50",
                       "swapMode": "ExactIn", "dexes": "raydium", "excludeDexes": "meteora"},
}
"""A valid query for every route that takes query parameters (each one named)."""
BAD_STRINGS = {
    "after": BAD_AFTER,
    "amount": ["abc", "-1", "0", "1e3", ""],
    "inputMint": ["NOPE", ""],
    "outputMint": ["NOPE", ""],
    "before": ["nope", "", "01a251ab-bca3", " ffffffff-ffff-ffff-ffff-ffffffffffff"],
    "swapMode": ["ExactOut", "exactin", ""],
    "dexes": ["Orca"],
    "excludeDexes": ["Orca", "raydium,meteora"],
}
"""Bad values of the string parameters (any text has the right type: these are out of their range)."""


def _bad_values(parameter: dict) -> list[str | None]:
    """Wrongly typed and out-of-range values for a parameter of the served schema; None: leave it out
    (for a required one)."""
    name, schema = parameter["name"], parameter["schema"]
    values: list[str | None] = [None] if parameter.get("required") else []
    if schema.get("type") == "integer":
        values += ["abc", "1.5", "²", ""]
        values += [str(int(schema[b]) + d) for b, d in (("minimum", -1), ("maximum", 1)) if b in schema]
        values += ["99999999999999999999999"]
    else:
        values += BAD_STRINGS[name]
    return values


def _log_lines(offset: int) -> list[str]:
    return RUNTIME_LOG.read_bytes()[offset:].decode(errors="replace").splitlines()


async def test_every_bad_query_parameter_is_a_422_naming_it_and_logs_no_traceback(runtime):
    schema = httpx.get(f"{runtime.base}/schema/openapi.json", timeout=10).json()
    routes = {path: [p for p in op.get("parameters", []) if p["in"] == "query"]
              for path, ops in schema["paths"].items() for op in ops.values()}
    routes = {path: params for path, params in routes.items() if params}
    assert set(routes) == set(VALID_QUERIES), "a route takes query parameters this test does not know"
    order_id = _order_id(runtime)
    offset = RUNTIME_LOG.stat().st_size
    probes: dict[str, tuple[str, str]] = {}  # marker → (request, field)
    for path, parameters in routes.items():
        assert {p["name"] for p in parameters} == set(VALID_QUERIES[path])
        url = runtime.base + path.format(order_id=order_id)
        assert httpx.get(url, params=VALID_QUERIES[path], headers=runtime.headers, timeout=10).status_code == 200
        for parameter in parameters:
            name = parameter["name"]
            for value in _bad_values(parameter):
                marker = uuid.uuid4().hex
                query = {k: v for k, v in VALID_QUERIES[path].items() if k != name}
                if value is not None:
                    query[name] = value
                query["probe"] = marker  # an unknown parameter is ignored; it finds this request in the log
                answer = httpx.get(url, params=query, headers=runtime.headers, timeout=10)
                case = f"{path} {name}={value!r}"
                assert answer.status_code == 422, (case, answer.text)
                assert answer.json()["field"] == name and answer.json()["error"], (case, answer.text)
                probes[marker] = (case, name)
    # The log (every e2e runtime appends to it, so lines are found by each request's marker): at most
    # one line per request, never a traceback; Litestar's own checks (an integer's type and range, a
    # missing required parameter) and `after` each log exactly one line naming the field.
    expected = {m for m, (case, name) in probes.items() if name in ("slippageBps", "after")}
    deadline = time.monotonic() + 5
    while True:
        lines = _log_lines(offset)
        found = {m: [i for i, line in enumerate(lines) if m in line] for m in probes}
        if all(found[m] for m in expected) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    for marker, (case, name) in probes.items():
        at = found[marker]
        assert len(at) <= 1, (case, [lines[i] for i in at])
        if marker in expected:
            assert at, f"{case}: nothing logged"
        for i in at:
            assert "Uncaught exception" not in lines[i] and " 422 " in lines[i] and name in lines[i], (case, lines[i])
            assert i + 1 == len(lines) or not lines[i + 1].startswith("Traceback"), (case, lines[i:i + 3])


@pytest.mark.parametrize(("amount", "status"), [("20000", 200), ("20000.000000001", 422), ("25000", 422)])
def test_the_quote_api_refuses_what_a_market_order_would_refuse(runtime, amount: str, status: int) -> None:
    """The same per-asset maximum as an order (DEX_MAX_ORDER_SIZES, 20,000 SOL), naming `amount`."""
    quote = runtime.get(f"/api/quote?inputMint=SOL&outputMint=USDC&amount={amount}")
    assert quote.status_code == status, quote.text
    if status == 422:  # (an order at the maximum would move this runtime's prices for the other tests)
        order = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                    "amount": amount})
        assert order.status_code == 422 and order.json()["field"] == quote.json()["field"] == "amount"


# --- API keys (POST /api/keys, DELETE /api/keys/{keyId}) ------------------------------------------------

BAD_KEY_REQUESTS = [
    ("not JSON", b"{nope", 400, None),
    ("not an object", b"[1, 2]", 422, None),
    ("unknown field", {"label": "x", "clientId": "someone-else"}, 422, "clientId"),
    ("label not text", {"label": 5}, 422, "label"),
    ("label null", {"label": None}, 422, "label"),
    ("label too long", {"label": "x" * 65}, 422, "label"),
    ("label with a control character", {"label": "a\u0000b"}, 422, "label"),
    ("limit zero", {"ordersPerMinute": 0}, 422, "ordersPerMinute"),
    ("limit negative", {"maxInFlight": -1}, 422, "maxInFlight"),
    ("limit as text", {"ordersPerMinute": "5"}, 422, "ordersPerMinute"),
    ("limit fractional", {"maxInFlight": 1.5}, 422, "maxInFlight"),
    ("limit boolean", {"maxInFlight": True}, 422, "maxInFlight"),
    ("limit absurdly large", {"ordersPerMinute": 10**30}, 422, "ordersPerMinute"),
    ("limit over the asking key's", {"ordersPerMinute": 100_001}, 422, "ordersPerMinute"),
]


def _dev_keys(runtime) -> int:
    return len(runtime.get("/api/keys").json()["keys"])


def test_bad_key_requests_are_refused_naming_the_field_and_make_no_key(runtime):
    before = _dev_keys(runtime)
    for case, body, status, field in BAD_KEY_REQUESTS:
        answer = httpx.post(f"{runtime.base}/api/keys", content=_bytes(body), headers=runtime.headers, timeout=10)
        assert answer.status_code == status, (case, answer.text)
        assert answer.json()["field"] == field and answer.json()["error"], (case, answer.text)
    assert _dev_keys(runtime) == before


@pytest.mark.parametrize("key_id", ["nope", "0" * 63, "g" * 64, "0" * 65, "%00", "f" * 64])
def test_a_bad_or_unknown_key_id_is_a_404_naming_key_id(runtime, key_id):
    answer = runtime.delete(f"/api/keys/{key_id}")
    assert (answer.status_code, answer.json()) == (404, {"error": "key not found", "field": "keyId"}), answer.text
