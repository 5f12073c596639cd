"""The running runtime as a client meets it: API keys and revocation, isolation, limits, idempotency, sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import websockets
from redis.asyncio import Redis

from local_runtime.auth import KeySessions, KeyWatch, Revocations
from shared.adapters.postgres.api_keys import PgApiKeys, hash_key
from tests.conftest import REDIS_URL
from tests.e2e.runtime import Runtime, close_code, connect, private_runtime, receive_json, receive_until_terminal

SELL = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.25"}
RESTING = {"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "0.5",
           "limitPrice": "5000", "expiresAt": 3600}
"""A sell limit far above any price these tests reach: it rests (`waiting`) until cancelled."""
FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def revoke(runtime: Runtime, key: str) -> None:
    """Revoke `key` as an operator does: `python -m local_runtime apikey revoke KEY`, in the runtime's
    environment (its database and Redis namespace)."""
    process = await asyncio.create_subprocess_exec(
        runtime.python, "-m", "local_runtime", "apikey", "revoke", key, cwd=runtime.root, env=runtime.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0 and out.decode().strip() == "revoked", (out, err)
    assert not err.strip(), err  # no warning: the web processes were told over Redis


async def stored_orders(runtime: Runtime, client_id: str) -> int:
    connection = await asyncpg.connect(runtime.env["DATABASE_URL"])
    try:
        return await connection.fetchval("SELECT count(*) FROM orders WHERE client_id = $1", client_id)
    finally:
        await connection.close()


def statuses(events: list[dict]) -> list[str]:
    return [e["status"] for e in events]


# Three runtimes at most: the module's zero-delay `runtime` (tests/e2e/conftest.py), a second web process on
# the same database and Redis namespace (`second_web`, for limits shared across processes), and `slow` (orders
# take ~2 s, small WebSocket limits) where timing matters.


@pytest.fixture(scope="module")
def second_web(runtime):
    """Another web process (no workers) on the runtime's database and Redis namespace."""
    web = Runtime(dict(runtime.env_overrides), args=("--workers", "none")).start()
    yield web
    web.stop()


@pytest.fixture(scope="module")
def slow():
    """Orders take ~2 s (confirmation delay), everything else instant; at most 2 order sockets
    per client; a socket idle for 1 s is closed."""
    with private_runtime(
        DEX_SIM_DRIFT_INTERVAL_MS="0", DEX_SIM_QUOTE_LATENCY_MS_RAYDIUM="0", DEX_SIM_QUOTE_LATENCY_MS_METEORA="0",
        DEX_SIM_QUOTE_JITTER_MS="0", DEX_SIM_BUILD_DELAY_MS="0", DEX_SIM_SUBMIT_DELAY_MS="0",
        DEX_SIM_CONFIRM_DELAY_MS="2000", DEX_SIM_CONFIRM_JITTER_MS="0", DEX_EXPIRY_POLL_MS="100",
        DEX_WS_MAX_SOCKETS_PER_CLIENT="2", DEX_WS_IDLE_TIMEOUT_S="1",
    ) as server:
        yield server


# --- keys ----------------------------------------------------------------------------------------

def _calls() -> list[tuple[str, str, bytes | None]]:
    some_id = str(uuid.uuid4())
    return [
        ("POST", "/api/orders/execute", json.dumps(SELL).encode()),
        ("GET", f"/api/orders/{some_id}", None),
        ("GET", f"/api/orders/{some_id}/events?after=0", None),
        ("DELETE", f"/api/orders/{some_id}", None),
        ("GET", "/api/quote?inputMint=SOL&outputMint=USDC&amount=1", None),
        ("POST", "/api/sim/prices", json.dumps({"baseAsset": "SOL", "quoteAsset": "USDC", "price": "150"}).encode()),
    ]


def _assert_401(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert set(body) == {"error", "field"} and body["field"] == "X-API-Key" and body["error"]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "dex_not-a-key"},
                                     {"X-API-Key": "x" * 500}], ids=["none", "empty", "unknown", "overlong"])
async def test_every_api_route_refuses_a_missing_or_unknown_key(runtime, headers):
    before = await runtime.count_orders()
    for method, path, body in _calls():
        _assert_401(httpx.request(method, f"{runtime.base}{path}", content=body, headers=headers, timeout=10))
    assert await runtime.count_orders() == before  # nothing was stored
    assert httpx.get(f"{runtime.base}/healthz", timeout=10).status_code == 200  # health needs no key


async def _refused_within_a_second(web: Runtime, path: str, key: str, since: float) -> None:
    """Poll until `web` answers 401 to the key: at most 1 s after `since`."""
    while web.get(path, key=key).status_code != 401:
        assert time.monotonic() - since < 1.0, f"{web.base} still accepts the key 1 s after its revocation"
        await asyncio.sleep(0.02)


async def _refused_on_socket(url: str, key: str) -> None:
    async with connect(url, api_key=key) as socket:
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 401 and refusal["field"] == "X-API-Key", refusal
        assert await close_code(socket) == 1008


async def test_every_way_in_refuses_a_revoked_key_at_once_in_every_web_process(runtime, second_web):
    """The contract: once revoked, a key gets 401 from every HTTP route and both sockets, in a process
    that has it cached (it served the key a moment before) as in one that never saw it."""
    client = unique("revoked")
    unused, used = await runtime.create_key(client), await runtime.create_key(client)
    order_id = runtime.post_order(RESTING, {"X-API-Key": used}).json()["orderId"]
    for web in (runtime, second_web):  # `used` is now in both processes' key caches
        assert web.get(f"/api/orders/{order_id}", key=used).status_code == 200
    await revoke(runtime, unused)
    await revoke(runtime, used)
    revoked = time.monotonic()
    for web in (runtime, second_web):
        await _refused_within_a_second(web, f"/api/orders/{order_id}", used, revoked)
        for key in (unused, used):
            for method, path, body in [*_calls(), ("GET", f"/api/orders/{order_id}/events?after=0", None),
                                       ("DELETE", f"/api/orders/{order_id}", None)]:
                _assert_401(httpx.request(method, f"{web.base}{path}", content=body, headers={"X-API-Key": key},
                                          timeout=10))
            for path in ("/api/orders/execute", f"/api/orders/{order_id}/stream"):
                await _refused_on_socket(f"{web.ws_base}{path}", key)
    assert await stored_orders(runtime, client) == 1
    assert runtime.get(f"/api/orders/{order_id}").status_code == 404  # still another client's (and resting)


async def test_revoking_a_key_closes_its_open_sockets_in_every_web_process_within_a_second(runtime, second_web):
    """Two web processes, an order socket and a stream socket on each, a key revoked with the real
    CLI: within 1 s every socket gets the 401 error and close 1008, and HTTP answers 401 in both.
    Meanwhile one socket keeps sending orders: none is taken later than 1 s after the revocation."""
    client = unique("revoke-live")
    key = await runtime.create_key(client, orders_per_minute=100_000, max_in_flight=10_000)
    resting = runtime.post_order(RESTING, {"X-API-Key": key}).json()["orderId"]
    assert runtime.wait_for_status(resting, {"waiting"}, key=key)["status"] == "waiting"
    async with contextlib.AsyncExitStack() as opened:
        await _revoke_under_open_sockets(runtime, second_web, opened, client, key, resting)


async def _revoke_under_open_sockets(runtime, second_web, opened, client, key, resting) -> None:
    sockets = []
    for web in (runtime, second_web):
        order_socket = await opened.enter_async_context(connect(f"{web.ws_base}/api/orders/execute", api_key=key))
        await order_socket.send(json.dumps(SELL))
        assert statuses(await receive_until_terminal(order_socket)) == FLOW  # it works, and is open
        stream_socket = await opened.enter_async_context(connect(f"{web.ws_base}/api/orders/{resting}/stream",
                                                                 api_key=key))
        assert statuses([await receive_json(stream_socket) for _ in range(2)]) == ["pending", "waiting"]
        sockets += [order_socket, stream_socket]
    pumping = sockets[2]  # the second process's order socket

    async def pump() -> None:
        """Send orders until the socket is closed (events and the refusal are read by `ending`)."""
        try:
            while True:
                await pumping.send(json.dumps(SELL))
                await asyncio.sleep(0.02)
        except websockets.ConnectionClosed:
            pass

    async def ending(socket) -> tuple[dict | None, int | None, float]:
        """The last message before the close, the close code, and when the close came."""
        last = None
        try:
            while True:
                last = json.loads(await asyncio.wait_for(socket.recv(), 10))
        except websockets.ConnectionClosed as closed:
            return last, (None if closed.rcvd is None else closed.rcvd.code), time.monotonic()

    endings = [asyncio.create_task(ending(socket)) for socket in sockets]
    pumper = asyncio.create_task(pump())
    await asyncio.sleep(0.2)  # orders are flowing on the pumping socket
    await revoke(runtime, key)
    revoked = time.monotonic()  # the CLI has returned: PostgreSQL has it, and it was published
    for web in (runtime, second_web):
        await _refused_within_a_second(web, f"/api/orders/{resting}", key, revoked)
    results = await asyncio.wait_for(asyncio.gather(*endings), 5)
    await asyncio.wait_for(pumper, 5)
    for last, code, closed_at in results:
        assert last is not None and last["type"] == "error", last
        assert last["status"] == 401 and last["field"] == "X-API-Key" and last["error"], last
        assert code == 1008
        assert closed_at - revoked < 1.0, f"closed {closed_at - revoked:.2f} s after the revocation"
    for web in (runtime, second_web):
        _assert_401(web.post_order(SELL, {"X-API-Key": key}))
    connection = await asyncpg.connect(runtime.env["DATABASE_URL"])
    try:
        revoked_at = await connection.fetchval("SELECT revoked_at FROM api_keys WHERE key_hash = $1", hash_key(key))
        latest = await connection.fetchval("SELECT max(created_at) FROM orders WHERE client_id = $1", client)
        taken = await connection.fetchval("SELECT count(*) FROM orders WHERE client_id = $1", client)
    finally:
        await connection.close()
    assert taken > 3, "the pumping socket placed no order before the revocation: the race was not run"
    assert (latest - revoked_at).total_seconds() < 1.0, (latest, revoked_at)


async def test_revocations_lost_while_the_subscription_was_down_are_caught_up_from_postgresql(engine):
    """Pub/sub drops what is published while a subscriber reconnects: after the hub's connection is
    back, the key cache is emptied and every open socket's key is read again from PostgreSQL."""
    watch = await KeyWatch.start(engine.keys, engine.redis, engine.settings.namespace, engine.ctx.ids.home)
    keys, sessions, hub = watch.keys, watch.sessions, watch.hub
    silent = PgApiKeys(engine.pool)  # revokes without telling anyone: the lost message
    try:
        lost, kept, later = [await keys.create(name, datetime.now(UTC)) for name in ("lost", "kept", "later")]
        with sessions.hold(lost) as lost_session, sessions.hold(kept) as kept_session, \
                sessions.hold(later) as later_session:
            assert await keys.client(lost) is not None  # cached
            assert (await silent.revoke(lost, datetime.now(UTC))).revoked
            assert await keys.client(lost) is not None  # nobody told this process
            address = "%s:%s" % hub._pubsub.connection._writer.get_extra_info("sockname")[:2]
            assert await engine.redis.execute_command("CLIENT", "KILL", "ADDR", address)
            deadline = time.monotonic() + 5
            while not lost_session.revoked:
                assert time.monotonic() < deadline, "the open socket of the key revoked meanwhile was not refused"
                await asyncio.sleep(0.02)
            assert await keys.client(lost) is None and not kept_session.revoked
            # The subscription works again: a revocation announced now arrives at once.
            announced = await keys.revoke(later, datetime.now(UTC))
            assert announced.revoked and announced.announced
            deadline = time.monotonic() + 1
            while not later_session.revoked:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert not kept_session.revoked and await keys.client(kept) is not None
    finally:
        await watch.stop()


async def test_a_revocation_never_announced_still_refuses_open_sockets_within_the_sweep(engine):
    """Redis unreachable from where the key was revoked: no message at all. Each process re-reads its
    open sockets' keys from PostgreSQL every CACHE_TTL_S (here 0.2 s), one query for all of them."""
    keys = PgApiKeys(engine.pool)
    sessions = KeySessions()
    revocations = Revocations(keys, sessions, sweep_interval_s=0.2)
    revocations.start()
    try:
        gone, kept = [await keys.create(name, datetime.now(UTC)) for name in ("gone", "kept")]
        with sessions.hold(gone) as gone_session, sessions.hold(gone) as again, sessions.hold(kept) as kept_session:
            revocation = await PgApiKeys(engine.pool).revoke(gone, datetime.now(UTC))
            assert revocation.revoked and not revocation.announced
            deadline = time.monotonic() + 2
            while not (gone_session.revoked and again.revoked):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # another sweep or two
            assert not kept_session.revoked
        assert sessions.digests() == []  # closed sockets leave the registry
    finally:
        await revocations.stop()


@pytest.mark.parametrize("path", ["/api/orders/execute", "/api/orders/{order}/stream"])
async def test_websockets_refuse_without_a_valid_key_with_401_then_close_1008(runtime, path):
    client = unique("wsrev")
    revoked = await runtime.create_key(client)
    await revoke(runtime, revoked)
    order_id = runtime.post_order(SELL).json()["orderId"]
    url = f"{runtime.ws_base}{path.format(order=order_id)}"
    for key in (None, "dex_not-a-key", revoked):
        async with connect(url, api_key=key) as socket:
            refusal = await receive_json(socket)
            assert refusal["type"] == "error" and refusal["status"] == 401 and refusal["field"] == "X-API-Key"
            assert await close_code(socket) == 1008
    async with connect(f"{url}?apiKey=dex_not-a-key", api_key=None) as socket:
        assert (await receive_json(socket))["status"] == 401
        assert await close_code(socket) == 1008


async def test_websockets_take_the_key_as_apikey_in_the_query(runtime):
    key = await runtime.create_key(unique("query"))
    async with connect(f"{runtime.ws_base}/api/orders/execute?apiKey={key}", api_key=None) as socket:
        await socket.send(json.dumps(SELL))
        events = await receive_until_terminal(socket)
    assert statuses(events) == FLOW
    order_id = events[0]["orderId"]
    async with connect(f"{runtime.ws_base}/api/orders/{order_id}/stream?after=2&apiKey={key}", api_key=None) as socket:
        assert await receive_until_terminal(socket) == events[2:]
    # The order belongs to the key's client, not to the development key's.
    assert runtime.get(f"/api/orders/{order_id}").status_code == 404
    assert runtime.get(f"/api/orders/{order_id}", key=key).json()["status"] == "confirmed"


# --- isolation -----------------------------------------------------------------------------------

async def test_another_clients_order_is_exactly_as_invisible_as_an_unknown_one(runtime):
    alice, bob = await runtime.create_key(unique("alice")), await runtime.create_key(unique("bob"))
    market = runtime.post_order(SELL, {"X-API-Key": alice}).json()["orderId"]
    resting = runtime.post_order(RESTING, {"X-API-Key": alice}).json()["orderId"]
    assert runtime.wait_for_status(market, {"confirmed"}, key=alice)["status"] == "confirmed"
    assert runtime.wait_for_status(resting, {"waiting"}, key=alice)["status"] == "waiting"
    unknown = str(uuid.uuid4())

    for order_id in (market, resting):
        for template in ("/api/orders/{}", "/api/orders/{}/events", "/api/orders/{}/events?after=1"):
            assert runtime.get(template.format(order_id), key=alice).status_code == 200
            hidden = runtime.get(template.format(order_id), key=bob)
            absent = runtime.get(template.format(unknown), key=bob)
            assert hidden.status_code == absent.status_code == 404
            assert hidden.json() == absent.json() and hidden.json()["field"] == "orderId"
        hidden, absent = runtime.delete(f"/api/orders/{order_id}", key=bob), runtime.delete(f"/api/orders/{unknown}", key=bob)
        assert hidden.status_code == absent.status_code == 404 and hidden.json() == absent.json()

        answers = []
        for target in (order_id, unknown):
            async with connect(f"{runtime.ws_base}/api/orders/{target}/stream?after=0", api_key=bob) as socket:
                answers.append(await receive_json(socket))
                assert await close_code(socket) == 1008
        assert answers[0] == answers[1] and answers[0]["status"] == 404 and answers[0]["field"] == "orderId"

    async with connect(f"{runtime.ws_base}/api/orders/execute", api_key=bob) as socket:
        replies = []
        for target in (resting, unknown):
            await socket.send(json.dumps({"action": "cancel", "orderId": target}))
            replies.append(await receive_json(socket))
    assert replies[0] == replies[1] and replies[0]["status"] == 404

    # Bob's attempts changed nothing: Alice's order still rests, and she can cancel it.
    assert runtime.get(f"/api/orders/{resting}", key=alice).json()["status"] == "waiting"
    assert runtime.delete(f"/api/orders/{resting}", key=alice).json() == {"orderId": resting, "status": "cancelled"}


# --- rate and in-flight limits ------------------------------------------------------------------

async def test_the_rate_limit_is_counted_in_redis_and_shared_by_two_web_processes(runtime, second_web):
    client = unique("rate")
    key = await runtime.create_key(client, orders_per_minute=5, max_in_flight=100)
    auth = {"X-API-Key": key}
    idem = {**auth, "Idempotency-Key": unique("idem")}
    first = runtime.post_order(SELL, idem)
    codes = [first.status_code] + [web.post_order(SELL, auth).status_code
                                   for web in (second_web, runtime, second_web, runtime)]
    assert codes == [201] * 5  # three through one process, two through the other

    for web in (second_web, runtime):  # the 6th, wherever it arrives
        refused = web.post_order(SELL, auth)
        assert refused.status_code == 429, refused.text
        retry_after = refused.headers["Retry-After"]
        assert retry_after.isdigit() and 0 < int(retry_after) <= 60
        body = refused.json()
        assert "per minute" in body["error"] and body["retryAfter"] == int(retry_after)

    async with connect(f"{second_web.ws_base}/api/orders/execute", api_key=key) as socket:
        await socket.send(json.dumps(SELL))
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 429 and 0 < refusal["retryAfter"] <= 60
        await socket.send(json.dumps(SELL))  # the socket stays usable (and still refused)
        assert (await receive_json(socket))["status"] == 429

    # A retry with the same Idempotency-Key is not a new order: it gets the original even now.
    again = second_web.post_order(SELL, idem)
    assert again.status_code == 200 and again.json()["orderId"] == first.json()["orderId"]

    redis = Redis.from_url(REDIS_URL)
    try:
        counter = f"{runtime.env['DEX_NAMESPACE']}:rate:{client}"
        assert int(await redis.get(counter)) >= 6 and 0 < await redis.pttl(counter) <= 60_000
    finally:
        await redis.aclose()
    assert await stored_orders(runtime, client) == 5
    other = await runtime.create_key(unique("unlimited"))
    assert second_web.post_order(SELL, {"X-API-Key": other}).status_code == 201  # limits are per client


async def test_refused_orders_do_not_hold_in_flight_slots(runtime):
    client = unique("refused")
    key = await runtime.create_key(client, orders_per_minute=100, max_in_flight=1)
    for bad in ({**SELL, "amount": "20000.5"}, {**SELL, "baseAsset": "NOPE"}, {**SELL, "amount": "-1"}):
        assert runtime.post_order(bad, {"X-API-Key": key}).status_code == 422
    accepted = runtime.post_order(SELL, {"X-API-Key": key})
    assert accepted.status_code == 201, accepted.text
    assert await stored_orders(runtime, client) == 1


async def test_a_third_order_in_flight_is_refused_until_the_first_two_finish(slow):
    client = unique("flight")
    key = await slow.create_key(client, orders_per_minute=100, max_in_flight=2)
    auth = {"X-API-Key": key}
    first, second = slow.post_order(SELL, auth), slow.post_order(SELL, auth)
    assert (first.status_code, second.status_code) == (201, 201)
    third = slow.post_order(SELL, auth)
    assert third.status_code == 429, third.text
    assert "in flight" in third.json()["error"] and int(third.headers["Retry-After"]) >= 1
    async with connect(f"{slow.ws_base}/api/orders/execute", api_key=key) as socket:
        await socket.send(json.dumps(SELL))
        refusal = await receive_json(socket)
        assert refusal["status"] == 429 and refusal["retryAfter"] >= 1
    for answer in (first, second):  # still executing when the third was refused
        order = slow.wait_for_status(answer.json()["orderId"], {"confirmed", "failed"}, seconds=15, key=key)
        assert order["status"] == "confirmed"
    assert slow.post_order(SELL, auth).status_code == 201  # slots freed by the terminal events
    assert await stored_orders(slow, client) == 3


async def test_resting_limit_orders_do_not_count_as_in_flight(slow):
    client = unique("resting")
    key = await slow.create_key(client, orders_per_minute=100, max_in_flight=2)
    auth = {"X-API-Key": key}
    resting = []
    for _ in range(3):  # more resting orders than the in-flight limit
        answer = slow.post_order(RESTING, auth)
        assert answer.status_code == 201, answer.text
        resting.append(answer.json()["orderId"])
        assert slow.wait_for_status(resting[-1], {"waiting"}, key=key)["status"] == "waiting"
    markets = [slow.post_order(SELL, auth) for _ in range(3)]
    assert [m.status_code for m in markets] == [201, 201, 429]  # two slots, all free while the limits rest
    for order_id in resting:
        assert slow.delete(f"/api/orders/{order_id}", key=key).status_code == 200


# --- idempotency ---------------------------------------------------------------------------------

def test_a_repeated_idempotency_key_returns_the_original_and_a_changed_body_is_409(runtime):
    idem = {"Idempotency-Key": unique("idem")}
    first = runtime.post_order(SELL, idem)
    assert first.status_code == 201
    order_id = first.json()["orderId"]
    assert runtime.wait_for_status(order_id, {"confirmed"})["status"] == "confirmed"
    again = runtime.post_order(SELL, idem)
    assert again.status_code == 200
    body = again.json()
    assert body["repeat"] is True and body["orderId"] == order_id and body["status"] == "confirmed"
    assert statuses(body["events"]) == FLOW
    assert body["events"] == runtime.get(f"/api/orders/{order_id}/events").json()
    for changed in ({**SELL, "amount": "0.26"}, {**SELL, "slippageBps": 75}, {**SELL, "side": "buy", "amount": "10"}):
        conflict = runtime.post_order(changed, idem)
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["field"] == "Idempotency-Key" and "Idempotency-Key" in conflict.json()["error"]


async def test_a_client_order_id_over_http_and_websocket_names_one_order(runtime):
    order = {**SELL, "clientOrderId": unique("coid")}
    before = await runtime.count_orders()
    created = runtime.post_order(order)
    assert created.status_code == 201
    order_id = created.json()["orderId"]
    assert runtime.wait_for_status(order_id, {"confirmed"})["status"] == "confirmed"
    repeat = runtime.post_order(order)
    assert repeat.status_code == 200 and repeat.json()["orderId"] == order_id and repeat.json()["repeat"] is True
    conflict = runtime.post_order({**order, "amount": "0.3"})
    assert conflict.status_code == 409 and conflict.json()["field"] == "clientOrderId"
    # The same order written another way is the same order, not a conflict: the parsed order is compared.
    for same in ({**order, "amount": order["amount"] + "0"}, {**order, "baseAsset": "sol"},
                 {**order, "baseAsset": "So11111111111111111111111111111111111111112", "slippageBps": 50}):
        again = runtime.post_order(same)
        assert again.status_code == 200 and again.json()["orderId"] == order_id, (same, again.text)

    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(order))  # the same clientOrderId, now on a socket: a replay from seq 1
        replay = await receive_until_terminal(socket)
        await socket.send(json.dumps({**order, "amount": "0.3"}))
        refusal = await receive_json(socket)
        await socket.send(json.dumps(order))  # and again: still a replay, the 409 did not break the socket
        replay_again = await receive_until_terminal(socket)
    assert replay == replay_again == runtime.get(f"/api/orders/{order_id}/events").json()
    assert [e["seq"] for e in replay] == [1, 2, 3, 4, 5, 6] and {e["orderId"] for e in replay} == {order_id}
    assert refusal["type"] == "error" and refusal["status"] == 409 and refusal["field"] == "clientOrderId"
    assert await runtime.count_orders() == before + 1


async def test_a_client_order_id_resubmitted_on_a_socket_replays_without_a_new_order(runtime):
    order = {**SELL, "clientOrderId": unique("ws")}
    before = await runtime.count_orders()
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(order))
        first = await receive_until_terminal(socket)
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:  # a new socket: the same order
        await socket.send(json.dumps(order))
        replay = await receive_until_terminal(socket)
    assert statuses(first) == FLOW and replay == first
    assert await runtime.count_orders() == before + 1


async def test_clients_use_the_same_keys_independently(runtime):
    shared_key, shared_id = unique("same-idem"), unique("same-coid")
    orders = []
    for name in ("dora", "eve"):
        key = await runtime.create_key(unique(name))
        by_header = runtime.post_order(SELL, {"X-API-Key": key, "Idempotency-Key": shared_key})
        by_body = runtime.post_order({**SELL, "clientOrderId": shared_id}, {"X-API-Key": key})
        assert by_header.status_code == by_body.status_code == 201
        orders += [by_header.json()["orderId"], by_body.json()["orderId"]]
        # Each client's own repeat still finds its own order.
        again = runtime.post_order(SELL, {"X-API-Key": key, "Idempotency-Key": shared_key})
        assert again.status_code == 200 and again.json()["orderId"] == by_header.json()["orderId"]
    assert len(set(orders)) == 4


async def test_concurrent_submissions_with_one_idempotency_key_make_one_order(runtime):
    client = unique("burst")
    key = await runtime.create_key(client, orders_per_minute=1000, max_in_flight=1000)
    headers = {"X-API-Key": key, "Idempotency-Key": unique("burst")}
    async with httpx.AsyncClient(base_url=runtime.base, timeout=10) as http:
        answers = await asyncio.gather(*(http.post("/api/orders/execute", json=SELL, headers=headers)
                                         for _ in range(12)))
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
    assert len({a.json()["orderId"] for a in answers}) == 1
    assert await stored_orders(runtime, client) == 1
    order_id = answers[0].json()["orderId"]
    assert runtime.wait_for_status(order_id, {"confirmed"}, key=key)["status"] == "confirmed"
    assert [e["seq"] for e in runtime.get(f"/api/orders/{order_id}/events", key=key).json()] == [1, 2, 3, 4, 5, 6]


async def test_a_duplicate_racing_the_original_is_answered_as_a_repeat(engine):
    """Deterministic version of the race above, in process: the duplicate's idempotency check runs
    before the original is stored, its admission waits until the original is acknowledged."""
    from functions.desk import OrderDesk
    from shared.adapters.redis.admission import RedisClientLimits
    from shared.domain.clients import ApiClient

    class HeldLimits(RedisClientLimits):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.held, self.go, self.calls = asyncio.Event(), asyncio.Event(), 0

        async def admit(self, *args):
            self.calls += 1
            if self.calls == 1:  # the duplicate: past its idempotency check, not yet admitted
                self.held.set()
                await self.go.wait()
            return await super().admit(*args)

    limits = HeldLimits(engine.redis, engine.settings.namespace)
    desk = OrderDesk(engine.ctx, engine.queues, limits)
    client = ApiClient("racer", orders_per_minute=1000, max_in_flight=1000)
    body = json.dumps(SELL).encode()
    duplicate = asyncio.create_task(desk.submit(body, client, "race-key"))
    await asyncio.wait_for(limits.held.wait(), 5)
    original = await desk.submit(body, client, "race-key")
    assert not original.repeat
    limits.go.set()
    repeat = await asyncio.wait_for(duplicate, 5)
    assert repeat.order_id == original.order_id
    assert await engine.pool.fetchval("SELECT count(*) FROM orders") == 1
    assert repeat.repeat, "the duplicate was acknowledged as a new order (HTTP 201), not as a repeat (200)"


# --- sizes -----------------------------------------------------------------------------------------

async def test_orders_over_the_per_asset_maximum_are_refused_naming_amount(runtime):
    client = unique("sizes")
    key = await runtime.create_key(client)
    auth = {"X-API-Key": key}
    for too_big in ({**SELL, "amount": "20000.000000001"}, {**SELL, "amount": "1000000"},
                    {**SELL, "side": "buy", "amount": "5000000.000001"},  # a buy sells USDC: 5,000,000 max
                    {**RESTING, "amount": "20001"}):
        answer = runtime.post_order(too_big, auth)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "amount" and "largest order" in answer.json()["error"]
    async with connect(f"{runtime.ws_base}/api/orders/execute", api_key=key) as socket:
        await socket.send(json.dumps({**SELL, "amount": "20001"}))
        refusal = await receive_json(socket)
        assert refusal["status"] == 422 and refusal["field"] == "amount"
    assert await stored_orders(runtime, client) == 0
    at_most = runtime.post_order({**RESTING, "amount": "20000"}, auth)  # exactly the maximum is taken
    assert at_most.status_code == 201, at_most.text
    assert runtime.wait_for_status(at_most.json()["orderId"], {"waiting"}, key=key)["status"] == "waiting"
    assert runtime.delete(f"/api/orders/{at_most.json()['orderId']}", key=key).status_code == 200


# --- WebSocket message limits ----------------------------------------------------------------------

def padded(order: dict, size: int) -> str:
    """`order` as JSON padded with whitespace to exactly `size` bytes (UTF-8)."""
    text = json.dumps(order, ensure_ascii=False)
    missing = size - len(text.encode())
    assert missing >= 0
    return text[:-1] + " " * missing + "}"


async def test_a_message_over_16_kib_gets_413_and_the_socket_stays_usable(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(padded(SELL, 16_385))
        refusal = await receive_json(socket)
        assert refusal["type"] == "error" and refusal["status"] == 413 and "16384" in refusal["error"]
        # 4,100 characters but 16,400 bytes: the limit is in bytes.
        await socket.send(json.dumps({**SELL, "pad": "😀" * 4_100}, ensure_ascii=False))
        assert (await receive_json(socket))["status"] == 413
        # Exactly the limit, with multi-byte characters in it, is a valid order.
        await socket.send(padded({**SELL, "clientOrderId": "é" * 64 + unique("x")}, 16_384))
        events = await receive_until_terminal(socket)
        assert statuses(events) == FLOW
        await socket.send(json.dumps(SELL))
        assert statuses(await receive_until_terminal(socket)) == FLOW


async def test_a_frame_over_64_kib_closes_that_socket_with_1009_and_nothing_else(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as bystander:
        async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
            await socket.send(json.dumps({**SELL, "pad": "y" * 200_000}))
            assert await close_code(socket) == 1009
        await bystander.send(json.dumps(SELL))  # a socket opened before is unaffected
        assert statuses(await receive_until_terminal(bystander)) == FLOW
    async with connect(f"{runtime.ws_base}/api/orders/execute") as fresh:
        await fresh.send(json.dumps(SELL))
        assert statuses(await receive_until_terminal(fresh)) == FLOW
    assert runtime.get("/healthz").status_code == 200


async def test_a_binary_frame_is_refused_and_the_socket_stays_usable(runtime):
    async with connect(f"{runtime.ws_base}/api/orders/execute") as socket:
        await socket.send(json.dumps(SELL).encode())
        assert (await receive_json(socket))["status"] == 400
        await socket.send(json.dumps(SELL))
        assert statuses(await receive_until_terminal(socket)) == FLOW


# --- sockets per client and idle sockets (slow runtime: 2 sockets, 1 s idle) -----------------------

async def test_a_client_over_its_socket_limit_gets_429_and_close_1008(slow):
    key = await slow.create_key(unique("sockets"), orders_per_minute=100, max_in_flight=100)
    other = await slow.create_key(unique("neighbour"), orders_per_minute=100, max_in_flight=100)
    url = f"{slow.ws_base}/api/orders/execute"
    async with connect(url, api_key=key) as one, connect(url, api_key=key) as two:
        for socket in (one, two):  # an order each keeps them busy (not idle) and proves both were admitted
            await socket.send(json.dumps(SELL))
            assert (await receive_json(socket))["status"] == "pending"
        async with connect(url, api_key=key) as extra:
            refusal = await receive_json(extra)
            assert refusal["type"] == "error" and refusal["status"] == 429
            assert await close_code(extra) == 1008
        async with connect(url, api_key=other) as neighbour:  # another client is not limited by this one
            await neighbour.send(json.dumps(SELL))
            assert (await receive_json(neighbour))["status"] == "pending"
            assert statuses(await receive_until_terminal(neighbour))[-1] == "confirmed"
        assert statuses(await receive_until_terminal(one))[-1] == "confirmed"
    await both_slots_given_back(url, key)  # closed by the client


async def both_slots_given_back(url: str, key: str, seconds: float = 5) -> None:
    """Two new sockets of `key` (the slow runtime's limit) are both admitted: each answers "{}" with 422,
    not a full client's 429. Retried for a moment: a closed socket's slot is given back as soon as the
    server has seen it go."""
    deadline = time.monotonic() + seconds
    while True:
        async with connect(url, api_key=key) as one, connect(url, api_key=key) as two:
            answers = []
            for socket in (one, two):
                with contextlib.suppress(websockets.ConnectionClosed):  # a refused socket is closed at once
                    await socket.send("{}")
                answers.append((await receive_json(socket))["status"])
        if answers == [422, 422]:
            return
        assert set(answers) <= {422, 429} and time.monotonic() < deadline, answers
        await asyncio.sleep(0.1)


async def test_an_idle_socket_is_closed_with_408_but_not_while_its_order_is_in_progress(slow):
    key = await slow.create_key(unique("idle"), orders_per_minute=100, max_in_flight=100)
    url = f"{slow.ws_base}/api/orders/execute"
    async with connect(url, api_key=key) as idle, connect(url, api_key=key) as busy:
        started = time.monotonic()
        await busy.send(json.dumps(SELL))  # ~2 s to confirm: twice the idle timeout
        idle_error = await receive_json(idle, timeout=5)
        assert idle_error["type"] == "error" and idle_error["status"] == 408
        assert await close_code(idle) == 1000
        events = await receive_until_terminal(busy, timeout=10)
        assert statuses(events) == FLOW  # nothing but its events: it was not closed while the order ran
        assert time.monotonic() - started > 1.5
        # Once the order is over, the socket is idle like any other.
        assert (await receive_json(busy, timeout=5))["status"] == 408
        assert await close_code(busy) == 1000
    await both_slots_given_back(url, key)  # closed by the server for idling


async def test_messages_keep_a_socket_from_idling(slow):
    key = await slow.create_key(unique("chatty"), orders_per_minute=100, max_in_flight=100)
    async with connect(f"{slow.ws_base}/api/orders/execute", api_key=key) as socket:
        for _ in range(8):  # 2.4 s in all, never 1 s quiet
            await asyncio.sleep(0.3)
            await socket.send("{}")
            assert (await receive_json(socket))["status"] == 422
        assert (await receive_json(socket, timeout=5))["status"] == 408


# --- reconnecting --------------------------------------------------------------------------------

async def test_reconnecting_with_after_gets_each_missed_event_once(slow):
    key = await slow.create_key(unique("reconnect"), orders_per_minute=100, max_in_flight=100)
    auth = {"X-API-Key": key}
    # Reconnect after the order has finished: the missed events all come from the store.
    finished = slow.post_order(SELL, auth).json()["orderId"]
    async with connect(f"{slow.ws_base}/api/orders/{finished}/stream", api_key=key) as socket:
        head = [await receive_json(socket) for _ in range(3)]  # pending, routing, routed; then the line drops
    assert statuses(head) == FLOW[:3]
    assert slow.wait_for_status(finished, {"confirmed"}, seconds=15, key=key)["status"] == "confirmed"
    async with connect(f"{slow.ws_base}/api/orders/{finished}/stream?after={head[-1]['seq']}", api_key=key) as socket:
        tail = await receive_until_terminal(socket)
        assert await close_code(socket) == 1000
    assert [e["seq"] for e in head + tail] == [1, 2, 3, 4, 5, 6]
    assert head + tail == slow.get(f"/api/orders/{finished}/events", key=key).json()

    # Reconnect while it is still running: stored events, then live ones, none twice.
    running = slow.post_order(SELL, auth).json()["orderId"]
    async with connect(f"{slow.ws_base}/api/orders/{running}/stream", api_key=key) as socket:
        head = [await receive_json(socket) for _ in range(2)]
    async with connect(f"{slow.ws_base}/api/orders/{running}/stream?after={head[-1]['seq']}", api_key=key) as socket:
        tail = await receive_until_terminal(socket)
    assert slow.get(f"/api/orders/{running}", key=key).json()["status"] == "confirmed"
    assert [e["seq"] for e in head + tail] == [1, 2, 3, 4, 5, 6] and statuses(head + tail) == FLOW
    # After the terminal seq there is nothing more to wait for: the stream ends at once.
    async with connect(f"{slow.ws_base}/api/orders/{running}/stream?after=6", api_key=key) as socket:
        assert await close_code(socket) == 1000


async def test_two_watchers_of_one_order_each_get_the_whole_gapless_sequence(slow):
    key = await slow.create_key(unique("watchers"), orders_per_minute=100, max_in_flight=100)
    async with connect(f"{slow.ws_base}/api/orders/execute", api_key=key) as submitter:
        await submitter.send(json.dumps(SELL))
        pending = await receive_json(submitter)
        order_id = pending["orderId"]

        async def watch() -> list[dict]:
            async with connect(f"{slow.ws_base}/api/orders/{order_id}/stream?after=0", api_key=key) as socket:
                return await receive_until_terminal(socket, timeout=10)

        watched = await asyncio.gather(watch(), watch())
        submitted = [pending, *await receive_until_terminal(submitter, timeout=10)]
    for events in (*watched, submitted):
        assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6] and statuses(events) == FLOW
    assert watched[0] == watched[1] == submitted
