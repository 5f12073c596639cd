"""The pipeline, declared once: which function follows which, and what each one takes.

Adapters (SAQ locally, a cloud queue trigger) read this table; no handler names its
successor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from functions import execute, intake, quote, route
from shared.context import Context
from shared.messages import ExecuteRequest, NewOrder, QuoteRequest, RouteRequest
from shared.states import Status


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    handle: Callable[[Any, Context], Awaitable[Any]]
    message_type: type
    next: str | None


CHAIN: dict[str, Step] = {
    step.name: step
    for step in (
        Step("intake", intake.handle, NewOrder, next="quote"),
        Step("quote", quote.handle, QuoteRequest, next="route"),
        Step("route", route.handle, RouteRequest, next="execute"),
        Step("execute", execute.handle, ExecuteRequest, next=None),
    )
}


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
