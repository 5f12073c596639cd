"""The pipeline, declared once: which function handles which message, and how one delivery of a
message runs (attempts, timeout, giving up).

Each function returns the next message (or None); the message's type says which
function runs next. Transports (SAQ locally, a cloud queue trigger) read this table; no
handler names its successor.

    NewOrder ─intake─► QuoteRequest ─quote─► RouteRequest ─route─► ExecuteRequest ─execute─► ∎
                 └───► ArmRequest ─trigger─► (waiting … TriggerFired) ─trigger─► QuoteRequest
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.context import Context, current_attempt
from shared.domain.messages import ExecuteRequest, NewOrder, QuoteRequest, RouteRequest, TriggerMessage
from shared.domain.states import Status


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    message_type: Any

    @property
    def handle(self) -> Callable[[Any, Context], Awaitable[Any]]:
        """The function's `handle`, imported on first use: a host (a cloud function's artifact)
        loads only the functions it runs."""
        return importlib.import_module(f"functions.{self.name}").handle


PIPELINE: dict[str, Step] = {
    step.name: step
    for step in (
        Step("intake", NewOrder),
        Step("trigger", TriggerMessage),
        Step("quote", QuoteRequest),
        Step("route", RouteRequest),
        Step("execute", ExecuteRequest),
    )
}

_STEP_OF_TYPE: dict[type, str] = {
    kind: step.name for step in PIPELINE.values() for kind in getattr(step.message_type, "__args__", (step.message_type,))
}
"""Each message type's step, read off the table (a union of types means each of them)."""
QUEUED_STEPS: tuple[str, ...] = tuple(name for name in PIPELINE if name != "intake")
"""The steps that run behind a queue: intake runs inline where an order is taken."""


def step_for(message: Any) -> str:
    """The function that takes this message."""
    return _STEP_OF_TYPE[type(message)]


def message_key(message: Any) -> str:
    """What identifies a message's order across deliveries (dedupe keys, failure reports)."""
    if isinstance(message, NewOrder):
        return f"{message.client_id}:{message.submission_key}"
    return message.order_id


def log_extra(message: Any) -> dict[str, str]:
    """Logging's `extra` for a record about this message: its order's id (`orderId` of a JSON log
    line); none for a new order, which has no id yet."""
    order_id = getattr(message, "order_id", None)
    return {} if order_id is None else {"order_id": order_id}


async def give_up(message: Any, error: str, attempts: int, ctx: Context) -> None:
    """A step failed on its last attempt: the order ends `failed` with the reason."""
    if isinstance(message, NewOrder):
        ctx.log.error("intake gave up on %s after %d attempts: %s", message_key(message), attempts, error)
        return
    await ctx.record(
        message.order_id,
        Status.FAILED,
        {"error": error, "attempts": attempts},
        failure_reason=error,
        attempts=attempts,
    )


class RetryLater(Exception):
    """A delivery failed with attempts left: the transport should deliver the message again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def run_attempt(step: Step, message: Any, ctx: Context, attempt: int, attempts: int, timeout_s: float) -> Any:
    """Delivery number `attempt` (of `attempts`) of `message` to `step`, whatever the transport
    (SAQ job, SQS record). Returns the next message (or None). A failure raises RetryLater while
    attempts are left; on the last one the step gives up (the order fails with the reason) and
    None is returned — unless Redis or PostgreSQL is away (`ctx.outages`): then it is delivered
    again, whatever the attempt, until they are back."""
    token = current_attempt.set(attempt)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            return await step.handle(message, ctx)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        outage = isinstance(exc, ctx.outages) and not isinstance(exc, TimeoutError)  # a slow step is the step's
        if attempt < attempts or outage:
            ctx.log.warning("%s %s attempt %d failed (%s); retrying%s", step.name, message_key(message), attempt, reason,
                            " (an outage: never given up on)" if outage and attempt >= attempts else "",
                            extra=log_extra(message))
            ctx.metrics.step_retried(step.name)
            raise RetryLater(reason) from exc
        ctx.log.error("%s %s failed after %d attempts: %s", step.name, message_key(message), attempt, reason,
                      extra=log_extra(message))
        ctx.metrics.step_gave_up(step.name)
        await give_up(message, reason, attempt, ctx)
        return None
    finally:
        ctx.metrics.step_took(step.name, time.perf_counter() - started)
        current_attempt.reset(token)
