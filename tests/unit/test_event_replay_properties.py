"""Property tests of the replay/live merge in `local_runtime.streaming.follow_order`.

A client following an order gets the stored events after its `after`, then live ones, in seq
order, each once, until the terminal event, whether the hub's reader hands the next event on
itself (`deliver_now`, which may refuse: a full outbox) or wakes the follower. The live path
is unreliable on purpose here: a
fake hub (with the real `Subscription` and its bounded queue) delivers publishes out of order,
twice, or not at all, watchers overflow or are marked lagged, the client reconnects with any
`after`, and the order's events are stored while the follower starts. The fake repository
keeps the one guarantee the engine gives: an event is stored before it is published; and it
may be away (PostgreSQL down) for any of its reads, which the follower waits out.

The real `EventHub` runs here too, on a fake Redis connection: when its subscription comes back
after Redis was away, every follower reads what it missed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import msgspec
import pytest
import redis.exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_runtime import streaming
from local_runtime.hub import EventHub, Subscription
from local_runtime.streaming import follow_order
from shared.adapters.redis.publisher import event_channel, home_pattern, order_home
from shared.domain.events import Event, encode_event
from shared.domain.states import TERMINAL_STATUSES, Status

ORDER_ID = "00000000-0000-7000-8000-000000000042"
FOREIGN_ORDER_ID = "00000000-0000-7000-8000-000100000042"
"""Taken by another web process (its home, "0001", is not this hub's)."""
CATCH_UP_S = 0.005
FINISH_WITHIN_S = 5.0
NON_TERMINAL = sorted(frozenset(Status) - TERMINAL_STATUSES - {Status.PENDING})


@pytest.fixture(autouse=True)
def quick_catch_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost publish is found in the repository after this long instead of 5 s; a read that met
    an outage is tried again within milliseconds."""
    monkeypatch.setattr(streaming, "CATCH_UP_INTERVAL_S", CATCH_UP_S)
    monkeypatch.setattr(streaming, "RETRY_FIRST_S", CATCH_UP_S / 5)
    monkeypatch.setattr(streaming, "RETRY_MAX_S", CATCH_UP_S / 2)


class FakeHub:
    """EventHub's interface (watch/unwatch) over the real Subscription; `publish` is Redis fanning out."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.watchers: list[Subscription] = []
        self.watched = 0
        self.unwatched: list[Subscription] = []

    async def watch(self, order_id: str) -> Subscription:
        await asyncio.sleep(0)  # SUBSCRIBE's round trip: a publish meanwhile does not reach this watcher
        watcher = Subscription(order_id)
        watcher.queue = asyncio.Queue(self.queue_size)  # small, so the real overflow → lagged path runs
        self.watchers.append(watcher)
        self.watched += 1
        return watcher

    async def unwatch(self, watcher: Subscription) -> None:
        await asyncio.sleep(0)
        self.watchers.remove(watcher)
        self.unwatched.append(watcher)

    def publish(self, event: Event) -> None:
        for watcher in list(self.watchers):
            watcher.offer(event)

    def mark_lagged(self) -> None:
        for watcher in self.watchers:
            watcher.lagged = True


class FakeOrders:
    """The repository's `events(order_id, after)`: what PostgreSQL has stored so far, in seq order.
    The reads numbered in `away` (1, 2, …), and every read while `down`, fail as with PostgreSQL
    gone."""

    def __init__(self, stored: list[Event], away: frozenset[int] = frozenset()) -> None:
        self.stored = list(stored)
        self.reads = self.failed = 0
        self.away, self.down = away, False

    async def events(self, order_id: str, after_seq: int = 0) -> list[Event]:
        assert order_id in (ORDER_ID, FOREIGN_ORDER_ID)
        self.reads += 1
        await asyncio.sleep(0)  # a round trip: more may be stored meanwhile
        if self.down or self.reads in self.away:
            self.failed += 1
            raise ConnectionRefusedError("PostgreSQL is away")
        return [e for e in self.stored if e.seq > after_seq]


def order_events(statuses: list[str]) -> list[Event]:
    return [
        Event(ORDER_ID, seq, status, f"2026-11-25T12:00:00.{seq:03d}Z", {"seq": seq})
        for seq, status in enumerate(statuses, start=1)
    ]


@dataclass(frozen=True)
class Step:
    """What happens to one newly stored event, then the pause before the next one."""

    publish: str  # once | drop (a lost publish) | twice | hold (arrives later: out of order)
    release: int  # how many held events arrive (in random order) after this step
    lag: bool  # the hub marks every watcher lagged (as after an overflow elsewhere)
    pause: str  # yield | none | short | long (longer than the catch-up interval)


@dataclass
class Scenario:
    events: list[Event]
    stored_before: int
    after: int
    queue_size: int
    slow_client: bool
    direct: str  # off | always | flaky: how `deliver_now` behaves (flaky: refuses every other event)
    steps: list[Step]
    late_order: list[int] = field(default_factory=list)
    away: frozenset[int] = frozenset()
    """The repository reads that fail (PostgreSQL away)."""


steps = st.builds(
    Step,
    publish=st.sampled_from(["once", "once", "drop", "twice", "hold"]),
    release=st.integers(0, 3),
    lag=st.sampled_from([False, False, False, True]),
    pause=st.sampled_from(["yield", "yield", "none", "short", "long"]),
)


@st.composite
def scenarios(draw, after=None):
    n = draw(st.integers(1, 12))
    statuses = ["pending", *draw(st.lists(st.sampled_from(NON_TERMINAL), min_size=n - 1, max_size=n - 1))]
    statuses[-1] = draw(st.sampled_from(sorted(TERMINAL_STATUSES)))  # the last is terminal (even seq 1 if n == 1)
    events = order_events(statuses)
    stored_before = draw(st.integers(0, n))
    # Past the last seq too: a client reconnecting after the terminal event, or with a wrong `after`.
    chosen_after = draw(after if after is not None else st.integers(0, n + 3))
    live = draw(st.lists(steps, min_size=n - stored_before, max_size=n - stored_before))
    return Scenario(
        events=events, stored_before=stored_before, after=chosen_after, queue_size=draw(st.integers(1, 8)),
        slow_client=draw(st.booleans()), direct=draw(st.sampled_from(["off", "always", "flaky"])), steps=live,
        late_order=draw(st.permutations(range(n))),
        away=draw(st.one_of(st.just(frozenset()), st.frozensets(st.integers(1, 12), max_size=8))),
    )


async def pause(kind: str) -> None:
    if kind == "yield":
        await asyncio.sleep(0)
    elif kind == "short":
        await asyncio.sleep(CATCH_UP_S / 5)
    elif kind == "long":
        await asyncio.sleep(CATCH_UP_S * 2)


async def produce(scenario: Scenario, hub: FakeHub, orders: FakeOrders) -> None:
    """The engine storing and publishing the rest of the order's events, unreliably."""
    held: list[Event] = []
    for event, step in zip(scenario.events[scenario.stored_before:], scenario.steps):
        orders.stored.append(event)  # stored first, then published
        if step.publish in ("once", "twice"):
            hub.publish(event)
        if step.publish == "twice":
            hub.publish(event)
        if step.publish == "hold":
            held.append(event)
        held.sort(key=lambda e: scenario.late_order.index(e.seq - 1))
        for _ in range(min(step.release, len(held))):
            hub.publish(held.pop())
        if step.lag:
            hub.mark_lagged()
        await pause(step.pause)
    for event in held:  # whatever is still held arrives at the end (perhaps after the follower stopped)
        hub.publish(event)


async def follow(scenario: Scenario) -> tuple[list[Event], FakeHub, FakeOrders]:
    hub = FakeHub(scenario.queue_size)
    orders = FakeOrders(scenario.events[:scenario.stored_before], scenario.away)
    delivered: list[Event] = []
    notices: list[BaseException] = []

    async def on_outage(exc: BaseException) -> None:
        notices.append(exc)

    offers = 0

    async def deliver(event: Event) -> None:
        delivered.append(event)
        if scenario.slow_client:
            await asyncio.sleep(0)  # a slow socket: the watcher's queue fills meanwhile

    def deliver_now(event: Event) -> bool:
        nonlocal offers
        offers += 1
        if scenario.direct == "flaky" and offers % 2:
            return False
        delivered.append(event)
        return True

    producer = asyncio.create_task(produce(scenario, hub, orders))
    now = None if scenario.direct == "off" else deliver_now
    try:
        await asyncio.wait_for(follow_order(ORDER_ID, scenario.after, hub, orders, deliver, deliver_now=now,
                                            on_outage=on_outage), FINISH_WITHIN_S)
    finally:
        await producer
    # Told of an outage if a read met one, at most once per failed read.
    assert bool(notices) == bool(orders.failed) and len(notices) <= orders.failed
    return delivered, hub, orders


@given(scenarios())
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_delivers_each_event_after_the_given_seq_once_in_order_and_stops_at_the_terminal_one(scenario) -> None:
    delivered, hub, _orders = asyncio.run(follow(scenario))
    expected = scenario.events[scenario.after:]  # nothing when `after` is at or past the terminal event
    assert [e.seq for e in delivered] == [e.seq for e in expected]
    assert delivered == expected
    assert all(e.status not in TERMINAL_STATUSES for e in delivered[:-1])
    if delivered:
        assert delivered[-1].status in TERMINAL_STATUSES
    # It unsubscribed exactly the watcher it subscribed, also when it stopped early.
    assert hub.watched == 1 and len(hub.unwatched) == 1 and hub.watchers == []


@given(scenarios(after=st.just(0)))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_follower_from_the_start_gets_the_whole_log(scenario) -> None:
    delivered, _hub, orders = asyncio.run(follow(scenario))
    assert delivered == orders.stored == scenario.events


@given(st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_reconnecting_with_the_last_seq_seen_resumes_without_loss_or_repeat(data) -> None:
    """A client drops its socket after some events and reconnects with ?after=<last seq seen>, maybe
    several times: what it received, glued together, is the whole log once."""
    scenario = data.draw(scenarios(after=st.just(0)))
    received: list[Event] = []
    while not received or received[-1].status not in TERMINAL_STATUSES:
        take = data.draw(st.integers(1, len(scenario.events) - len(received)))

        async def partial() -> list[Event]:
            got: list[Event] = []
            orders = FakeOrders(scenario.events)
            hub = FakeHub(scenario.queue_size)

            async def deliver(event: Event) -> None:
                got.append(event)
                if len(got) == take and event.status not in TERMINAL_STATUSES:
                    raise ConnectionResetError("client went away")

            last = received[-1].seq if received else 0
            with pytest.raises(ConnectionResetError) if len(received) + take < len(scenario.events) else _nothing():
                await asyncio.wait_for(follow_order(ORDER_ID, last, hub, orders, deliver), FINISH_WITHIN_S)
            assert hub.watchers == []  # unsubscribed even though the client went away
            return got

        received.extend(asyncio.run(partial()))
    assert received == scenario.events


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:
        return False


@pytest.mark.parametrize("beyond", [0, 1, 5])
async def test_reconnecting_after_the_terminal_event_ends_at_once(beyond: int) -> None:
    """Found by this file: with after_seq at or past the terminal event's seq the catch-up found
    nothing, so follow_order never saw a terminal event and polled the repository every
    CATCH_UP_INTERVAL_S forever (the /stream socket never closed)."""
    events = order_events(["pending", "routing", "routed", "building", "submitted", "confirmed"])
    hub, orders, delivered = FakeHub(8), FakeOrders(events), []

    async def deliver(event: Event) -> None:
        delivered.append(event)

    await asyncio.wait_for(follow_order(ORDER_ID, len(events) + beyond, hub, orders, deliver), 0.5)
    assert delivered == []


async def test_an_overflowed_watcher_catches_up_at_once_not_after_the_interval(monkeypatch) -> None:
    """The lagged flag is what makes an overflow cheap: events dropped from a full queue (here the
    terminal one) are read from the repository at the next queue read, not after the catch-up
    interval (set to 30 s here)."""
    monkeypatch.setattr(streaming, "CATCH_UP_INTERVAL_S", 30.0)
    events = order_events(["pending", "routing", "routed", "building", "submitted", "confirmed"])
    hub, orders, delivered = FakeHub(2), FakeOrders([]), []

    async def deliver(event: Event) -> None:
        delivered.append(event)

    follower = asyncio.create_task(follow_order(ORDER_ID, 0, hub, orders, deliver))
    while not hub.watchers or orders.reads == 0:
        await asyncio.sleep(0)
    for _ in range(5):  # let the first catch-up (nothing stored yet) finish: it now waits on the queue
        await asyncio.sleep(0)
    assert delivered == [] and not follower.done()
    for event in events:  # a burst: the queue keeps 2, the rest is dropped and the watcher marked lagged
        orders.stored.append(event)
        hub.publish(event)
    await asyncio.wait_for(follower, 1.0)
    assert delivered == events


@pytest.mark.parametrize("terminal_published", [True, False], ids=["published", "publish-lost"])
async def test_an_after_beyond_an_order_in_progress_ends_when_the_order_does(terminal_published: bool) -> None:
    """Found by this file: with an `after` past the last seq of an order still in progress, every
    later event (the terminal one too) had seq <= last and was skipped, so follow_order never
    returned and the /stream socket stayed open, polling the repository, until the client left."""
    events = order_events(["pending", "routing", "routed", "building", "submitted", "confirmed"])
    hub, orders, delivered = FakeHub(8), FakeOrders(events[:2]), []

    async def deliver(event: Event) -> None:
        delivered.append(event)

    follower = asyncio.create_task(follow_order(ORDER_ID, len(events) + 3, hub, orders, deliver))
    for event in events[2:]:
        await asyncio.sleep(CATCH_UP_S)
        orders.stored.append(event)
        if terminal_published or event.status not in TERMINAL_STATUSES:
            hub.publish(event)
    await asyncio.wait_for(follower, 0.5)
    assert delivered == []


async def test_events_in_order_are_handed_on_by_the_hub_without_waking_the_follower() -> None:
    """The fast path: while the follower waits, each next event goes out from the hub's own call;
    the queue (and the follower's task) only sees the nudge that ends the stream."""
    events = order_events(["pending", "routing", "routed", "building", "submitted", "confirmed"])
    hub, orders = FakeHub(8), FakeOrders([])
    watcher = await hub.watch(ORDER_ID)
    queued, direct = [], []

    async def deliver(event: Event) -> None:
        queued.append(event)

    def deliver_now(event: Event) -> bool:
        direct.append(event)
        return True

    follower = asyncio.create_task(follow_order(ORDER_ID, 0, hub, orders, deliver, watcher, deliver_now))
    await asyncio.sleep(0)  # the follower now waits on its queue
    for event in events:
        orders.stored.append(event)
        hub.publish(event)
        assert watcher.queue.qsize() == (1 if event.status in TERMINAL_STATUSES else 0)
    await asyncio.wait_for(follower, 1.0)
    assert direct == events and queued == []
    assert watcher.direct is None and hub.watchers == []


# --- outages: PostgreSQL away while an order is followed, the hub's Redis subscription lost ------

FLOW = ["pending", "routing", "routed", "building", "submitted", "confirmed"]


async def test_a_follower_waits_out_postgres_and_resumes_after_the_last_seq_it_sent() -> None:
    """The issue's socket: PostgreSQL goes away after `building`, for many retries. The client is told
    once that the order is still followed (not that nothing was accepted), then gets `submitted` and
    `confirmed` once PostgreSQL is back, though their publishes were lost."""
    events = order_events(FLOW)
    hub, orders = FakeHub(8), FakeOrders([])
    watcher = await hub.watch(ORDER_ID)
    sent: list[int | str] = []

    async def deliver(event: Event) -> None:
        sent.append(event.seq)

    async def on_outage(exc: BaseException) -> None:
        sent.append(f"notice: {type(exc).__name__}")

    follower = asyncio.create_task(follow_order(ORDER_ID, 0, hub, orders, deliver, watcher, on_outage=on_outage))
    for event in events[:4]:
        orders.stored.append(event)
        hub.publish(event)
    orders.down = True
    while orders.failed < 10:  # the quiet timer's catch-up meets the outage, and keeps trying
        await asyncio.sleep(CATCH_UP_S / 5)
    assert not follower.done()
    orders.stored += events[4:]  # stored as PostgreSQL returns; published while the hub was away: lost
    orders.down = False
    await asyncio.wait_for(follower, FINISH_WITHIN_S)
    assert sent == [1, 2, 3, 4, "notice: ConnectionRefusedError", 5, 6]


class FakePubSub:
    """What EventHub uses of redis-py's asyncio PubSub. `reconnect()` does what redis-py does when its
    connection comes back: each connect callback runs (redis-py's own sends the subscriptions
    again), then Redis confirms each channel and pattern."""

    def __init__(self) -> None:
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.connection = self
        self.callbacks: list = []
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.down = False

    async def psubscribe(self, *patterns: str) -> None:
        self.patterns.update(dict.fromkeys(p.encode() for p in patterns))

    async def subscribe(self, *channels: str) -> None:
        if self.down:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.channels.update(dict.fromkeys(c.encode() for c in channels))

    async def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            self.channels.pop(channel.encode(), None)

    def register_connect_callback(self, callback) -> None:
        self.callbacks.append(callback)

    def deregister_connect_callback(self, callback) -> None:
        self.callbacks.remove(callback)

    async def get_message(self, timeout: float | None = None) -> dict:
        return await self.inbox.get()

    async def aclose(self) -> None:
        pass

    def reconnect(self) -> None:
        self.down = False
        for callback in self.callbacks:
            callback(self)
        for kind, names in (("subscribe", self.channels), ("psubscribe", self.patterns)):
            for name in names:
                self.inbox.put_nowait({"type": kind, "channel": name, "data": 1, "pattern": None})

    def publish(self, channel: str, event: Event) -> None:
        self.inbox.put_nowait({"type": "message", "channel": channel.encode(), "data": encode_event(event),
                               "pattern": None})


class FakeRedis:
    def __init__(self) -> None:
        self.pubsub_made = FakePubSub()

    def pubsub(self) -> FakePubSub:
        return self.pubsub_made


@pytest.fixture
async def hub_on_fake_redis(monkeypatch: pytest.MonkeyPatch):
    """The real EventHub of the web process whose home is ORDER_ID's, on a fake Redis; only a nudge
    can make a follower read PostgreSQL here (the quiet timer waits 30 s)."""
    monkeypatch.setattr(streaming, "CATCH_UP_INTERVAL_S", 30.0)
    redis = FakeRedis()
    resubscribed: list[bool] = []
    hub = EventHub(redis, "ns", order_home(ORDER_ID), on_resubscribed=lambda: resubscribed.append(True))
    await hub.start()
    yield hub, redis.pubsub_made, resubscribed
    await hub.stop()


async def wait_for(condition, seconds: float = 1.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)


async def test_once_the_hub_is_subscribed_again_every_follower_reads_what_it_missed(hub_on_fake_redis) -> None:
    """Redis restarted: what was published while the hub's subscription was down is lost. When the
    last subscription is confirmed again, each follower is nudged and reads it from PostgreSQL
    (not 30 s later), and the hub's owner hears of it once."""
    hub, pubsub, resubscribed = hub_on_fake_redis
    events = order_events(FLOW)
    orders, delivered = FakeOrders([]), []

    async def deliver(event) -> None:
        delivered.append(event.seq)

    watcher = await hub.watch(ORDER_ID)
    follower = asyncio.create_task(follow_order(ORDER_ID, 0, hub, orders, deliver, watcher))
    for event in events[:2]:
        orders.stored.append(event)
        pubsub.publish(event_channel("ns", ORDER_ID), event)
    await wait_for(lambda: delivered == [1, 2])
    orders.stored += events[2:]  # published while Redis was away: nobody heard them
    pubsub.reconnect()
    await asyncio.wait_for(follower, 1.0)
    assert delivered == [1, 2, 3, 4, 5, 6] and resubscribed == [True]
    assert pubsub.patterns == {home_pattern("ns", order_home(ORDER_ID)).encode(): None}


async def test_an_order_of_another_process_watched_while_redis_is_away_is_subscribed_once_it_is_back(
        hub_on_fake_redis) -> None:
    """Following another web process's order needs a SUBSCRIBE: with Redis away it cannot be sent, yet
    the stream starts (from PostgreSQL) and its channel is subscribed as soon as Redis is back."""
    hub, pubsub, _ = hub_on_fake_redis
    events = [msgspec.structs.replace(e, order_id=FOREIGN_ORDER_ID) for e in order_events(FLOW)]
    orders, delivered = FakeOrders(events[:1]), []

    async def deliver(event) -> None:
        delivered.append(event.seq)

    pubsub.down = True
    follower = asyncio.create_task(follow_order(FOREIGN_ORDER_ID, 0, hub, orders, deliver))
    await wait_for(lambda: delivered == [1])
    assert pubsub.channels == {}
    pubsub.reconnect()
    channel = event_channel("ns", FOREIGN_ORDER_ID)
    await wait_for(lambda: channel.encode() in pubsub.channels)
    for event in events[1:]:  # from now on, live
        orders.stored.append(event)
        pubsub.publish(channel, event)
    await asyncio.wait_for(follower, 1.0)
    assert delivered == [1, 2, 3, 4, 5, 6] and orders.reads == 2  # the first read, and the nudge's
    await wait_for(lambda: pubsub.channels == {})  # unsubscribed with its last follower
