"""Lambda entry point of the reconciler, on a schedule (EventBridge): re-drive stuck orders
from what PostgreSQL says, expire overdue resting orders, re-arm a lost trigger index."""

from __future__ import annotations

from typing import Any

from cloud.container import container
from functions import reconcile


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    box = container()
    return box.invoke(reconcile.run_round(box.ctx, box.queues))
