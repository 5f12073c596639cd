"""The chain end to end through an SQS emulator (moto in server mode): a poller stands in for
the Lambda event-source mapping, reading each function's queue in batches and calling its
entry point; orders reach `confirmed`, and a poison message ends in the dead-letter queue. Two
separately built containers, as two Lambda containers, share one market: every order confirms and
every pool's reserves move by exactly what the ledger says."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cloud import container as container_module
from cloud import http_handler, steps
from cloud.batch import process_batch
from shared.adapters.postgres.api_keys import PgApiKeys
from shared.settings import Settings, load_settings
from shared.domain.states import TERMINAL_STATUSES
from tests.cloud_events import http_event
from tests.conftest import REDIS_URL, forget_namespace, run_sync
from tests.e2e.runtime import assert_conserved, free_port

HANDLERS = {"trigger": steps.trigger, "quote": steps.quote, "route": steps.route,
            "execute": steps.execute}
MAX_RECEIVES = 3


def sqs_records(messages: list[dict]) -> list[dict]:
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {}), "messageAttributes": {}, "eventSource": "aws:sqs"}
            for m in messages]


class EventSourceMapping:
    """What Lambda does for an SQS trigger: receive a batch, invoke, delete all but the
    reported failures (ReportBatchItemFailures)."""

    def __init__(self, sqs, urls: dict[str, str]) -> None:
        self.sqs = sqs
        self.urls = urls

    def receive(self, url: str) -> list[dict]:
        answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                          AttributeNames=["All"])
        return answer.get("Messages", [])

    def settle(self, url: str, messages: list[dict], failed: set[str]) -> None:
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def poll_once(self) -> int:
        handled = 0
        for step, url in self.urls.items():
            messages = self.receive(url)
            if not messages:
                continue
            answer = HANDLERS[step]({"Records": sqs_records(messages)}, None)
            self.settle(url, messages, {f["itemIdentifier"] for f in answer["batchItemFailures"]})
            handled += len(messages)
        return handled


class TwoContainers:
    """Two Lambda containers behind the same queues: each received batch goes to the next container
    in turn, and the two run at the same time (each on its own thread, with its own event loop,
    PostgreSQL pool, Redis client and caches), as two warm containers would."""

    def __init__(self, mapping: EventSourceMapping, boxes: list[container_module.Container]) -> None:
        self.mapping = mapping
        self.boxes = boxes
        self.threads = [ThreadPoolExecutor(1, thread_name_prefix=f"container-{n}") for n in range(len(boxes))]
        self.turn = 0
        self.handled: Counter[tuple[int, str]] = Counter()
        """Records handled, by (container, step)."""

    def poll_once(self) -> int:
        running: list[tuple[int, str, str, list[dict], Future]] = []
        for step, url in self.mapping.urls.items():
            messages = self.mapping.receive(url)
            if not messages:
                continue
            n, self.turn = self.turn % len(self.boxes), self.turn + 1
            box, records = self.boxes[n], sqs_records(messages)
            running.append((n, step, url, messages,
                            self.threads[n].submit(lambda box=box, step=step, records=records:
                                                   box.invoke(process_batch(step, records, box)))))
        for n, step, url, messages, future in running:
            answer = future.result(timeout=30)
            self.mapping.settle(url, messages, {f["itemIdentifier"] for f in answer["batchItemFailures"]})
            self.handled[(n, step)] += len(messages)
        return sum(len(messages) for _, _, _, messages, _ in running)

    def close(self) -> None:
        for thread in self.threads:
            thread.shutdown()


@pytest.fixture
def cloud(database, monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    urls, dead = {}, {}
    suffix = uuid.uuid4().hex[:6]
    for step in HANDLERS:
        dlq = sqs.create_queue(QueueName=f"dex-{step}-dlq-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        urls[step] = sqs.create_queue(QueueName=f"dex-{step}-{suffix}", Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(MAX_RECEIVES)}),
        })["QueueUrl"]
        dead[step] = dlq
    env = {
        "DATABASE_URL": database, "REDIS_URL": REDIS_URL, "DEX_NAMESPACE": f"sqs{suffix}",
        "DEX_QUEUE_BACKEND": "sqs", "DEX_SQS_ENDPOINT_URL": endpoint,
        "DEX_SQS_QUEUE_URLS": ",".join(f"{step}={url}" for step, url in urls.items()),
        "DEX_JOB_ATTEMPTS": str(MAX_RECEIVES), "DEX_SIM_ZERO_DELAYS": "true", "DEX_SIM_DRIFT_INTERVAL_MS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    container_module.reset()
    box = container_module.container()
    key = box.run(PgApiKeys(box.services.pool).create("alice", datetime.now(UTC)))
    yield EventSourceMapping(sqs, urls), sqs, dead, key
    container_module.reset()
    server.stop()
    run_sync(forget_namespace(Settings(redis_url=REDIS_URL, namespace=f"sqs{suffix}")))


def test_orders_flow_through_sqs_queues_to_confirmed(cloud):
    mapping, _, _, key = cloud
    order = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "2"}
    order_ids = []
    for n in range(5):
        answer = http_handler.handler(http_event("POST", "/api/orders/execute", {**order, "clientOrderId": f"o{n}"},
                                                 {"x-api-key": key}), None)
        assert answer["statusCode"] == 201, answer
        order_ids.append(json.loads(answer["body"])["orderId"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and mapping.poll_once():
        pass
    for order_id in order_ids:
        read = http_handler.handler(http_event("GET", f"/api/orders/{order_id}/events", headers={"x-api-key": key}),
                                    None)
        events = json.loads(read["body"])
        assert [e["status"] for e in events] == ["pending", "routing", "routed", "building", "submitted",
                                                 "confirmed"]


def test_a_poison_message_lands_in_the_dead_letter_queue_after_its_retries(cloud):
    mapping, sqs, dead, _ = cloud
    sqs.send_message(QueueUrl=mapping.urls["quote"], MessageBody="{this is not a quote request")
    deadline = time.monotonic() + 20
    landed = []
    while time.monotonic() < deadline and not landed:
        mapping.poll_once()
        landed = sqs.receive_message(QueueUrl=dead["quote"], MaxNumberOfMessages=1).get("Messages", [])
        time.sleep(0.3)
    assert [m["Body"] for m in landed] == ["{this is not a quote request"]


async def order_statuses(database: str, order_ids: list[str]) -> dict[str, str]:
    import asyncpg

    connection = await asyncpg.connect(database)
    try:
        rows = await connection.fetch("SELECT id::text, status FROM orders WHERE id = ANY($1::uuid[])",
                                      order_ids)
    finally:
        await connection.close()
    return {r["id"]: r["status"] for r in rows}


def test_two_containers_fill_both_sides_of_one_market_and_conserve_every_pool(cloud):
    mapping, _, _, _ = cloud
    first = container_module.container()  # the one the HTTP function and the poller above use
    key = first.run(PgApiKeys(first.services.pool).create("bulk", datetime.now(UTC), max_in_flight=100))
    second = container_module.Container(load_settings())  # another container: built on its own
    containers = TwoContainers(mapping, [first, second])
    try:
        order_ids = []
        for n in range(40):
            side, amount = ("sell", "0.5") if n % 2 == 0 else ("buy", "75")
            order = {"type": "market", "side": side, "baseAsset": "SOL", "quoteAsset": "USDC", "amount": amount,
                     "slippageBps": 300}
            answer = http_handler.handler(http_event("POST", "/api/orders/execute", order, {"x-api-key": key}), None)
            assert answer["statusCode"] == 201, answer
            order_ids.append(json.loads(answer["body"])["orderId"])
        database = first.settings.database_url
        deadline, statuses = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            if containers.poll_once() == 0:
                statuses = run_sync(order_statuses(database, order_ids))
                if all(status in TERMINAL_STATUSES for status in statuses.values()):
                    break
                time.sleep(0.05)
        assert Counter(statuses.values()) == {"confirmed": 40}, Counter(statuses.values())
        print(f"\nrecords handled per container: {dict(sorted(containers.handled.items()))}")
        for n in range(2):  # each container quoted, routed and executed some of them
            assert all(containers.handled[(n, step)] > 0 for step in ("quote", "route", "execute")), containers.handled
    finally:
        containers.close()
        second.close()
    balances = assert_conserved(database)
    assert {(b.pool, b.token) for b in balances if b.swaps} >= {("raydium SOL/USDC", "SOL"), ("meteora SOL/USDC", "USDC")}
