"""The queue port chosen by settings (`DEX_QUEUE_BACKEND`): SAQ on Redis, or Amazon SQS.
Each implementation is imported only when chosen, so a cloud artifact carries no SAQ and the
local runtime needs no boto3."""

from __future__ import annotations

from shared.context import Queues
from shared.settings import Settings

BACKENDS = ("saq", "sqs")


def queue_port(settings: Settings) -> Queues:
    if settings.queue_backend == "saq":
        from shared.adapters.queues.saq import SaqQueues

        return SaqQueues(settings)
    if settings.queue_backend == "sqs":
        from shared.adapters.queues.sqs import SqsQueues

        return SqsQueues.from_settings(settings)
    raise ValueError(f"setting DEX_QUEUE_BACKEND must be one of {', '.join(BACKENDS)}, got {settings.queue_backend!r}")
