"""The order life cycle table: allowed and refused transitions, sources, acyclicity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.states import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    InvalidTransition,
    Status,
    can_transition,
    check_transition,
    sources_of,
)

ALLOWED = sorted((current, new) for current, targets in TRANSITIONS.items() for new in targets)
NON_TERMINAL = frozenset(Status) - TERMINAL_STATUSES


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(Status)


def test_terminal_statuses_are_exactly_those_with_no_way_out() -> None:
    assert TERMINAL_STATUSES == {s for s, targets in TRANSITIONS.items() if not targets}


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_allowed_transition_passes_check(current: Status, new: Status) -> None:
    check_transition(current, new)  # must not raise
    assert can_transition(current, new)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_terminal_status_allows_nothing(terminal: Status) -> None:
    for new in Status:
        with pytest.raises(InvalidTransition):
            check_transition(terminal, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Status.SUBMITTED, Status.ROUTING),  # no going back once on chain
        (Status.SUBMITTED, Status.CANCELLED),  # a sent transaction cannot be cancelled
        (Status.PENDING, Status.SUBMITTED),  # cannot skip routing and building
        (Status.PENDING, Status.CONFIRMED),
        (Status.ROUTING, Status.BUILDING),  # must be routed first
        (Status.ROUTING, Status.CANCELLED),  # only a waiting order can be cancelled
        (Status.WAITING, Status.ROUTING),  # must be triggered first
        (Status.CONFIRMED, Status.FAILED),
        (Status.FAILED, Status.PENDING),
        (Status.PENDING, Status.PENDING),  # no self loops
    ],
)
def test_refused_transition_raises_with_current_and_new_in_message(current: Status, new: Status) -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, new)
    assert str(caught.value) == f"{current.value} -> {new.value}"
    assert (caught.value.current, caught.value.new) == (current, new)


def test_refused_message_reads_submitted_arrow_routing() -> None:
    with pytest.raises(InvalidTransition, match=r"^submitted -> routing$"):
        check_transition(Status.SUBMITTED, Status.ROUTING)


def test_routing_is_reached_from_pending_or_triggered() -> None:
    assert sources_of(Status.ROUTING) == {Status.PENDING, Status.TRIGGERED}


def test_failed_is_reached_from_every_non_terminal_status() -> None:
    assert sources_of(Status.FAILED) == NON_TERMINAL


def test_cancelled_is_reached_only_before_any_step_picked_the_order_up() -> None:
    assert sources_of(Status.CANCELLED) == {Status.PENDING, Status.WAITING}


def test_only_waiting_may_repeat_itself() -> None:
    assert [s for s in Status if s in TRANSITIONS[s]] == [Status.WAITING]


def test_pending_is_reached_from_nowhere() -> None:
    assert sources_of(Status.PENDING) == frozenset()


@given(st.data())
def test_random_walk_from_pending_never_revisits_and_stops_at_terminal(data: st.DataObject) -> None:
    current, visited = Status.PENDING, [Status.PENDING]
    while current not in TERMINAL_STATUSES:
        # waiting -> waiting only records a note on a resting order; the life cycle has no other loop.
        new = data.draw(st.sampled_from(sorted(TRANSITIONS[current] - {current})))
        check_transition(current, new)
        assert new not in visited, f"cycle: {visited} -> {new}"
        visited.append(new)
        current = new
    # Once terminal, whatever is tried next is refused.
    attempt = data.draw(st.sampled_from(list(Status)))
    with pytest.raises(InvalidTransition):
        check_transition(current, attempt)
    assert len(visited) <= len(Status)
