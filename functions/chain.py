"""The pipeline, declared once: which function handles which message.

Each function returns the next message (or None); the message's type says which
function runs next. Adapters (SAQ locally, a cloud queue trigger) read this table; no
handler names its successor.

    NewOrder ─intake─► QuoteRequest ─quote─► RouteRequest ─route─► ExecuteRequest ─execute─► ∎
                 └───► ArmRequest ─trigger─► (waiting … TriggerFired) ─trigger─► QuoteRequest
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from functions import execute, intake, quote, route, trigger
from shared.context import Context
from shared.messages import ExecuteRequest, NewOrder, QuoteRequest, RouteRequest, TriggerMessage
from shared.states import Status


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    handle: Callable[[Any, Context], Awaitable[Any]]
    message_type: Any


CHAIN: dict[str, Step] = {
    step.name: step
    for step in (
        Step("intake", intake.handle, NewOrder),
        Step("trigger", trigger.handle, TriggerMessage),
        Step("quote", quote.handle, QuoteRequest),
        Step("route", route.handle, RouteRequest),
        Step("execute", execute.handle, ExecuteRequest),
    )
}

_STEP_OF_TYPE: dict[type, str] = {
    NewOrder: "intake",
    **{t: "trigger" for t in TriggerMessage.__args__},
    QuoteRequest: "quote",
    RouteRequest: "route",
    ExecuteRequest: "execute",
}


def step_for(message: Any) -> str:
    """The function that takes this message."""
    return _STEP_OF_TYPE[type(message)]


def message_key(message: Any) -> str:
    """What identifies a message's order across deliveries (dedupe keys, failure reports)."""
    if isinstance(message, NewOrder):
        return f"{message.client_id}:{message.submission_key}"
    return message.order_id


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
