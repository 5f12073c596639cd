"""In-memory stand-ins for the functions' unit tests: repository, publisher, trigger index, clock, ids
(the market and its ledger: shared/venues/memory_store.py)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.context import Context
from shared.domain.events import Event, format_ts
from shared.domain.orders import UPDATABLE_FIELDS, OrderRecord
from shared.settings import Settings, SimulationSettings
from shared.domain.states import PIPELINE_STATUSES, Status, sources_of
from shared.adapters.sim.memory_store import MemoryMarketStore
from functions.bootstrap import Services, assemble
from shared.domain.clients import Admission, ApiClient
from shared.ports import Metrics, StatusChange


class FixedClock:
    """Starts at a fixed instant and moves 1 ms per reading, so events have distinct times."""

    def __init__(self, start: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) -> None:
        self._now = start

    def now(self) -> datetime:
        self._now += timedelta(milliseconds=1)
        return self._now


class SequentialIds:
    def __init__(self) -> None:
        self._n = 0

    def order_id(self) -> str:
        self._n += 1
        return f"00000000-0000-7000-8000-{self._n:012d}"


class ListPublisher:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self.orders: dict[str, OrderRecord] = {}
        self.log: dict[str, list[Event]] = {}
        self.reads = 0
        """Point reads (`get`) so far: a test can tell a step read nothing it did not need."""

    async def create(self, order: OrderRecord, data: dict[str, Any]) -> Event | None:
        if order.idempotency_key is not None and await self.find_by_key(order.client_id, order.idempotency_key):
            return None
        self.orders[order.id] = replace(order, status=Status.PENDING, last_seq=1)
        event = Event(order.id, 1, Status.PENDING, format_ts(order.created_at), data)
        self.log[order.id] = [event]
        return event

    async def find_by_key(self, client_id: str, idempotency_key: str) -> OrderRecord | None:
        return next(
            (o for o in self.orders.values() if o.client_id == client_id and o.idempotency_key == idempotency_key),
            None,
        )

    async def transition(
        self, order_id: str, new: Status, at: datetime, data: dict[str, Any], changes: dict[str, Any],
        only_from: frozenset[Status] | None = None,
    ) -> StatusChange | None:
        if set(changes) - UPDATABLE_FIELDS:
            raise ValueError(f"not updatable: {sorted(set(changes) - UPDATABLE_FIELDS)}")
        order = self.orders.get(order_id)
        allowed = sources_of(new) if only_from is None else sources_of(new) & only_from
        if order is None or order.status not in allowed:
            return None
        seq = order.last_seq + 1
        self.orders[order_id] = replace(order, status=new, last_seq=seq, updated_at=at, **changes)
        event = Event(order_id, seq, new, format_ts(at), data)
        self.log[order_id].append(event)
        return StatusChange(event, order.kind, order.created_at)

    async def get(self, order_id: str) -> OrderRecord | None:
        self.reads += 1
        return self.orders.get(order_id)

    async def moving_since(self, before: datetime, limit: int, statuses: frozenset[Status]) -> list[OrderRecord]:
        found = [o for o in self.orders.values()
                 if o.status in statuses & PIPELINE_STATUSES and o.updated_at < before]
        return sorted(found, key=lambda o: o.updated_at)[:limit]

    async def overdue(self, before: datetime, limit: int) -> list[OrderRecord]:
        found = [o for o in self.orders.values() if o.status == Status.WAITING and o.expires_at < before]
        return sorted(found, key=lambda o: o.expires_at)[:limit]

    async def waiting_after(self, after_id: str | None, limit: int) -> list[OrderRecord]:
        found = [o for o in self.orders.values() if o.status == Status.WAITING and o.id > (after_id or "")]
        return sorted(found, key=lambda o: o.id)[:limit]

    async def recent(self, client_id: str, before: str | None, limit: int) -> list[OrderRecord]:
        found = [o for o in self.orders.values() if o.client_id == client_id and (before is None or o.id < before)]
        return sorted(found, key=lambda o: o.id, reverse=True)[:limit]

    async def events(self, order_id: str, after_seq: int = 0) -> list[Event]:
        return [e for e in self.log.get(order_id, []) if e.seq > after_seq]

    async def event(self, order_id: str, status: Status) -> Event | None:
        return next((e for e in self.log.get(order_id, []) if e.status == status), None)


class InMemoryRestingIndex:
    def __init__(self) -> None:
        self.armed: dict[str, OrderRecord] = {}
        self.intact = False

    async def claim_rebuild(self) -> bool:
        rebuild, self.intact = not self.intact, True
        return rebuild

    async def arm(self, order: OrderRecord) -> None:
        self.armed[order.id] = order

    async def disarm(self, order: OrderRecord) -> None:
        self.armed.pop(order.id, None)


class SentMessages:
    """The queue port, recording what would be sent."""

    def __init__(self) -> None:
        self.sent: list = []

    async def send(self, message) -> None:
        self.sent.append(message)

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass


class AdmitAll:
    """Client limits that admit every order."""

    async def admit(self, client_id: str, per_minute: int, max_in_flight: int, order_id: str) -> Admission:
        return Admission(True)

    async def release(self, client_id: str, order_id: str) -> None:
        pass


class KnownKeys:
    """API keys in a dict: key → client."""

    def __init__(self, clients: dict[str, ApiClient] | None = None) -> None:
        self.clients = clients or {}

    async def client(self, key: str) -> ApiClient | None:
        return self.clients.get(key)


class AlwaysHeld:
    """A lease this process always holds."""

    holder = "test"

    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        pass


class RecordedMetrics:
    """The metrics port, recording each call as (method, *arguments) in `calls`."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        if name.startswith("_") or not callable(getattr(Metrics, name, None)):  # the port's methods only
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, *args))

    def of(self, name: str) -> list[tuple]:
        """The arguments of every call to `name`."""
        return [call[1:] for call in self.calls if call[0] == name]


def fake_services(settings: Settings | None = None, store: MemoryMarketStore | None = None, **overrides) -> Services:
    """The composition root's assembly with in-memory fakes for every part with I/O: the real
    simulated world (in a MemoryMarketStore) and functions, no delays."""
    settings = settings or Settings(sim=SimulationSettings(zero_delays=True, drift_interval_ms=0))
    fakes = dict(orders=InMemoryOrderRepository(), publisher=ListPublisher(), resting=InMemoryRestingIndex(),
                 market=store or MemoryMarketStore(now_s=lambda: 0.0), now_s=lambda: 0.0, clock=FixedClock(),
                 ids=SequentialIds(), queues=SentMessages(), limits=AdmitAll(), keys=KnownKeys(), lease=AlwaysHeld(),
                 log=logging.getLogger("test"), metrics=RecordedMetrics())
    return assemble(settings, **{**fakes, **overrides})


def fake_context(settings: Settings | None = None, store: MemoryMarketStore | None = None) -> Context:
    """The functions' Context from `fake_services` (the market: `ctx.venues.store`)."""
    return fake_services(settings, store).ctx
