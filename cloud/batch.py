"""An SQS batch through one function: the mechanics of the Lambda event-source mapping.

Each record's body is the step's message. Records run concurrently; the result of each goes
to the next function's queue; failures are returned as `batchItemFailures` so SQS redelivers
only those records (the event-source mapping has ReportBatchItemFailures). A record failing
on its last allowed receive (`DEX_JOB_ATTEMPTS`, equal to the queue's maxReceiveCount) gives
up: the order ends failed with the reason, as on SAQ. An undecodable record is reported
failed every time, so after maxReceiveCount it lands in the dead-letter queue.

Powertools' BatchProcessor was measured (56 ms to import) and not used: its async processor
runs each batch in `asyncio.run` outside Lambda and on `get_event_loop()` inside it, while the
PostgreSQL pool must live on one loop kept for the container's life (cloud/container.py);
these 30 lines do the same on that loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from cloud.container import Container, container
from functions.pipeline import CHAIN, RetryLater, message_key, run_attempt


async def process_batch(step_name: str, records: list[dict[str, Any]], box: Container) -> dict[str, list]:
    step = CHAIN[step_name]
    decoder = msgspec.json.Decoder(step.message_type)
    settings = box.settings
    timeout = settings.step_timeout_s(step_name)

    async def one(record: dict[str, Any]) -> str | None:
        record_id = record["messageId"]
        try:
            message = decoder.decode(record["body"])
        except msgspec.DecodeError:
            box.ctx.log.error("%s: undecodable record %s: %.200s", step_name, record_id, record["body"])
            return record_id
        attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            result = await run_attempt(step, message, box.ctx, attempt, settings.job_attempts, timeout)
        except RetryLater:
            return record_id  # SQS redelivers it
        if result is not None:
            try:
                await box.queues.send(result)
            except Exception as exc:  # the step is done; redelivery re-sends (or the reconciler re-drives)
                box.ctx.log.warning("%s %s: next step not sent (%s)", step_name, message_key(message), exc)
                return record_id
        return None

    failed = await asyncio.gather(*(one(record) for record in records))
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed if record_id]}


def sqs_handler(step_name: str):
    """A Lambda handler(event, context) running `step_name` on an SQS batch event."""
    if step_name not in CHAIN:
        raise ValueError(f"unknown function {step_name!r}")

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, list]:
        box = container()
        return box.invoke(process_batch(step_name, event.get("Records", []), box))

    handler.__name__ = handler.__qualname__ = f"{step_name}_handler"
    return handler
