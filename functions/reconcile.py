"""reconcile: what PostgreSQL says must happen next, for orders the queues lost or stalled on.

An acknowledged order is in PostgreSQL; its next message lives only in the queues. A worker
killed mid-step is the queues' business (SAQ's heartbeats deliver its jobs again within
seconds), but when Redis is flushed, a job runs out of attempts, or a step gave up while
PostgreSQL was down, the order sits in a non-terminal status with no message to move it on.
This function finds each order that has sat unchanged for two heartbeats plus grace and whose
message the queues no longer hold (its lease ran out: not queued, not running), and returns the
message that re-drives its step. A transport that cannot tell what it holds (SQS) leaves the
old deadline: every attempt of the step timing out, plus grace. Re-driving is safe even if the
original job is still alive: every step is conditional on the order's status and the chain keys
transactions by (order, leg), so a second run changes nothing and lands nothing twice.

It also re-arms the trigger index from PostgreSQL when the index was lost, and expires
resting orders whose expiry the watcher missed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec

from functions.intake import after_pending, quote_request
from functions.pipeline import message_key, step_for
from shared.context import Context
from shared.ports import Queues
from shared.domain.messages import ArmRequest, ExecuteRequest, ExpireRequest, Plan, QuoteRequest, TriggerFired
from shared.domain.orders import Kind, OrderRecord
from shared.domain.states import Status

BATCH = 500

STEP_IN_FRONT: dict[Status, str] = {
    Status.PENDING: "quote",  # "trigger" for limit and sniper orders: see _step_in_front
    Status.TRIGGERED: "quote",
    Status.ROUTING: "route",
    Status.ROUTED: "execute",
    Status.BUILDING: "execute",
    Status.SUBMITTED: "execute",
}
"""Which step moves an order on from each pipeline status (its deadline applies)."""


_STATUS_GROUPS = tuple(
    frozenset(status for status, step in STEP_IN_FRONT.items() if step == group) for group in ("quote", "route", "execute")
)
"""Pipeline statuses grouped by the step in front of them (pending also fronts `trigger`)."""


def _steps_for(statuses: frozenset[Status]) -> set[str]:
    steps = {STEP_IN_FRONT[status] for status in statuses}
    return steps | {"trigger"} if Status.PENDING in statuses else steps


def _step_in_front(order: OrderRecord) -> str:
    if order.status == Status.PENDING and order.kind != Kind.MARKET:
        return "trigger"
    return STEP_IN_FRONT[order.status]


async def redrive(order: OrderRecord, ctx: Context):
    """The message that makes the step in front of `order` run again (None: nothing to do)."""
    status = order.status
    if status == Status.PENDING:
        return after_pending(order)
    if status == Status.TRIGGERED:
        fired = await ctx.orders.event(order.id, Status.TRIGGERED)
        return TriggerFired(order.id, fired.data if fired else {})
    if status == Status.ROUTING:
        # quote sees the routing event already stored and hands the stored quotes to route.
        return quote_request(order)
    if status in (Status.ROUTED, Status.BUILDING, Status.SUBMITTED) and order.plan is not None:
        return ExecuteRequest(order.id, msgspec.convert(order.plan, Plan), order.side)
    return None


InHand = Callable[[list[str]], Awaitable[set[str]]]
"""The queues' answer to "which of these orders' messages do you hold?" (queued, or running with a
live heartbeat)."""


async def stalled(ctx: Context, now: datetime, in_hand: InHand | None = None
                  ) -> list[QuoteRequest | ArmRequest | TriggerFired | ExecuteRequest | ExpireRequest]:
    """Messages re-driving every stuck order (unchanged for `stall_after_s` and no longer in
    hand; without `in_hand`, unchanged past its step's deadline), and expiring every waiting
    order past its expiry (by more than the grace)."""
    settings = ctx.settings
    deadlines = {step: timedelta(seconds=settings.step_deadline_s(step))
                 for step in ("trigger", "quote", "route", "execute")}
    quiet = timedelta(seconds=settings.stall_after_s())
    messages = []
    # One query per group of statuses, so orders waiting legitimately in front of a slow step
    # (execute) can never fill the batch and hide orders stuck in front of a fast one.
    for statuses in _STATUS_GROUPS:
        if in_hand is None:
            cutoff = now - min(deadlines[step] for step in _steps_for(statuses))
            candidates = [order for order in await ctx.orders.moving_since(cutoff, BATCH, statuses)
                          if order.updated_at < now - deadlines[_step_in_front(order)]]
        else:
            candidates = await ctx.orders.moving_since(now - quiet, BATCH, statuses)
            held = await in_hand([order.id for order in candidates])
            candidates = [order for order in candidates if order.id not in held]
        for order in candidates:
            message = await redrive(order, ctx)
            if message is not None:
                messages.append(message)
    grace = timedelta(seconds=settings.stall_grace_s)
    messages.extend(ExpireRequest(order.id) for order in await ctx.orders.overdue(now - grace, BATCH))
    return messages


async def rearm_if_lost(ctx: Context) -> int:
    """Re-arm every waiting order if the trigger index was lost; returns how many were re-armed."""
    if not await ctx.resting.claim_rebuild():
        return 0
    count, last = 0, None
    while page := await ctx.orders.waiting_after(last, BATCH):
        for order in page:
            await ctx.resting.arm(order)
        count += len(page)
        last = page[-1].id
    if count:
        ctx.log.warning("trigger index rebuilt from PostgreSQL: %d waiting orders re-armed", count)
    return count


async def run_round(ctx: Context, queues: Queues) -> dict[str, int]:
    """One reconciler round, whatever schedules it (SAQ cron, a cloud schedule): re-arm a lost
    trigger index, then re-drive every stuck order through `queues`."""
    rearmed = await rearm_if_lost(ctx)
    messages = await stalled(ctx, ctx.clock.now(), getattr(queues, "in_hand", None))
    for message in messages:
        await queues.send(message)
        ctx.metrics.redriven(step_for(message))
    if messages:
        ctx.log.warning("reconciler re-drove %d stuck orders: %s", len(messages),
                        ", ".join(f"{step_for(m)}:{message_key(m)}" for m in messages[:20]))
    return {"rearmed": rearmed, "redriven": len(messages)}
