"""The pipeline, declared once: which function handles which message.

Each function returns the next message (or None); the message's type says which
function runs next. Adapters (SAQ locally, a cloud queue trigger) read this table; no
handler names its successor.

    NewOrder ─intake─► QuoteRequest ─quote─► RouteRequest ─route─► ExecuteRequest ─execute─► ∎
                 └───► ArmRequest ─trigger─► (waiting … TriggerFired) ─trigger─► QuoteRequest
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.context import Context
from shared.messages import ExecuteRequest, NewOrder, QuoteRequest, RouteRequest, TriggerMessage
from shared.states import Status


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    message_type: Any

    @property
    def handle(self) -> Callable[[Any, Context], Awaitable[Any]]:
        """The function's `handle`, imported on first use: a host (a cloud function's artifact)
        loads only the functions it runs."""
        return importlib.import_module(f"functions.{self.name}").handle


CHAIN: dict[str, Step] = {
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
