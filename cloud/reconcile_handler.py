"""Lambda entry point of the scheduled work (EventBridge): the reconciler (re-drive stuck orders
from what PostgreSQL says, expire overdue resting orders, re-arm a lost resting index), then one
step of the market's drive (a drift tick firing the limit orders it crosses, expiries due) if
this container can hold the market lease: a function cannot run the driver's loop."""

from __future__ import annotations

from typing import Any

from cloud.container import container
from functions import reconcile


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    box = container()

    async def scheduled() -> dict[str, int]:
        done = await reconcile.run_round(box.ctx, box.queues)
        return {**done, **await box.services.driver.drive_once()}

    return box.invoke(scheduled())
