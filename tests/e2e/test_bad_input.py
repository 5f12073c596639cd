"""Every kind of bad input gets a clear error naming the field, and hurts nothing."""

from __future__ import annotations

import json

import pytest

from tests.e2e.runtime import connect, receive_json, receive_until_terminal

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
