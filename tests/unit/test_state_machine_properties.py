"""Property tests of the order life cycle: random sequences of attempted status changes applied
through the real transition table (shared/states.py) and the in-memory repository's conditional
`transition` (tests/fakes.py), which mirrors the PostgreSQL one (`UPDATE … WHERE status = ANY(sources)`).

What must hold whatever is attempted, in whatever order, however often:
* nothing leaves a terminal status;
* an accepted change appends exactly one event, with seq = previous + 1 (gapless);
* a refused change writes nothing (neither the record nor the log);
* from every reachable status some terminal status is reachable;
* cancelled and expired are entered only from pending or waiting;
* a message delivered again (redelivery, a retry, the reconciler racing the queue) never
  makes the event log longer than delivering it once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from functions import intake, trigger
from shared.domain.messages import ArmRequest, LaunchRefused, LimitOrderRequest, NewOrder, TriggerFired
from shared.domain.orders import OrderRecord
from shared.domain.states import TERMINAL_STATUSES, TRANSITIONS, Status, can_transition, sources_of
from tests.fakes import InMemoryOrderRepository, fake_context

ORDER_ID = "00000000-0000-7000-8000-000000000001"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STATUSES = sorted(Status)
NON_TERMINAL = sorted(frozenset(Status) - TERMINAL_STATUSES)

# Optional column updates that ride along with a change (they must land only with an accepted one).
changes = st.fixed_dictionaries(
    {},
    optional={
        "attempts": st.integers(0, 5),
        "failure_reason": st.sampled_from(["slippage", "no_route", "boom"]),
        "venue": st.sampled_from(["raydium", "meteora", "split"]),
        "tx_signature": st.text("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", min_size=1, max_size=8),
    },
)
# An attempt is either any status at all or (so that walks get deep) one the table allows from
# wherever the order is then: (allowed?, index, column updates), resolved by `target`.
attempts = st.lists(st.tuples(st.booleans(), st.integers(0, len(STATUSES) - 1), changes), max_size=40)


def target(current: Status, allowed: bool, index: int) -> Status:
    moves = sorted(TRANSITIONS[current])
    return moves[index % len(moves)] if allowed and moves else STATUSES[index]


def run(coroutine):
    return asyncio.run(coroutine)


def new_order() -> OrderRecord:
    return OrderRecord(
        id=ORDER_ID, client_id="c", kind="limit", side="sell", status=Status.PENDING,
        base_mint="SOL", quote_mint="USDC", input_mint="SOL", output_mint="USDC",
        amount_in=1_500_000_000, slippage_bps=50, created_at=T0, updated_at=T0,
    )


async def fresh_repository() -> InMemoryOrderRepository:
    repository = InMemoryOrderRepository()
    assert await repository.create(new_order(), {"n": 0}) is not None
    return repository


async def attempt(repository: InMemoryOrderRepository, new: Status, extra: dict[str, Any], n: int):
    change = await repository.transition(ORDER_ID, new, T0 + timedelta(milliseconds=n), {"n": n}, extra)
    return None if change is None else change.event


def reachable_from(start: Status) -> set[Status]:
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in TRANSITIONS[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def path_to_terminal(start: Status) -> list[Status]:
    """A shortest walk through the table from `start` to some terminal status."""
    previous: dict[Status, Status | None] = {start: None}
    todo = deque([start])
    while todo:
        current = todo.popleft()
        if current in TERMINAL_STATUSES:
            path = []
            while previous[current] is not None:
                path.append(current)
                current = previous[current]
            return path[::-1]
        for nxt in sorted(TRANSITIONS[current]):
            if nxt not in previous:
                previous[nxt] = current
                todo.append(nxt)
    raise AssertionError(f"no terminal status reachable from {start}")


# --- every attempted change, accepted or refused ---------------------------------------------------


@given(attempts, st.lists(st.none() | st.frozensets(st.sampled_from(STATUSES)), max_size=3))
@settings(max_examples=300)
def test_random_attempts_follow_the_table_gaplessly_and_refusals_write_nothing(tried, narrowed) -> None:
    """`narrowed`: the `only_from` restrictions some attempts carry (None: the table alone)."""
    async def scenario() -> None:
        repository = await fresh_repository()
        for n, (allowed, index, extra) in enumerate(tried, start=1):
            before_order = repository.orders[ORDER_ID]
            new = target(before_order.status, allowed, index)
            before_log = list(repository.log[ORDER_ID])
            only_from = narrowed[n % len(narrowed)] if narrowed else None
            change = await repository.transition(ORDER_ID, new, T0 + timedelta(milliseconds=n), {"n": n}, extra,
                                                 only_from)
            event = None if change is None else change.event
            after_order, after_log = repository.orders[ORDER_ID], repository.log[ORDER_ID]
            # The repository decides exactly as the pure table does (narrowed by `only_from`, if given).
            permitted = can_transition(before_order.status, new) and (
                only_from is None or before_order.status in only_from
            )
            assert (event is not None) == permitted, (before_order.status, new, only_from)
            if event is None:
                assert after_order == before_order  # no status, seq or column changed
                assert after_log == before_log  # no event written
                continue
            assert event.seq == before_order.last_seq + 1 == before_log[-1].seq + 1
            assert after_log == [*before_log, event]  # exactly one event appended
            assert (event.status, event.data) == (new, {"n": n})
            assert after_order == replace(before_order, status=new, last_seq=event.seq,
                                          updated_at=after_order.updated_at, **extra)
        log = repository.log[ORDER_ID]
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        assert repository.orders[ORDER_ID].last_seq == len(log)
        assert repository.orders[ORDER_ID].status == log[-1].status
        for before, after in zip(log, log[1:]):
            assert can_transition(Status(before.status), Status(after.status))

    run(scenario())


@given(attempts)
def test_nothing_leaves_a_terminal_status(tried) -> None:
    async def scenario() -> None:
        repository = await fresh_repository()
        for n, (allowed, index, extra) in enumerate(tried, start=1):
            was = repository.orders[ORDER_ID].status
            new = target(was, allowed, index)
            event = await attempt(repository, new, extra, n)
            if was in TERMINAL_STATUSES:
                assert event is None
                assert repository.orders[ORDER_ID].status == was
        log = repository.log[ORDER_ID]
        terminal_at = [i for i, e in enumerate(log) if e.status in TERMINAL_STATUSES]
        assert terminal_at in ([], [len(log) - 1])  # at most one terminal event, and it is the last

    run(scenario())


@given(attempts)
def test_cancelled_and_expired_are_entered_only_from_pending_or_waiting(tried) -> None:
    async def scenario() -> None:
        repository = await fresh_repository()
        for n, (allowed, index, extra) in enumerate(tried, start=1):
            was = repository.orders[ORDER_ID].status
            new = target(was, allowed, index)
            if await attempt(repository, new, extra, n) is not None and new in (Status.CANCELLED, Status.EXPIRED):
                assert was in (Status.PENDING, Status.WAITING)
        log = repository.log[ORDER_ID]
        for before, after in zip(log, log[1:]):
            if after.status in (Status.CANCELLED, Status.EXPIRED):
                assert before.status in (Status.PENDING, Status.WAITING)

    run(scenario())
    assert sources_of(Status.EXPIRED) == {Status.WAITING}
    assert sources_of(Status.CANCELLED) == {Status.PENDING, Status.WAITING}


@given(attempts, st.integers(0, 40))
def test_from_any_reachable_status_a_terminal_status_is_reachable(tried, stop) -> None:
    """Walk anywhere with random attempts, then finish: the shortest way out through the table is
    accepted step by step by the repository and ends terminal, in at most |statuses| steps."""

    async def scenario() -> None:
        repository = await fresh_repository()
        for n, (allowed, index, extra) in enumerate(tried[:stop], start=1):
            await attempt(repository, target(repository.orders[ORDER_ID].status, allowed, index), extra, n)
            assert reachable_from(repository.orders[ORDER_ID].status) & TERMINAL_STATUSES
        here = repository.orders[ORDER_ID].status
        assert reachable_from(here) & TERMINAL_STATUSES
        way_out = path_to_terminal(here)
        assert len(way_out) < len(Status)
        for n, new in enumerate(way_out, start=stop + 1):
            assert await attempt(repository, new, {}, n) is not None
        assert repository.orders[ORDER_ID].status in TERMINAL_STATUSES

    run(scenario())


def test_every_status_reachable_from_pending_can_still_finish() -> None:
    reachable = reachable_from(Status.PENDING)
    assert reachable == set(Status)  # no dead rows in the table
    for status in reachable:
        assert reachable_from(status) & TERMINAL_STATUSES, status


# --- redelivery ------------------------------------------------------------------------------------


@st.composite
def deliveries(draw, targets=st.sampled_from(STATUSES)):
    """A stream of messages (each an attempted target status, with an id) and the same stream with
    redeliveries: every message may be delivered again, any number of times, at any later point."""
    stream = draw(st.lists(targets, max_size=25))
    merged: list[tuple[int, Status]] = []
    pending_copies: list[tuple[int, Status]] = []
    for message_id, target in enumerate(stream):
        merged.append((message_id, target))
        copies = draw(st.integers(0, 2))
        pending_copies.extend([(message_id, target)] * copies)
        # Some earlier redeliveries arrive now, interleaved with first deliveries ("concurrently").
        while pending_copies and draw(st.booleans()):
            merged.append(pending_copies.pop(draw(st.integers(0, len(pending_copies) - 1))))
    draw(st.randoms()).shuffle(pending_copies)
    merged.extend(pending_copies)  # the rest arrive after everything else
    return stream, merged


async def apply(stream: list[tuple], skip_already_accepted: bool) -> list[Status]:
    """Deliver (message id, target[, only_from]) messages in order; the statuses logged."""
    repository = await fresh_repository()
    accepted: set[int] = set()
    for n, (message_id, target, *only_from) in enumerate(stream, start=1):
        if skip_already_accepted and message_id in accepted:
            continue  # a consumer that remembers what it already did
        at = T0 + timedelta(milliseconds=n)
        if await repository.transition(ORDER_ID, target, at, {"n": n}, {}, *only_from) is not None:
            accepted.add(message_id)
    return [Status(e.status) for e in repository.log[ORDER_ID]]


@given(deliveries(targets=st.sampled_from(STATUSES)))
@settings(max_examples=300)
def test_a_redelivered_accepted_change_is_a_no_op_except_the_waiting_note(data) -> None:
    """The conditional transition alone makes redelivery harmless: a duplicate of a change that
    was already applied is refused, because the table (apart from waiting → waiting) has no cycle.
    So the log of the stream with duplicates equals that of a consumer that drops every duplicate
    of an already-applied message — except when a duplicate `waiting` finds the order still
    waiting: waiting → waiting is in the table on purpose (a note per refused launch), and the
    table cannot tell a note from a redelivered one."""
    _stream, merged = data
    with_duplicates = run(apply(merged, skip_already_accepted=False))
    deduplicated = run(apply(merged, skip_already_accepted=True))
    if Status.WAITING not in {target for _, target in merged}:
        assert with_duplicates == deduplicated
    else:
        assert len(with_duplicates) >= len(deduplicated)
        extra = list(with_duplicates)
        for status in deduplicated:  # deduplicated is a subsequence; what is extra is only waiting notes
            extra.remove(status)
        assert set(extra) <= {Status.WAITING}


ARM_ONLY_FROM = frozenset({Status.PENDING})
"""How `trigger` arms an order: pending → waiting, and only that (`only_from`)."""


@st.composite
def pipeline_deliveries(draw):
    """What the engine actually sends: a message for a status is made while the order is in one of
    that status's sources, and delivered then (timely) or after the order moved on (stale: e.g. a
    cancel that lost the race to the trigger) — never before, and never when another branch could
    make it timely again. A `waiting` made while pending is the arm (only from pending); one made
    while waiting is a note. Each message but the notes may then be delivered again later,
    interleaved with the others. Messages: (id, target, only_from)."""
    current, visited, stream = Status.PENDING, [Status.PENDING], []
    for _ in range(draw(st.integers(0, 12))):
        ahead = reachable_from(current)
        made_earlier = set().union(*(TRANSITIONS[v] for v in visited))
        stale = {s for s in made_earlier - TRANSITIONS[current] if not ahead & sources_of(s)}
        choices = sorted(TRANSITIONS[current] | stale)
        if not choices:
            break
        target = draw(st.sampled_from(choices))
        is_note = target == Status.WAITING and current == Status.WAITING
        only_from = ARM_ONLY_FROM if target == Status.WAITING and not is_note else None
        stream.append((target, only_from))
        if target in TRANSITIONS[current] and (only_from is None or current in only_from):
            current = target
            visited.append(current)
    merged: list[tuple[int, Status, frozenset | None]] = []
    later: list[tuple[int, Status, frozenset | None]] = []
    for message_id, (target, only_from) in enumerate(stream):
        merged.append((message_id, target, only_from))
        if not (target == Status.WAITING and only_from is None):  # a note is not redelivered here
            later.extend([(message_id, target, only_from)] * draw(st.integers(0, 2)))
        while later and draw(st.booleans()):
            merged.append(later.pop(draw(st.integers(0, len(later) - 1))))
    draw(st.randoms()).shuffle(later)
    merged.extend(later)
    return [(i, target, only_from) for i, (target, only_from) in enumerate(stream)], merged


@given(pipeline_deliveries())
@settings(max_examples=300)
def test_redelivering_the_pipelines_messages_never_lengthens_the_log(data) -> None:
    """Messages as the pipeline sends them (never before their source status), each possibly
    delivered again later, interleaved with the others: the log is exactly the log of delivering
    each message once."""
    stream, merged = data
    once = run(apply(stream, skip_already_accepted=False))
    assert run(apply(merged, skip_already_accepted=False)) == once
    waiting_notes = sum(1 for _, target, _only_from in stream if target == Status.WAITING)
    assert len(once) <= len(Status) + waiting_notes


# --- the same property through the real `trigger` step ---------------------------------------------


async def resting_limit_order(ctx) -> str:
    request = LimitOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1.5", limit_price="180.5",
                                expires_at=60)
    arm = await intake.handle(NewOrder(request, "c", "k"), ctx)
    assert isinstance(arm, ArmRequest)
    return arm.order_id


TRIGGER_MESSAGES = st.sampled_from(["arm", "fire", "cancel"])


async def deliver(kind: str, order_id: str, ctx) -> None:
    if kind == "arm":
        await trigger.handle(ArmRequest(order_id), ctx)
    elif kind == "fire":
        await trigger.handle(TriggerFired(order_id, {"price": "181"}), ctx)
    else:
        await trigger.cancel(order_id, ctx)


async def statuses_after(messages: list[str]) -> list[str]:
    ctx = fake_context()
    order_id = await resting_limit_order(ctx)
    for kind in messages:
        await deliver(kind, order_id, ctx)
    return [e.status for e in await ctx.orders.events(order_id)]


@st.composite
def trigger_deliveries(draw, redeliver: st.SearchStrategy[str]):
    """The trigger step's messages for one limit order, in the order the engine sends them (arm
    first), each message of kind `redeliver` delivered again at a random later point."""
    stream = ["arm", *draw(st.lists(TRIGGER_MESSAGES.filter(lambda k: k != "arm"), max_size=3, unique=True))]
    merged = list(stream)
    for kind in stream:
        if draw(redeliver) == kind:
            first = merged.index(kind)
            merged.insert(draw(st.integers(first + 1, len(merged))), kind)
    return stream, merged


@given(trigger_deliveries(redeliver=st.sampled_from(["fire", "cancel"])))
def test_a_redelivered_firing_or_cancel_writes_nothing_more(data) -> None:
    stream, merged = data
    assert run(statuses_after(merged)) == run(statuses_after(stream))


@given(trigger_deliveries(redeliver=st.just("arm")))
def test_a_redelivered_arm_writes_nothing_more(data) -> None:
    """Found by this file: a redelivered ArmRequest (SAQ retry, or the reconciler re-driving a
    pending limit order while the first delivery still runs) was recorded again as waiting → waiting,
    which the table allows, storing and publishing a second `waiting`. Arming now moves only from
    pending (`only_from`)."""
    stream, merged = data
    assert run(statuses_after(merged)) == run(statuses_after(stream))


def test_a_redelivered_launch_refusal_is_one_note_per_delivery() -> None:
    """Documents what a repeated LaunchRefused does: each delivery is a note (waiting → waiting),
    so a redelivered refusal of the same launch is recorded twice. (No property claims otherwise:
    the table allows the note repeatedly, and the message carries no id to tell them apart.)"""

    async def scenario() -> list[str]:
        ctx = fake_context()
        order_id = await resting_limit_order(ctx)
        await deliver("arm", order_id, ctx)
        refusal = LaunchRefused(order_id, "minLiquidity", {"venue": "meteora"})
        await trigger.handle(refusal, ctx)
        await trigger.handle(refusal, ctx)
        return [e.status for e in await ctx.orders.events(order_id)]

    assert run(scenario()) == ["pending", "waiting", "waiting", "waiting"]
