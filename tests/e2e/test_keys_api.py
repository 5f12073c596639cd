"""A client's own API keys over HTTP (POST/GET /api/keys, DELETE /api/keys/{keyId}) on the running
runtime: a key made is shown once and works at once, with limits no stronger than the key asking;
another client's keys are exactly as invisible as unknown ones; a revocation is announced, so every
open socket of the key is refused within a second."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid

import asyncpg
import httpx
import pytest

from tests.e2e.runtime import Runtime, close_code, connect, receive_json
from tests.e2e.test_auth_and_limits import RESTING, _refused_within_a_second, unique

pytestmark = pytest.mark.e2e

MAX_ACTIVE_KEYS = 100


def make_key(runtime: Runtime, key: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{runtime.base}/api/keys", json=body or {}, headers={"X-API-Key": key}, timeout=10)


def key_ids(runtime: Runtime, key: str) -> list[str]:
    listed = runtime.get("/api/keys", key=key)
    assert listed.status_code == 200, listed.text
    return [k["keyId"] for k in listed.json()["keys"]]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def active_keys(runtime: Runtime, client_id: str) -> int:
    connection = await asyncpg.connect(runtime.env["DATABASE_URL"])
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM api_keys WHERE client_id = $1 AND revoked_at IS NULL", client_id)
    finally:
        await connection.close()


async def test_a_new_key_is_shown_once_acts_as_the_same_client_and_works_at_once(runtime):
    client = unique("maker")
    caller = await runtime.create_key(client)
    order_id = runtime.post_order(RESTING, {"X-API-Key": caller}).json()["orderId"]
    made = make_key(runtime, caller, {"label": "ci runner"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == {"apiKey", "keyId", "clientId", "label", "ordersPerMinute", "maxInFlight", "createdAt"}
    assert body["clientId"] == client and body["label"] == "ci runner" and body["keyId"] == sha256(body["apiKey"])
    assert runtime.wait_for_status(order_id, {"waiting"}, key=body["apiKey"])["status"] == "waiting"  # the client's
    listed = runtime.get("/api/keys", key=body["apiKey"])
    assert body["apiKey"] not in listed.text and caller not in listed.text  # ids only, never a key
    views = {k["keyId"]: k for k in listed.json()["keys"]}
    assert list(views) == [body["keyId"], sha256(caller)]  # newest first
    assert views[body["keyId"]] == {"keyId": body["keyId"], "label": "ci runner", "ordersPerMinute": 100_000,
                                    "maxInFlight": 10_000, "createdAt": body["createdAt"], "revokedAt": None,
                                    "current": True}
    assert views[sha256(caller)]["current"] is False
    assert runtime.delete(f"/api/orders/{order_id}", key=body["apiKey"]).status_code == 200


async def test_a_new_key_may_not_be_stronger_than_the_key_asking(runtime):
    client = unique("capped")
    caller = await runtime.create_key(client, orders_per_minute=60, max_in_flight=5)
    for body, field in (({"ordersPerMinute": 61}, "ordersPerMinute"), ({"maxInFlight": 6}, "maxInFlight"),
                        ({"ordersPerMinute": 10, "maxInFlight": 50}, "maxInFlight")):
        refused = make_key(runtime, caller, body)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
        assert "at most" in refused.json()["error"]
    same = make_key(runtime, caller, {"ordersPerMinute": 60, "maxInFlight": 5}).json()
    inherited = make_key(runtime, caller).json()  # limits left out: the asking key's, not the engine's defaults
    assert (same["ordersPerMinute"], same["maxInFlight"]) == (inherited["ordersPerMinute"], inherited["maxInFlight"]) \
        == (60, 5)
    unlimited = await runtime.create_key(unique("defaults"))  # no limits of its own: the engine's defaults cap it
    over = make_key(runtime, unlimited, {"ordersPerMinute": 100_001})
    assert over.status_code == 422 and over.json()["field"] == "ordersPerMinute"
    assert make_key(runtime, unlimited, {"ordersPerMinute": 100_000}).status_code == 201
    assert await active_keys(runtime, client) == 3  # refusals made nothing


async def test_a_new_keys_limits_are_the_ones_admission_applies(runtime):
    caller = await runtime.create_key(unique("slow-key"))
    narrow = make_key(runtime, caller, {"ordersPerMinute": 2}).json()["apiKey"]
    placed = [runtime.post_order(RESTING, {"X-API-Key": narrow}) for _ in range(3)]
    assert [p.status_code for p in placed] == [201, 201, 429], [p.text for p in placed]
    for answer in placed[:2]:
        runtime.delete(f"/api/orders/{answer.json()['orderId']}", key=caller)


async def test_another_clients_keys_are_as_invisible_as_unknown_ones(runtime):
    alice, bob = await runtime.create_key(unique("alice")), await runtime.create_key(unique("bob"))
    alices_second = make_key(runtime, alice).json()
    assert not set(key_ids(runtime, bob)) & {sha256(alice), alices_second["keyId"]}
    unknown = runtime.delete(f"/api/keys/{uuid.uuid4().hex * 2}", key=bob)
    for key_id in (sha256(alice), alices_second["keyId"], alices_second["keyId"].upper()):
        refused = runtime.delete(f"/api/keys/{key_id}", key=bob)
        assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json()) == \
            (404, {"error": "key not found", "field": "keyId"})
    for garbage in ("nope", "0" * 63, alice):  # not an id (a key itself is never taken in a URL)
        assert runtime.delete(f"/api/keys/{garbage}", key=alice).status_code == 404
    assert runtime.get("/api/keys", key=alice).status_code == 200  # every one of alice's keys still works
    assert runtime.get("/api/keys", key=alices_second["apiKey"]).status_code == 200


async def test_revoking_a_key_refuses_it_everywhere_and_answers_again_the_same(runtime):
    client = unique("revoker")
    keeper = await runtime.create_key(client)
    doomed = make_key(runtime, keeper).json()
    assert runtime.get("/api/keys", key=doomed["apiKey"]).status_code == 200  # in this process's key cache
    revoked = runtime.delete(f"/api/keys/{doomed['keyId'].upper()}", key=keeper)
    since = time.monotonic()
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert body == {"keyId": doomed["keyId"], "revoked": True, "revokedAt": body["revokedAt"], "announced": True}
    await _refused_within_a_second(runtime, "/api/keys", doomed["apiKey"], since)
    again = runtime.delete(f"/api/keys/{doomed['keyId']}", key=keeper)
    assert again.status_code == 200 and again.json() == body  # the first revocation's time
    listed = {k["keyId"]: k for k in runtime.get("/api/keys", key=keeper).json()["keys"]}
    assert listed[doomed["keyId"]]["revokedAt"] == body["revokedAt"] and listed[sha256(keeper)]["revokedAt"] is None


async def test_a_key_may_revoke_itself_and_its_answer_is_its_last(runtime):
    key = await runtime.create_key(unique("self"))
    answer = runtime.delete(f"/api/keys/{sha256(key)}", key=key)
    assert answer.status_code == 200 and answer.json()["revoked"] is True
    await _refused_within_a_second(runtime, "/api/keys", key, time.monotonic())
    refused = runtime.delete(f"/api/keys/{sha256(key)}", key=key)
    assert refused.status_code == 401 and refused.json()["field"] == "X-API-Key"


async def test_revoking_over_http_closes_the_keys_open_sockets_within_a_second(runtime):
    """An order socket and a stream socket of one key; another key of the same client revokes it:
    both sockets get the 401 error naming X-API-Key and close 1008 within a second."""
    client = unique("sockets")
    keeper = await runtime.create_key(client)
    doomed = make_key(runtime, keeper).json()["apiKey"]
    resting = runtime.post_order(RESTING, {"X-API-Key": doomed}).json()["orderId"]
    assert runtime.wait_for_status(resting, {"waiting"}, key=keeper)["status"] == "waiting"
    async with contextlib.AsyncExitStack() as opened:
        orders = await opened.enter_async_context(connect(f"{runtime.ws_base}/api/orders/execute", api_key=doomed))
        stream = await opened.enter_async_context(connect(f"{runtime.ws_base}/api/orders/{resting}/stream",
                                                          api_key=doomed))
        assert [(await receive_json(stream))["status"] for _ in range(2)] == ["pending", "waiting"]
        assert runtime.delete(f"/api/keys/{sha256(doomed)}", key=keeper).status_code == 200
        revoked = time.monotonic()

        async def refusal(socket) -> tuple[dict, int | None, float]:
            message = await receive_json(socket, timeout=5)
            return message, await close_code(socket), time.monotonic()

        for message, code, at in await asyncio.gather(refusal(orders), refusal(stream)):
            assert message["type"] == "error" and message["status"] == 401 and message["field"] == "X-API-Key"
            assert code == 1008 and at - revoked < 1.0, (code, at - revoked)
    assert runtime.delete(f"/api/orders/{resting}", key=keeper).status_code == 200


async def test_a_client_holds_at_most_a_hundred_active_keys(runtime):
    client = unique("hoarder")
    caller = await runtime.create_key(client)
    answers = await asyncio.gather(*(asyncio.to_thread(make_key, runtime, caller) for _ in range(MAX_ACTIVE_KEYS + 5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * (MAX_ACTIVE_KEYS - 1) + [409] * 6  # the caller's own key is one of the hundred
    assert await active_keys(runtime, client) == MAX_ACTIVE_KEYS  # concurrent requests did not pass the count
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["field"] is None and "revoke one" in refused["error"]
    one = next(a for a in answers if a.status_code == 201).json()["keyId"]
    assert runtime.delete(f"/api/keys/{one}", key=caller).status_code == 200
    assert make_key(runtime, caller).status_code == 201


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "dex_not-a-key"}], ids=["none", "unknown"])
def test_the_key_routes_need_a_valid_key(runtime, headers):
    for method, path in (("POST", "/api/keys"), ("GET", "/api/keys"), ("DELETE", f"/api/keys/{'a' * 64}")):
        answer = httpx.request(method, f"{runtime.base}{path}", content=json.dumps({}), headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.json()["field"] == "X-API-Key", (method, answer.text)
