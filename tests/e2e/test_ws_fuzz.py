"""Fuzzing the order WebSocket (/api/orders/execute) of the running runtime: random binary
frames, frames over the 64 KiB limit, invalid UTF-8, JSON of every wrong shape, 1,000 messages on
one socket. The server must stay up, answer each bad message with an `error` message (or close the
socket with the proper code: 1009 for an oversize frame, 1007 for invalid UTF-8), keep the socket
usable after a refusal, and confirm the orders other sockets place meanwhile."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import httpx
import pytest
import websocket  # websocket-client: a blocking client, for the Hypothesis test
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.states import TERMINAL_STATUSES
from tests.e2e.runtime import connect, receive_json, receive_until_terminal

pytestmark = pytest.mark.e2e

EXECUTE = "/api/orders/execute"
GOOD = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.01",
        "slippageBps": 100}
LIMIT = {"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.01",
         "limitPrice": "100000", "expiresAt": 3600}
SNIPER = {"type": "sniper", "side": "buy", "baseAsset": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
          "quoteAsset": "SOL", "amount": "0.5", "minLiquidity": "50", "maxPrice": "0.001", "expiresAt": 600}
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]
MAX_MESSAGE = 16_384  # DEX_WS_MAX_MESSAGE_BYTES
MAX_FRAME = 64 * 1024  # uvicorn's ws_max_size
CLOSE_TOO_BIG, CLOSE_INVALID_DATA = 1009, 1007
REFUSALS = {400, 404, 409, 413, 422}
OPTIONAL = {"slippageBps", "clientOrderId", "minAmountOut", "minLiquidity", "maxPrice", "maxPriceImpactBps"}
"""Fields an order may leave out or set to null: removing them leaves a valid order."""


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def wrong_values_for(field: str, value) -> list:
    """Values of the wrong type (or out of range) for one field of a valid order."""
    if isinstance(value, int):  # slippageBps, expiresAt (relative seconds)
        wrong = ["50", 1.5, True, [], {}, -1, 2**64, "", "0x10"]
        return wrong + ([10_001] if field == "slippageBps" else [])
    wrong = [1, 1.5, -1, True, False, [], [value], {}, {"value": value}, "", " ", "x" * 65, "ソラナ", "💸" * 10,
             value + "\u0301", value + "\x00"]
    return wrong if field in OPTIONAL | {"type", "side"} else [*wrong, None]


def bad_messages() -> list[tuple[str, str]]:
    """(label, text) for every kind of JSON of the wrong shape, all under the 16 KiB message limit."""
    messages = [
        ("array", "[]"),
        ("array of orders", dumps([GOOD, GOOD])),
        ("number", "0"),
        ("negative", "-1"),
        ("float", "3.14"),
        ("huge number", "1e308"),
        ("big int", str(2**200)),
        ("null", "null"),
        ("true", "true"),
        ("false", "false"),
        ("string", '"a string"'),
        ("object", "{}"),
        ("nested", dumps({"a": {"b": {"c": [{"d": None}]}}})),
        ("deep array", "[" * 3000 + "]" * 3000),
        ("order in an array", dumps([[GOOD]])),
        ("order nested", dumps({"order": GOOD})),
        ("empty", ""),
        ("space", " "),
        ("not JSON", "{nope"),
        ("single quotes", "{'type': 'market'}"),
        ("NaN", "NaN"),
        ("trailing garbage", dumps(GOOD) + " x"),
        ("two objects", dumps(GOOD) + dumps(GOOD)),
        ("BOM", "\ufeff" + dumps(GOOD)),
        ("unknown field", dumps({**GOOD, "price": "1"})),
        ("unicode field name", dumps({**GOOD, "ámount": "1"})),
        ("emoji value", dumps({**GOOD, "baseAsset": "🚀"})),
        ("RTL text", dumps({**GOOD, "quoteAsset": "\u202eCDSU"})),
        ("zero width", dumps({**GOOD, "baseAsset": "SO\u200bL"})),
        ("long amount", dumps({**GOOD, "amount": "1" * 64})),
        ("long asset", dumps({**GOOD, "baseAsset": "S" * 10_000})),
        ("long field name", dumps({**GOOD, "k" * 10_000: 1})),
        ("long clientOrderId", dumps({**GOOD, "clientOrderId": "c" * 129})),
        ("amount over the maximum", dumps({**GOOD, "amount": "20001"})),
        ("same asset", dumps({**GOOD, "quoteAsset": "SOL"})),
        ("unknown type", dumps({**GOOD, "type": "stop"})),
        ("market with limitPrice", dumps({**GOOD, "limitPrice": "1"})),
        ("limit without expiry", dumps({k: v for k, v in LIMIT.items() if k != "expiresAt"})),
        ("limit expired", dumps({**LIMIT, "expiresAt": "2001-01-01T00:00:00Z"})),
        ("limit far expiry", dumps({**LIMIT, "expiresAt": 10**12})),
        ("sniper selling", dumps({**SNIPER, "side": "sell"})),
        ("sniper bad mint", dumps({**SNIPER, "baseAsset": "0OIl" * 11})),
        ("duplicate keys", '{"type":"market","type":"limit","side":"sell","baseAsset":"SOL","quoteAsset":"USDC",'
                           '"amount":"1"}'),
        ("cancel without id", dumps({"action": "cancel"})),
        ("cancel not a uuid", dumps({"action": "cancel", "orderId": "x"})),
        ("cancel unknown order", dumps({"action": "cancel", "orderId": str(uuid.uuid4())})),
        ("cancel wrong action", dumps({"action": "buy", "orderId": str(uuid.uuid4())})),
        ("cancel null", dumps({"action": None})),
        ("cancel with order", dumps({"action": "cancel", "orderId": str(uuid.uuid4()), **GOOD})),
    ]
    for template, name in ((GOOD, "market"), (LIMIT, "limit"), (SNIPER, "sniper")):
        for field_name, value in template.items():
            if field_name not in OPTIONAL:
                messages.append((f"{name} without {field_name}",
                                 dumps({k: v for k, v in template.items() if k != field_name})))
            for wrong in wrong_values_for(field_name, value):
                messages.append((f"{name} {field_name}={wrong!r:.20}", dumps({**template, field_name: wrong})))
    assert all(len(text.encode()) <= MAX_MESSAGE for _, text in messages)
    return messages


BAD = bad_messages()


def assert_refusal(reply: dict, label: str, statuses: set[int] = REFUSALS) -> None:
    assert reply.get("type") == "error", (label, reply)
    assert isinstance(reply["error"], str) and reply["error"], (label, reply)
    assert "field" in reply, (label, reply)
    assert reply.get("status") in statuses, (label, reply)


def healthy(runtime) -> None:
    response = httpx.get(f"{runtime.base}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


async def trade(runtime, count: int, tag: str) -> list[list[dict]]:
    """`count` orders on their own socket, all at once; every one of them must confirm."""
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for i in range(count):
            await socket.send(dumps({**GOOD, "amount": f"0.02{i:02d}", "clientOrderId": f"{tag}-{i}"}))
        by_order: dict[str, list[dict]] = {}
        while sum(1 for events in by_order.values() if events[-1]["status"] in TERMINAL_STATUSES) < count:
            event = await receive_json(socket, 30)
            assert "orderId" in event, event
            by_order.setdefault(event["orderId"], []).append(event)
    assert len(by_order) == count
    for events in by_order.values():
        assert [e["status"] for e in events] == FLOW
        assert [e["seq"] for e in events] == list(range(1, len(FLOW) + 1))
    return list(by_order.values())


async def closed_with(socket) -> int | None:
    """Wait for the server to close the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    return closed.value.rcvd.code if closed.value.rcvd else None


# --- bad frames ---------------------------------------------------------------------------------------


async def test_random_binary_frames_each_get_an_error_and_the_socket_stays_usable(runtime) -> None:
    rng = random.Random(20261125)
    frames = [rng.randbytes(rng.choice([0, 1, 2, 7, 64, 1000, 4096, MAX_FRAME - 1])) for _ in range(150)]
    frames += [dumps(GOOD).encode(), b"\x00" * 100, "é".encode("latin-1")]  # even JSON, as binary, is refused
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for frame in frames:
            await socket.send(frame)
            assert_refusal(await receive_json(socket), f"binary {frame[:8]!r}")
        await socket.send(dumps(GOOD))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW
    healthy(runtime)


@pytest.mark.parametrize(
    ("label", "size", "text"),
    [("100 KiB text", 100 * 1024, True), ("100 KiB binary", 100 * 1024, False),
     ("1 MiB text", 1024 * 1024, True), ("1 MiB binary", 1024 * 1024, False), ("64 KiB + 1 text", MAX_FRAME + 1, True)],
)
async def test_a_frame_over_64_kib_closes_the_socket_with_1009_and_other_sockets_trade_on(
    runtime, label, size, text
) -> None:
    async def oversize() -> int | None:
        async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
            await socket.send(dumps(GOOD))  # an order in flight on the socket that gets closed
            assert (await receive_json(socket))["status"] == "pending"
            payload = "x" * size if text else random.Random(size).randbytes(size)
            await socket.send(payload)
            return await closed_with(socket)

    tag = f"oversize-{size}-{text}-{uuid.uuid4().hex[:6]}"
    code, _others = await asyncio.gather(oversize(), trade(runtime, 5, tag))
    assert code == CLOSE_TOO_BIG, label
    healthy(runtime)


async def test_a_message_over_16_kib_gets_413_and_the_socket_stays_usable(runtime) -> None:
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for size in (MAX_MESSAGE + 1, 20_000, MAX_FRAME - 1000):
            await socket.send(dumps({**GOOD, "clientOrderId": "c" * size}))
            assert_refusal(await receive_json(socket), f"{size} bytes", {413})
        await socket.send(dumps(GOOD))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
     b'{"type":"market","amount":"\xff"}'],
    ids=["0xff", "BOM-bytes", "bad-continuation", "overlong", "truncated", "surrogate", "above-U+10FFFF",
         "inside-JSON"],
)
async def test_invalid_utf8_in_a_text_frame_closes_the_socket_with_1007(runtime, payload: bytes) -> None:
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        await socket.send(payload, text=True)
        assert await closed_with(socket) == CLOSE_INVALID_DATA
    healthy(runtime)


async def test_sockets_closed_for_bad_frames_give_their_slot_back(runtime) -> None:
    """More sockets than a client may hold (DEX_WS_MAX_SOCKETS_PER_CLIENT, 100), each closed by the
    server for a bad frame: the client can still open a socket and trade."""
    for i in range(105):
        async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
            await socket.send(b"\xff" if i % 2 else b"x" * (MAX_FRAME + 1), text=bool(i % 2))
            assert await closed_with(socket) in (CLOSE_INVALID_DATA, CLOSE_TOO_BIG)
    await trade(runtime, 1, f"slots-{uuid.uuid4().hex[:6]}")


# --- JSON of the wrong shape --------------------------------------------------------------------------


async def test_every_wrong_shape_gets_one_error_and_the_socket_stays_usable(runtime) -> None:
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for label, text in BAD:
            await socket.send(text)
            assert_refusal(await receive_json(socket), label)
        await socket.send(dumps(GOOD))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW
    healthy(runtime)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
# Objects that look like orders: the real field names, values of any JSON type.
ORDER_FIELDS = sorted({*GOOD, *LIMIT, *SNIPER, "clientOrderId", "minAmountOut", "maxPriceImpactBps", "action",
                       "orderId"})
order_like = st.dictionaries(st.sampled_from(ORDER_FIELDS), json_values, max_size=9).map(
    lambda d: {"type": "market", **d} if "type" not in d else d
)


def test_hypothesis_json_gets_an_error_for_each_message(runtime) -> None:
    """Any JSON value, and objects with the order's own field names holding values of any type,
    sent as text frames on one socket: one `error` reply each, never a closed socket. (A generated
    object that happens to be a valid order would get its events instead: none is.)"""
    socket = websocket.create_connection(f"{runtime.ws_base}{EXECUTE}", header=[f"X-API-Key: {runtime.api_key}"],
                                         timeout=15)
    try:

        @settings(max_examples=300, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(json_values | order_like)
        def one_message(value) -> None:
            text = dumps(value)
            if len(text.encode()) > MAX_MESSAGE:
                text = text[: MAX_MESSAGE // 4]  # keep under the message limit: not what this test is about
            socket.send(text)
            reply = json.loads(socket.recv())
            assert_refusal(reply, text[:200])

        one_message()
        socket.send(dumps(GOOD))
        events = []
        while not events or events[-1]["status"] not in TERMINAL_STATUSES:
            events.append(json.loads(socket.recv()))
        assert [e["status"] for e in events] == FLOW
    finally:
        socket.close()
    healthy(runtime)


# --- volume --------------------------------------------------------------------------------------------


async def test_a_thousand_messages_on_one_socket_while_another_socket_trades(runtime) -> None:
    """1,000 messages on one socket — wrong shapes, binary frames, messages over 16 KiB, cancels of
    unknown orders and 15 valid orders, sent without waiting — while 10 orders go through another
    socket: every bad message gets exactly one error, every order on either socket confirms."""
    rng = random.Random(1000)
    tag = uuid.uuid4().hex[:8]
    valid_at = set(rng.sample(range(1000), 15))
    plan: list[tuple[str, str | bytes]] = []
    for i in range(1000):
        if i in valid_at:
            plan.append(("valid", dumps({**GOOD, "amount": f"0.03{i:03d}", "clientOrderId": f"{tag}-{i}"})))
            continue
        kind = rng.random()
        if kind < 0.75:
            plan.append(rng.choice(BAD))
        elif kind < 0.9:
            plan.append(("binary", rng.randbytes(rng.randint(0, 512))))
        elif kind < 0.95:
            plan.append(("too large", "x" * rng.randint(MAX_MESSAGE + 1, MAX_FRAME - 1)))
        else:
            plan.append(("cancel unknown", dumps({"action": "cancel", "orderId": str(uuid.uuid4())})))
    bad_count = sum(1 for label, _ in plan if label != "valid")

    async def barrage() -> tuple[list[dict], dict[str, list[dict]]]:
        async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
            async def send_all() -> None:
                for _label, message in plan:
                    await socket.send(message)

            sender = asyncio.create_task(send_all())
            errors: list[dict] = []
            orders: dict[str, list[dict]] = {}
            while len(errors) < bad_count or sum(1 for e in orders.values() if e[-1]["status"] in TERMINAL_STATUSES) < 15:
                reply = await receive_json(socket, 30)
                if reply.get("type") == "error":
                    errors.append(reply)
                else:
                    assert "orderId" in reply and "seq" in reply, reply
                    if reply["seq"] == 1:  # fail fast if a message meant to be refused became an order
                        assert str(reply["data"].get("clientOrderId")).startswith(tag), reply
                    orders.setdefault(reply["orderId"], []).append(reply)
            await sender
            with pytest.raises(TimeoutError):  # and nothing more: exactly one reply per bad message
                await receive_json(socket, 0.5)
            return errors, orders

    (errors, orders), others = await asyncio.gather(barrage(), trade(runtime, 10, f"beside-{tag}"))
    assert len(errors) == bad_count
    for error in errors:
        assert_refusal(error, "barrage")
    assert len(orders) == 15
    for events in orders.values():
        assert [e["status"] for e in events] == FLOW
        assert [e["seq"] for e in events] == list(range(1, len(FLOW) + 1))
    assert len(others) == 10
    healthy(runtime)


# --- bugs this file found (fixed since): each pinned by a test ----------------------------------------


async def test_an_order_whose_client_order_id_is_action_is_placed(runtime) -> None:
    """Any text containing '"action"' was decoded as a cancel, so a valid order with clientOrderId
    "action" was refused (422 unknown field `type`), while over HTTP it was accepted."""
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for key in ("action", f'the "action" {uuid.uuid4().hex}'):
            await socket.send(dumps({**GOOD, "clientOrderId": key}))
            events = await receive_until_terminal(socket)
            assert [e["status"] for e in events] == FLOW, key


async def test_a_nul_in_client_order_id_is_refused_and_the_socket_stays_usable(runtime) -> None:
    """A NUL in clientOrderId reached PostgreSQL (CharacterNotInRepertoireError), which is not an
    InputError: the socket was closed with 4500 and every order it followed lost its stream."""
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for key in ("a\u0000b", "\u0000", "tab\there", "del\u007f"):
            await socket.send(dumps({**GOOD, "clientOrderId": key}))
            assert_refusal(await receive_json(socket), f"control character in clientOrderId {key!r}", {422})
        await socket.send(dumps(GOOD))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW


async def test_a_deeply_nested_object_is_refused_and_the_socket_stays_usable(runtime) -> None:
    """msgspec raised RecursionError (not a DecodeError) for an object nested ~1,000 deep (6 KB,
    under the 16 KiB limit) while looking for the `type` tag; uncaught, it closed the socket with 4500."""
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        for text in ('{"a":' * 1000 + "1" + "}" * 1000, '{"action":' * 1000 + "1" + "}" * 1000,
                     "[" * 2700 + "]" * 2700, '{"a":[' * 1300 + "]}" * 1300):
            await socket.send(text)
            assert_refusal(await receive_json(socket), text[:20])
        await socket.send(dumps(GOOD))
        assert [e["status"] for e in await receive_until_terminal(socket)] == FLOW


async def test_the_message_limit_counts_bytes(runtime) -> None:
    """The 16 KiB limit counted characters, so 6,000 '€' (18,000 bytes) passed it."""
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        await socket.send(dumps({**GOOD, "clientOrderId": "€" * 6000}))
        assert_refusal(await receive_json(socket), "6,000 euro signs", {413})
        await socket.send(dumps({**GOOD, "clientOrderId": "€" * 200}))  # 600 bytes: the size is fine, the key too long
        assert_refusal(await receive_json(socket), "200 euro signs", {422})


async def test_the_binary_frame_refusal_carries_a_status(runtime) -> None:
    """The refusal of a binary frame had no `status`, unlike every other WebSocket error."""
    async with connect(f"{runtime.ws_base}{EXECUTE}") as socket:
        await socket.send(b"\x00\x01")
        reply = await receive_json(socket)
    assert reply.get("status") == 400, reply
