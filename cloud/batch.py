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

from typing import Any

from cloud.container import Container, container
from functions.delivery import Outcome, deliver
from functions.pipeline import PIPELINE


async def process_batch(step_name: str, records: list[dict[str, Any]], box: Container) -> dict[str, list]:
    """The delivery loop on one SQS batch: the records not done (to retry, or unreadable — the
    dead-letter queue takes those after maxReceiveCount) are reported as batchItemFailures."""
    attempts = [int(record.get("attributes", {}).get("ApproximateReceiveCount", "1")) for record in records]
    outcomes = await deliver(step_name, [record["body"] for record in records], attempts, box.ctx, box.queues.send)
    return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}
                                  for record, outcome in zip(records, outcomes, strict=True)
                                  if outcome is not Outcome.DONE]}


def sqs_handler(step_name: str):
    """A Lambda handler(event, context) running `step_name` on an SQS batch event."""
    if step_name not in PIPELINE:
        raise ValueError(f"unknown function {step_name!r}")

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, list]:
        box = container()
        return box.invoke(process_batch(step_name, event.get("Records", []), box))

    handler.__name__ = handler.__qualname__ = f"{step_name}_handler"
    return handler
