"""The order socket in the cloud: API Gateway's WebSocket routes on the WebSocket function, the chain
through moto's SQS as in test_sqs_chain.py, and every event posted through moto's management API
(apigatewaymanagementapi records each connection's posts). `Gateway` plays API Gateway's part: it
invokes the function for $connect, messages and $disconnect, and knows which connections are open
(moto takes a post to any id; a closed one here answers GoneException, 410, as API Gateway does)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError

from cloud import container as container_module
from cloud import ws_handler
from shared.adapters.postgres.api_keys import PgApiKeys
from shared.adapters.redis.socket_registry import SocketRegistry
from shared.domain.states import TERMINAL_STATUSES
from shared.settings import load_settings
from tests.cloud_events import ws_event
from tests.e2e.test_sqs_chain import HANDLERS, TwoContainers, cloud, sqs_records  # noqa: F401 (cloud: a fixture)

STATUSES = ["pending", "routing", "routed", "building", "submitted", "confirmed"]
MARKET = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1"}
ENVELOPE = {"orderId", "seq", "status", "ts", "data"}


class Refused(JsonRESTError):
    def __init__(self, code: str, status: int) -> None:
        super().__init__(code, f"{code} (test)")
        self.code = status


class Gateway:
    """API Gateway's side of one WebSocket stage, with moto's management API as the stage's."""

    def __init__(self, region: str) -> None:
        self.backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][region]
        self.open: set[str] = set()
        self.throttled: set[str] = set()
        self.lock = threading.Lock()
        self._post, self._delete = self.backend.post_to_connection, self.backend.delete_connection
        self.backend.post_to_connection = self.post_to_connection
        self.backend.delete_connection = self.delete_connection

    def restore(self) -> None:
        self.backend.post_to_connection, self.backend.delete_connection = self._post, self._delete

    def post_to_connection(self, data: bytes, connection_id: str) -> None:
        with self.lock:
            connection_id = unquote(connection_id)  # moto leaves the path's escapes in ("=" as %3D)
            if connection_id not in self.open:
                raise Refused("GoneException", 410)
            if connection_id in self.throttled:
                raise Refused("LimitExceededException", 429)
            self._post(data, connection_id)

    def delete_connection(self, connection_id: str) -> None:
        """Closed; what it received stays readable (moto's own would drop it)."""
        with self.lock:
            self.open.discard(unquote(connection_id))

    def connect(self, key: str | None, box=None) -> tuple[str, dict]:
        connection_id = uuid.uuid4().hex[:14] + "A="
        query = None if key is None else {"apiKey": key}
        answer = self.invoke(ws_event("CONNECT", connection_id, query=query), box)
        if answer["statusCode"] == 200:
            self.open.add(connection_id)
        return connection_id, answer

    def send(self, connection_id: str, message: dict | str, box=None, binary: bool = False) -> None:
        body = message if isinstance(message, str) else json.dumps(message)
        assert self.invoke(ws_event("MESSAGE", connection_id, body, binary=binary), box) == {"statusCode": 200}

    def disconnect(self, connection_id: str) -> None:
        self.open.discard(connection_id)
        self.invoke(ws_event("DISCONNECT", connection_id), None)

    @staticmethod
    def invoke(event: dict, box) -> dict:
        if box is None:
            return ws_handler.handler(event, None)
        return box.invoke(ws_handler.ROUTES[event["requestContext"]["eventType"]](event, box))

    def received(self, connection_id: str) -> list[dict]:
        """Every message posted to the connection, in order (moto keeps their bytes end to end)."""
        with self.lock:
            raw = self.backend.connections[connection_id].data.decode() if connection_id in \
                self.backend.connections else ""
        decoder, messages, at = json.JSONDecoder(), [], 0
        while at < len(raw):
            message, at = decoder.raw_decode(raw, at)
            messages.append(message)
        return messages

    def events(self, connection_id: str) -> list[dict]:
        return [m for m in self.received(connection_id) if "seq" in m]


@pytest.fixture
def stage(cloud, monkeypatch):  # noqa: F811 (the imported fixture)
    """The SQS chain (test_sqs_chain's moto server) with a WebSocket stage whose management API is the
    same moto server: every function built from now on posts the events it records."""
    mapping, sqs, _, key = cloud
    monkeypatch.setenv("DEX_WS_MANAGEMENT_URL", sqs.meta.endpoint_url)
    container_module.reset()
    box = container_module.container()
    gateway = Gateway(sqs.meta.region_name)
    yield mapping, gateway, box, key
    gateway.restore()


def run_step(mapping, step: str) -> int:
    """The event-source mapping of one function: its queue's messages, in batches, until empty."""
    handled, url = 0, mapping.urls[step]
    while messages := mapping.receive(url):
        answer = HANDLERS[step]({"Records": sqs_records(messages)}, None)
        mapping.settle(url, messages, {f["itemIdentifier"] for f in answer["batchItemFailures"]})
        handled += len(messages)
    return handled


def run_chain(mapping) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and mapping.poll_once():
        pass


def new_key(box, client: str, **limits) -> str:
    return box.run(PgApiKeys(box.services.pool).create(client, datetime.now(UTC), **limits))


def submit(gateway: Gateway, connection_id: str, order: dict, box=None) -> str:
    """Send the order over the `$default` (order) route; its id, from the `pending` event it is answered with."""
    gateway.send(connection_id, order, box)
    pending = [m for m in gateway.received(connection_id) if m.get("status") == "pending"]
    assert pending, gateway.received(connection_id)
    return pending[-1]["orderId"]


def registry(box) -> SocketRegistry:
    return ws_handler._sockets(box).registry


def test_an_order_sent_over_the_order_route_has_every_event_posted_to_its_connection_gapless(stage):
    mapping, gateway, _, key = stage
    connection, answer = gateway.connect(key)
    assert answer == {"statusCode": 200}
    order_id = submit(gateway, connection, MARKET)
    [pending] = gateway.received(connection)  # answered with the `pending` event, as locally
    assert set(pending) == ENVELOPE and pending["seq"] == 1 and pending["data"]["amountIn"] == 1_000_000_000
    run_chain(mapping)
    events = gateway.received(connection)
    assert [(e["seq"], e["status"]) for e in events] == list(enumerate(STATUSES, 1))
    assert all(set(e) == ENVELOPE and e["orderId"] == order_id for e in events)


def test_a_second_connection_subscribing_after_2_gets_3_to_the_end_live_or_replayed(stage):
    mapping, gateway, box, key = stage
    first, _ = gateway.connect(key)
    order_id = submit(gateway, first, MARKET)
    run_step(mapping, "quote")  # routing (seq 2) recorded by the quote function
    second, _ = gateway.connect(key)
    gateway.send(second, {"action": "subscribe", "orderId": order_id, "after": 2})
    assert gateway.received(second) == []  # nothing stored after 2 yet: it follows live
    run_chain(mapping)
    events = gateway.received(first)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert gateway.received(second) == events[2:]
    third, _ = gateway.connect(key)  # after the end: replayed from PostgreSQL
    gateway.send(third, {"action": "subscribe", "orderId": order_id, "after": "2"})
    assert gateway.received(third) == events[2:]
    fourth, _ = gateway.connect(key)  # after the end, from past the last event: nothing to send
    gateway.send(fourth, {"action": "subscribe", "orderId": order_id, "after": 6})
    assert gateway.received(fourth) == []
    namespace = box.settings.namespace  # the terminal event (or a finished order) ended every subscription:
    assert box.run(box.services.redis.scard(f"{namespace}:ws:order:{order_id}")) == 0
    assert all(box.run(box.services.redis.hlen(f"{namespace}:ws:subs:{c}")) == 0 for c in (first, second, third,
                                                                                            fourth))


def test_another_clients_connection_cannot_subscribe_and_gets_the_local_404(stage):
    mapping, gateway, box, key = stage
    alice, _ = gateway.connect(key)
    order_id = submit(gateway, alice, MARKET)
    bob, _ = gateway.connect(new_key(box, "bob"))
    gateway.send(bob, {"action": "subscribe", "orderId": order_id, "after": 0})
    run_chain(mapping)
    assert gateway.received(bob) == [{"type": "error", "error": "order not found", "field": "orderId", "status": 404}]
    gateway.send(bob, {"action": "cancel", "orderId": order_id})
    assert gateway.received(bob)[-1]["status"] == 404
    assert [e["seq"] for e in gateway.events(alice)] == [1, 2, 3, 4, 5, 6]


def test_bad_messages_get_the_local_error_messages_and_keep_the_connection(stage):
    mapping, gateway, box, key = stage
    connection, _ = gateway.connect(key)
    gateway.send(connection, "{not json")
    gateway.send(connection, {"action": "dance"})
    gateway.send(connection, {**MARKET, "amount": "-1"})
    gateway.send(connection, "x" * (box.settings.ws_max_message_bytes + 1))
    gateway.send(connection, "AAEC", binary=True)
    gateway.send(connection, {"action": "subscribe", "orderId": str(uuid.uuid4()), "after": -1})
    not_json, action, amount, large, binary, after = gateway.received(connection)
    assert not_json["type"] == "error" and not_json["status"] == 400 and not_json["field"] is None
    assert not_json["error"].startswith("body is not valid JSON")
    assert action == {"type": "error", "error": "Invalid enum value 'dance' - at `$.action`", "field": "action",
                      "status": 422}
    assert amount["status"] == 422 and amount["field"] == "amount"
    assert large["status"] == 413 and binary == {"type": "error", "error": "send orders as text frames of JSON",
                                                 "field": None, "status": 400}
    assert after["status"] == 422 and after["field"] == "after"
    assert connection in gateway.open
    order_id = submit(gateway, connection, MARKET)  # still usable
    run_chain(mapping)
    assert [e["status"] for e in gateway.events(connection)] == STATUSES
    assert {e["orderId"] for e in gateway.events(connection)} == {order_id}


def test_a_connection_that_is_gone_is_forgotten(stage):
    mapping, gateway, box, key = stage
    staying, leaving = gateway.connect(key)[0], gateway.connect(key)[0]
    order_id = submit(gateway, staying, MARKET)
    gateway.send(leaving, {"action": "subscribe", "orderId": order_id})
    gateway.open.discard(leaving)  # the client went away; no $disconnect came (yet)
    run_chain(mapping)
    assert [e["seq"] for e in gateway.events(staying)] == [1, 2, 3, 4, 5, 6]
    assert [e["seq"] for e in gateway.events(leaving)] == [1]
    assert box.run(registry(box).key_of(leaving)) is None
    assert box.run(registry(box).key_of(staying)) is not None
    assert box.run(box.services.redis.sismember(f"{box.settings.namespace}:ws:order:{order_id}", leaving)) == 0


def test_a_disconnect_forgets_the_connection_and_its_subscriptions(stage):
    mapping, gateway, box, key = stage
    connection = gateway.connect(key)[0]
    order_id = submit(gateway, connection, MARKET)
    following = f"{box.settings.namespace}:ws:order:{order_id}"
    assert box.run(box.services.redis.smembers(following)) == {connection.encode()}
    gateway.disconnect(connection)
    assert box.run(registry(box).key_of(connection)) is None
    assert box.run(box.services.redis.exists(following, f"{box.settings.namespace}:ws:subs:{connection}")) == 0
    run_chain(mapping)  # nothing is posted to it
    assert [e["seq"] for e in gateway.events(connection)] == [1]


def test_a_throttled_post_loses_nothing(stage):
    """Posts refused with 429 past botocore's retries: the next event of the order posts the missed
    one first; a missed terminal event comes with the client's subscribe with `after`."""
    mapping, gateway, _, key = stage
    connection, _ = gateway.connect(key)
    order_id = submit(gateway, connection, MARKET)
    run_step(mapping, "quote")
    gateway.throttled.add(connection)
    run_step(mapping, "route")  # routed (3) not posted
    gateway.throttled.discard(connection)
    assert [e["seq"] for e in gateway.events(connection)] == [1, 2]
    execute_step_with_throttled_terminal(mapping, gateway, connection)
    seqs = [e["seq"] for e in gateway.events(connection)]
    assert seqs == [1, 2, 3, 4, 5]  # 3 came first, with 4; 6 (confirmed) was throttled
    gateway.send(connection, {"action": "subscribe", "orderId": order_id, "after": seqs[-1]})
    assert [(e["seq"], e["status"]) for e in gateway.events(connection)] == list(enumerate(STATUSES, 1))


def execute_step_with_throttled_terminal(mapping, gateway: Gateway, connection: str) -> None:
    """Run the execute function, refusing posts to the connection from its terminal event on."""
    original = gateway._post

    def post(data: bytes, connection_id: str) -> None:
        if connection_id == connection and json.loads(data).get("status") in TERMINAL_STATUSES:
            gateway.throttled.add(connection)
            raise Refused("LimitExceededException", 429)
        original(data, connection_id)

    gateway._post = post
    try:
        run_step(mapping, "execute")
    finally:
        gateway._post = original
        gateway.throttled.discard(connection)


def test_a_revoked_key_gets_the_401_and_its_connection_is_closed(stage):
    _, gateway, box, key = stage
    _, answer = gateway.connect("dex_not-a-key")
    assert answer["statusCode"] == 401 and json.loads(answer["body"])["field"] == "X-API-Key"
    assert gateway.connect(None)[1]["statusCode"] == 401
    connection, _ = gateway.connect(key)
    box.run(PgApiKeys(box.services.pool).revoke(key, datetime.now(UTC)))
    gateway.send(connection, MARKET)
    assert gateway.received(connection) == [{"type": "error", "error": "API key revoked", "field": "X-API-Key",
                                             "status": 401}]
    assert connection not in gateway.open  # closed by the function (DeleteConnection)
    assert box.run(registry(box).key_of(connection)) is None


def test_a_resting_order_is_cancelled_over_the_socket(stage):
    mapping, gateway, _, key = stage
    connection, _ = gateway.connect(key)
    order_id = submit(gateway, connection, {**MARKET, "type": "limit", "limitPrice": "100000", "expiresAt": 600})
    run_chain(mapping)
    assert [e["status"] for e in gateway.events(connection)] == ["pending", "waiting"]
    gateway.send(connection, {"action": "cancel", "orderId": order_id})
    assert {"type": "cancelled", "orderId": order_id} in gateway.received(connection)
    assert [e["status"] for e in gateway.events(connection)] == ["pending", "waiting", "cancelled"]
    gateway.send(connection, {"action": "cancel", "orderId": order_id})
    refused = gateway.received(connection)[-1]
    assert refused["type"] == "error" and refused["status"] == 409 and refused["field"] == "orderId"


def test_a_repeated_client_order_id_replays_the_original_order(stage):
    mapping, gateway, _, key = stage
    first, second = gateway.connect(key)[0], gateway.connect(key)[0]
    order_id = submit(gateway, first, {**MARKET, "clientOrderId": "once"})
    run_chain(mapping)
    gateway.send(second, {**MARKET, "clientOrderId": "once"})
    assert gateway.events(second) == gateway.events(first)
    assert [e["seq"] for e in gateway.events(second)] == [1, 2, 3, 4, 5, 6]
    assert {e["orderId"] for e in gateway.events(second)} == {order_id}


def test_subscribes_racing_live_posts_from_two_containers_get_every_event_once_in_order(stage):
    """Orders run through two containers at once (a driver thread) while, from a third (the WebSocket
    function's), orders are placed and a second connection per order subscribes from seq 0 at a
    random moment: every connection gets 1 … 6, each once, in order."""
    mapping, gateway, first, _ = stage
    key = new_key(first, "racer", max_in_flight=100)
    second = container_module.Container(load_settings())
    sockets = container_module.Container(load_settings())  # the WebSocket function's own container
    containers = TwoContainers(mapping, [first, second])
    rng, stop = random.Random(20), threading.Event()

    def drive() -> None:
        while not stop.is_set():
            if containers.poll_once() == 0:
                time.sleep(0.005)

    driver = threading.Thread(target=drive, name="event-source-mapping")
    driver.start()
    submitters, followers = {}, {}
    try:
        for _ in range(16):
            connection = gateway.connect(key, sockets)[0]
            submitters[submit(gateway, connection, {**MARKET, "amount": "0.2"}, sockets)] = connection
            unfollowed = sorted(set(submitters) - set(followers))
            for order_id in rng.sample(unfollowed, k=min(len(unfollowed), rng.randint(0, 2))):
                time.sleep(rng.uniform(0, 0.02))
                follower = gateway.connect(key, sockets)[0]
                gateway.send(follower, {"action": "subscribe", "orderId": order_id}, sockets)
                followers[order_id] = follower
        for order_id in set(submitters) - set(followers):
            follower = gateway.connect(key, sockets)[0]
            gateway.send(follower, {"action": "subscribe", "orderId": order_id}, sockets)
            followers[order_id] = follower
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                gateway.events(c)[-1:] and gateway.events(c)[-1]["status"] in TERMINAL_STATUSES
                for c in (*submitters.values(), *followers.values())):
            time.sleep(0.05)
    finally:
        stop.set()
        driver.join()
        containers.close()
        second.close()
        sockets.close()
    for order_id, connection in (*submitters.items(), *followers.items()):
        events = gateway.events(connection)
        assert {e["orderId"] for e in events} == {order_id}
        assert [(e["seq"], e["status"]) for e in events] == list(enumerate(STATUSES, 1)), (order_id, events)
    assert all(containers.handled[(n, "execute")] > 0 for n in range(2)), containers.handled
