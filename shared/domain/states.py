"""The order life cycle: every status, and the one table of allowed transitions."""

from __future__ import annotations

import functools
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    TRIGGERED = "triggered"
    ROUTING = "routing"
    ROUTED = "routed"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    PARTIALLY_FILLED = "partially_filled"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset(
    {Status.CONFIRMED, Status.PARTIALLY_FILLED, Status.FAILED, Status.CANCELLED, Status.EXPIRED}
)
RESTING_STATUSES = frozenset({Status.WAITING})
"""Waiting for a trigger (a price, a launch, the expiry): no step is due."""
PIPELINE_STATUSES = frozenset(Status) - TERMINAL_STATUSES - RESTING_STATUSES
"""A step is due: an order here for too long is stuck (the reconciler's business)."""

TRANSITIONS: dict[Status, frozenset[Status]] = {
    # A pending order may be cancelled before any step picks it up.
    Status.PENDING: frozenset({Status.ROUTING, Status.WAITING, Status.CANCELLED, Status.FAILED}),
    # waiting -> waiting records a note while the order rests (a sniper refusing a launch).
    Status.WAITING: frozenset({Status.WAITING, Status.TRIGGERED, Status.CANCELLED, Status.EXPIRED, Status.FAILED}),
    Status.TRIGGERED: frozenset({Status.ROUTING, Status.FAILED}),
    Status.ROUTING: frozenset({Status.ROUTED, Status.FAILED}),
    Status.ROUTED: frozenset({Status.BUILDING, Status.FAILED}),
    Status.BUILDING: frozenset({Status.SUBMITTED, Status.FAILED}),
    # A submitted transaction may land or not; nothing else can happen to it. With a split, some
    # legs may land and others not: the order ends partially filled.
    Status.SUBMITTED: frozenset({Status.CONFIRMED, Status.PARTIALLY_FILLED, Status.FAILED}),
    Status.CONFIRMED: frozenset(),
    Status.PARTIALLY_FILLED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, current: Status, new: Status) -> None:
        super().__init__(f"{current} -> {new}")
        self.current = current
        self.new = new


def can_transition(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]


def check_transition(current: Status, new: Status) -> None:
    if not can_transition(current, new):
        raise InvalidTransition(current, new)


@functools.cache  # the table is constant; this runs on every status change
def sources_of(new: Status) -> frozenset[Status]:
    """Every status from which `new` may be reached: the WHERE of a conditional update."""
    return frozenset(s for s, targets in TRANSITIONS.items() if new in targets)
