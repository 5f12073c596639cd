"""Lambda entry point of the reconciler, on a schedule (EventBridge): re-drive stuck orders
from what PostgreSQL says, expire overdue resting orders, re-arm a lost trigger index."""

from __future__ import annotations

from typing import Any

from cloud.container import Container, container
from functions import reconcile


async def reconcile_once(box: Container) -> dict[str, int]:
    rearmed = await reconcile.rearm_if_lost(box.ctx)
    messages = await reconcile.stalled(box.ctx, box.ctx.clock.now())
    for message in messages:
        await box.queues.send(message, redrive=True)
    return {"rearmed": rearmed, "redriven": len(messages)}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    box = container()
    return box.run(reconcile_once(box))
