"""The queue port on Amazon SQS: one queue per function; the message body is the step's
message as JSON, exactly as on SAQ. Used by the cloud entry points (and by the local web
process when DEX_QUEUE_BACKEND=sqs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec

from shared.settings import Settings

_encoder = msgspec.json.Encoder()


def parse_queue_urls(text: str) -> dict[str, str]:
    """"quote=https://…,route=https://…" → {"quote": "https://…", …}."""
    urls = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        step, _, url = item.partition("=")
        if not url:
            raise ValueError(f"setting DEX_SQS_QUEUE_URLS: {item!r} is not step=url")
        urls[step.strip()] = url.strip()
    return urls


class SqsQueues:
    """`route` names the step a message goes to (the pipeline table's, handed in)."""

    def __init__(self, client: Any, urls: dict[str, str], route: Callable[[Any], str]) -> None:
        self._client = client
        self._urls = urls
        self._route = route

    @classmethod
    def from_settings(cls, settings: Settings, route: Callable[[Any], str]) -> SqsQueues:
        import boto3  # provided by the Lambda runtime; imported only where SQS is used

        client = boto3.client("sqs", endpoint_url=settings.sqs_endpoint_url or None)
        return cls(client, parse_queue_urls(settings.sqs_queue_urls), route)

    async def send(self, message: Any) -> None:
        """Send `message` to the queue of the function the chain table gives it to. (A re-drive
        is just another delivery, which every step absorbs.)"""
        step = self._route(message)
        try:
            url = self._urls[step]
        except KeyError:
            raise LookupError(f"no SQS queue URL for {step!r}: set DEX_SQS_QUEUE_URLS") from None
        body = _encoder.encode(message).decode()
        await asyncio.to_thread(self._client.send_message, QueueUrl=url, MessageBody=body)

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass
