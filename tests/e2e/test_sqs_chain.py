"""The chain end to end through an SQS emulator (moto in server mode): a poller stands in for
the Lambda event-source mapping, reading each function's queue in batches and calling its
entry point; orders reach `confirmed`, and a poison message ends in the dead-letter queue."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cloud import container as container_module
from cloud import execute_handler, http_handler, quote_handler, route_handler, trigger_handler
from shared.db.api_keys import PgApiKeys
from shared.settings import Settings
from tests.cloud_events import http_event
from tests.conftest import REDIS_URL, forget_namespace, run_sync
from tests.e2e.runtime import free_port

HANDLERS = {"trigger": trigger_handler.handler, "quote": quote_handler.handler, "route": route_handler.handler,
            "execute": execute_handler.handler}
MAX_RECEIVES = 3


class EventSourceMapping:
    """What Lambda does for an SQS trigger: receive a batch, invoke, delete all but the
    reported failures (ReportBatchItemFailures)."""

    def __init__(self, sqs, urls: dict[str, str]) -> None:
        self.sqs = sqs
        self.urls = urls

    def poll_once(self) -> int:
        handled = 0
        for step, url in self.urls.items():
            answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                              AttributeNames=["All"])
            messages = answer.get("Messages", [])
            if not messages:
                continue
            event = {"Records": [
                {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                 "attributes": m.get("Attributes", {}), "messageAttributes": {}, "eventSource": "aws:sqs"}
                for m in messages
            ]}
            failed = {f["itemIdentifier"] for f in HANDLERS[step](event, None)["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            handled += len(messages)
        return handled


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
    key = box.run(PgApiKeys(box.world.pool).create("alice", datetime.now(UTC)))
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
