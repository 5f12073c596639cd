"""The queue port is chosen by settings; the SQS one sends each message to its function's queue."""

from __future__ import annotations

import json

import pytest

from functions.pipeline import PIPELINE, message_key, step_for
from shared.adapters.queues import queue_port
from shared.adapters.queues.saq import SaqQueues
from shared.adapters.queues.sqs import SqsQueues, parse_queue_urls
from shared.domain.messages import ArmRequest, QuoteRequest
from shared.settings import Settings, load_settings


class RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:  # noqa: N803 - boto3's names
        self.sent.append((QueueUrl, MessageBody))


def test_saq_is_the_default_and_sqs_is_chosen_by_setting(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert isinstance(queue_port(Settings(), step_for, message_key, PIPELINE), SaqQueues)
    assert isinstance(queue_port(Settings(queue_backend="sqs", sqs_queue_urls="quote=http://q"), step_for, message_key,
                                 PIPELINE), SqsQueues)
    with pytest.raises(ValueError, match="DEX_QUEUE_BACKEND"):
        load_settings({"DEX_QUEUE_BACKEND": "kafka"})


async def test_each_message_goes_to_the_queue_of_the_function_that_takes_it():
    client = RecordingSqs()
    queues = SqsQueues(client, parse_queue_urls("quote=https://sqs/quote, trigger=https://sqs/trigger"), step_for)
    await queues.send(QuoteRequest("o1", "a", "b", 10, 50))
    await queues.send(ArmRequest("o2"))
    assert [url for url, _ in client.sent] == ["https://sqs/quote", "https://sqs/trigger"]
    assert json.loads(client.sent[0][1])["order_id"] == "o1"
    with pytest.raises(LookupError, match="route"):
        from shared.domain.messages import RouteRequest

        await queues.send(RouteRequest("o3", "a", "b", 50, quotes=[]))


def test_queue_urls_must_be_step_equals_url():
    with pytest.raises(ValueError, match="DEX_SQS_QUEUE_URLS"):
        parse_queue_urls("quote")
