"""The cloud entry points invoked in-process with SQS and API Gateway events, against real
PostgreSQL and Redis (the next queue is captured instead of sent to SQS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from cloud import container as container_module
from cloud import http_handler, steps
from cloud.container import Container
from functions import intake
from shared.adapters.postgres.api_keys import PgApiKeys
from shared.domain.events import MAX_SEQ
from shared.domain.messages import ExecuteRequest, MarketOrderRequest, NewOrder, QuoteRequest, RouteRequest
from tests.cloud_events import http_event, sqs_event, sqs_record
from tests.unit.test_events import BAD_AFTER

ORDER = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1.5", slippage_bps=100)


class CapturingQueues:
    def __init__(self) -> None:
        self.sent: list = []

    async def send(self, message, redrive: bool = False) -> None:
        self.sent.append(message)

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass


@pytest.fixture
def box(settings, monkeypatch):
    """The container a Lambda would build, on this test's database and namespace."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    built = Container(settings.with_changes(queue_backend="sqs"), queues=CapturingQueues())
    monkeypatch.setattr(container_module, "_container", built)
    yield built
    built.close()
    monkeypatch.setattr(container_module, "_container", None)


def body(message) -> str:
    return msgspec.json.encode(message).decode()


def new_quote_requests(box: Container, count: int) -> list[QuoteRequest]:
    return [box.run(intake.handle(NewOrder(ORDER, "c", f"k{n}"), box.ctx)) for n in range(count)]


def drain(box: Container) -> list:
    sent, box.queues.sent = box.queues.sent, []
    return sent


def statuses(box: Container, order_id: str) -> list[str]:
    return [e.status for e in box.run(box.ctx.orders.events(order_id))]


def test_a_clean_batch_runs_every_record_and_hands_each_result_on(box):
    requests = new_quote_requests(box, 3)
    answer = steps.quote(sqs_event(*(sqs_record(body(r)) for r in requests)), None)
    assert answer == {"batchItemFailures": []}
    routes = drain(box)
    assert sorted(r.order_id for r in routes) == sorted(r.order_id for r in requests)
    assert all(isinstance(r, RouteRequest) for r in routes)
    assert steps.route(sqs_event(*(sqs_record(body(r)) for r in routes)), None)["batchItemFailures"] == []
    executes = drain(box)
    assert steps.execute(sqs_event(*(sqs_record(body(e)) for e in executes)), None)["batchItemFailures"] == []
    for request in requests:
        assert statuses(box, request.order_id) == ["pending", "routing", "routed", "building", "submitted",
                                                   "confirmed"]


def test_only_the_failing_records_of_a_batch_are_reported(box):
    good = new_quote_requests(box, 2)
    broken = RouteRequest(good[0].order_id, good[0].input_mint, good[0].output_mint, 50, quotes=[])  # NoRoute
    records = [sqs_record(body(good[0])), sqs_record("{not json", message_id="poison-1"),
               sqs_record(body(good[1]))]
    answer = steps.quote(sqs_event(*records), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert len(drain(box)) == 2
    failing = sqs_record(body(broken), message_id="raises-1")
    assert steps.route(sqs_event(failing), None) == {"batchItemFailures": [{"itemIdentifier": "raises-1"}]}
    assert "failed" not in statuses(box, good[0].order_id)  # SQS will redeliver it: not given up yet


def test_the_last_receive_gives_up_and_fails_the_order_instead_of_reporting_it(box):
    [request] = new_quote_requests(box, 1)
    steps.quote(sqs_event(sqs_record(body(request))), None)
    drain(box)
    broken = RouteRequest(request.order_id, request.input_mint, request.output_mint, 50, quotes=[])
    answer = steps.route(sqs_event(sqs_record(body(broken), receive_count=3)), None)
    assert answer == {"batchItemFailures": []}
    order = box.run(box.ctx.orders.get(request.order_id))
    assert order.status == "failed" and order.attempts == 3 and "NoRoute" in order.failure_reason


def test_a_duplicate_delivery_changes_nothing(box):
    [request] = new_quote_requests(box, 1)
    event = sqs_event(sqs_record(body(request)))
    steps.quote(event, None)
    steps.quote(event, None)  # delivered twice
    first, second = drain(box)
    assert first == second
    steps.route(sqs_event(sqs_record(body(first)), sqs_record(body(second))), None)
    executes = drain(box)
    assert all(isinstance(e, ExecuteRequest) and e.plan == executes[0].plan for e in executes)
    for _ in range(2):
        steps.execute(sqs_event(*(sqs_record(body(e)) for e in executes)), None)
    assert statuses(box, request.order_id) == ["pending", "routing", "routed", "building", "submitted", "confirmed"]
    landed = box.run(box.services.pool.fetchval("SELECT count(*) FROM chain_transactions"))
    assert landed == 1


def test_the_http_entry_point_validates_authenticates_and_stores_like_the_local_runtime(box):
    key = box.run(PgApiKeys(box.services.pool).create("alice", datetime.now(UTC)))
    order = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1"}
    missing_key = http_handler.handler(http_event("POST", "/api/orders/execute", order), None)
    assert missing_key["statusCode"] == 401 and json.loads(missing_key["body"])["field"] == "X-API-Key"
    bad = http_handler.handler(http_event("POST", "/api/orders/execute", {**order, "amount": "-1"},
                                          {"x-api-key": key}), None)
    assert bad["statusCode"] == 422 and json.loads(bad["body"])["field"] == "amount"
    created = http_handler.handler(http_event("POST", "/api/orders/execute", order, {"x-api-key": key}), None)
    assert created["statusCode"] == 201
    order_id = json.loads(created["body"])["orderId"]
    assert [type(m) for m in drain(box)] == [QuoteRequest]  # handed to the quote queue
    read = http_handler.handler(http_event("GET", f"/api/orders/{order_id}", headers={"x-api-key": key}), None)
    assert read["statusCode"] == 200 and json.loads(read["body"])["status"] == "pending"
    other = box.run(PgApiKeys(box.services.pool).create("bob", datetime.now(UTC)))
    hidden = http_handler.handler(http_event("GET", f"/api/orders/{order_id}", headers={"x-api-key": other}), None)
    assert hidden["statusCode"] == 404


def test_a_failed_hand_off_is_redelivered_and_never_fails_the_order(box):
    [request] = new_quote_requests(box, 1)

    class Down(CapturingQueues):
        async def send(self, message, redrive: bool = False) -> None:
            raise ConnectionError("SQS unreachable")

    box.services.queues = Down()
    answer = steps.quote(sqs_event(sqs_record(body(request), receive_count=3, message_id="m1")), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert statuses(box, request.order_id) == ["pending", "routing"]  # the step ran; the order is not failed


def test_the_http_entry_point_refuses_a_revoked_key_on_the_very_next_request(box):
    """A function hears no revocation (it holds no subscription): it must read the key in PostgreSQL
    on every request, so a key revoked between two requests is refused by the second, on every route."""
    keys = PgApiKeys(box.services.pool)
    key = box.run(keys.create("carol", datetime.now(UTC)))
    order = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1"}
    created = http_handler.handler(http_event("POST", "/api/orders/execute", order, {"x-api-key": key}), None)
    assert created["statusCode"] == 201
    order_id = json.loads(created["body"])["orderId"]
    read = http_handler.handler(http_event("GET", f"/api/orders/{order_id}", headers={"x-api-key": key}), None)
    assert read["statusCode"] == 200
    assert box.run(keys.revoke(key, datetime.now(UTC))).revoked  # no Redis: nobody is told
    for method, path, body in (("POST", "/api/orders/execute", order), ("GET", f"/api/orders/{order_id}", None),
                               ("GET", f"/api/orders/{order_id}/events", None),
                               ("DELETE", f"/api/orders/{order_id}", None)):
        refused = http_handler.handler(http_event(method, path, body, {"x-api-key": key}), None)
        assert refused["statusCode"] == 401, (method, path, refused)
        assert json.loads(refused["body"])["field"] == "X-API-Key"


@pytest.mark.parametrize("after", BAD_AFTER, ids=[repr(a) for a in BAD_AFTER])
def test_the_http_entry_point_reads_after_like_the_local_runtime(box, after):
    key = box.run(PgApiKeys(box.services.pool).create("dave", datetime.now(UTC)))
    order = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1"}
    created = http_handler.handler(http_event("POST", "/api/orders/execute", order, {"x-api-key": key}), None)
    order_id = json.loads(created["body"])["orderId"]
    path = f"/api/orders/{order_id}/events"
    refused = http_handler.handler(http_event("GET", path, headers={"x-api-key": key}, query={"after": after}), None)
    assert refused["statusCode"] == 422, refused
    assert json.loads(refused["body"])["field"] == "after"
    for good, seqs in (({}, [1]), ({"after": "0"}, [1]), ({"after": "001"}, []), ({"after": str(MAX_SEQ)}, [])):
        answer = http_handler.handler(http_event("GET", path, headers={"x-api-key": key}, query=good), None)
        assert answer["statusCode"] == 200, answer
        assert [e["seq"] for e in json.loads(answer["body"])] == seqs
