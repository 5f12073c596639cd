"""The queue port chosen by settings (`DEX_QUEUE_BACKEND`): SAQ on Redis, or Amazon SQS.
Each implementation is imported only when chosen, so a cloud artifact carries no SAQ and the
local runtime needs no boto3."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from shared.ports import Queues
from shared.settings import Settings

BACKENDS = ("saq", "sqs")


def queue_port(settings: Settings, route: Callable[[Any], str], key: Callable[[Any], str],
               steps: Iterable[str]) -> Queues:
    """`route`: the step a message goes to; `key`: what identifies it across deliveries; `steps`:
    the queues (both from the pipeline table)."""
    if settings.queue_backend == "saq":
        from shared.adapters.queues.saq import SaqQueues

        return SaqQueues(settings, route, key, steps)
    if settings.queue_backend == "sqs":
        from shared.adapters.queues.sqs import SqsQueues

        return SqsQueues.from_settings(settings, route)
    raise ValueError(f"setting DEX_QUEUE_BACKEND must be one of {', '.join(BACKENDS)}, got {settings.queue_backend!r}")
