"""The ports: every Protocol the service layer depends on, implemented by shared/adapters/ and by
the tests' fakes. Nothing here imports an adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from shared.domain.chain import Landing, Transaction
from shared.domain.clients import Admission, ApiClient
from shared.domain.events import Event
from shared.domain.market import Market
from shared.domain.messages import QuoteCurve, VenueFailure, VenueQuote
from shared.domain.orders import OrderRecord
from shared.domain.resting import RestingOrder
from shared.domain.states import Status
from shared.domain.swap import SwapOutcome
from shared.domain.tokens import Token


class Clock(Protocol):
    def now(self) -> datetime: ...


class Ids(Protocol):
    def order_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A stored status change: its event, and the order's kind and creation time, read by the same
    statement (what a terminal change is counted by, without another read)."""

    event: Event
    kind: str
    created_at: datetime


class OrderRepository(Protocol):
    """Orders and their events (PostgreSQL; an in-memory fake for unit tests)."""

    async def create(self, order: OrderRecord, data: dict[str, Any]) -> Event | None:
        """Store a new order in status pending with its first event (seq 1); None if the
        client already has an order with this idempotency key (nothing is written)."""
        ...

    async def find_by_key(self, client_id: str, idempotency_key: str) -> OrderRecord | None: ...

    async def transition(
        self, order_id: str, new: Status, at: datetime, data: dict[str, Any], changes: dict[str, Any],
        only_from: frozenset[Status] | None = None,
    ) -> StatusChange | None:
        """Move the order to `new` if the state table allows it from its current status (and,
        with `only_from`, that status is one of those), apply `changes` and append the event
        with the next seq, atomically; returns the event with the order's kind and creation time.
        Returns None (and changes nothing) otherwise."""
        ...

    async def get(self, order_id: str) -> OrderRecord | None: ...

    async def moving_since(self, before: datetime, limit: int, statuses: frozenset[Status]) -> list[OrderRecord]:
        """Orders in one of these pipeline statuses (pending, triggered, routing … submitted) not
        updated since `before`, oldest first."""
        ...

    async def overdue(self, before: datetime, limit: int) -> list[OrderRecord]:
        """Waiting orders whose expiry is before `before`."""
        ...

    async def waiting_after(self, after_id: str | None, limit: int) -> list[OrderRecord]:
        """A page of waiting orders in id order, after `after_id`."""
        ...

    async def events(self, order_id: str, after_seq: int = 0) -> list[Event]: ...

    async def recent(self, client_id: str, before: str | None, limit: int) -> list[OrderRecord]:
        """The client's orders, newest first, older than the order `before` (an order id; None: from
        the newest): a page of the client's history, the cursor being the last id of the page before."""
        ...

    async def event(self, order_id: str, status: Status) -> Event | None:
        """The event that moved the order to `status`, if any."""
        ...


class Publisher(Protocol):
    async def publish(self, event: Event) -> None:
        """Hand a stored event over for delivery; it may be sent after this returns, but an
        order's events are sent in the order they were handed over."""
        ...

    async def flush(self) -> None:
        """Wait until every event handed over so far has been sent (or given up on)."""
        ...


class Queues(Protocol):
    """Hands a step's message to the function the pipeline table gives it to (SAQ locally, SQS in
    the cloud)."""

    async def send(self, message: Any) -> None: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...


class HeldMessages(Protocol):
    """A queue transport that can tell which orders' messages it holds (SAQ: a lease per order,
    given at enqueue for the step's whole deadline and renewed by a running job's heartbeat). The
    reconciler asks it before re-driving; a transport without it (SQS) leaves the step's deadline."""

    async def in_hand(self, order_ids: list[str]) -> set[str]:
        """Those of `order_ids` whose message is queued or running."""
        ...


class RestingIndex(Protocol):
    """Resting (limit and sniper) orders, indexed so a price change or launch touches only the
    orders it concerns; removing an entry is the claim that fires an order once."""

    async def arm(self, order: OrderRecord) -> None:
        """Index a waiting order by what fires it (limit price, or token to snipe) and its expiry.
        Idempotent."""
        ...

    async def disarm(self, order: OrderRecord) -> None:
        """Remove the order from every index. Idempotent."""
        ...

    async def claim_rebuild(self) -> bool:
        """True once after the index was lost (or never built): the caller re-arms every
        waiting order from the database. False while the index is intact."""
        ...

    async def limit_candidates(self, base_mint: str, quote_mint: str, side: str, best_price: Decimal
                               ) -> list[RestingOrder]:
        """A superset of the limit orders the best spot price has reached."""
        ...

    async def claim_limit(self, order: RestingOrder) -> bool: ...

    async def sniper_ids(self, mint: str) -> list[str]:
        """The sniper orders waiting for `mint` (ids only: a launch reads their details batch by batch)."""
        ...

    async def resting(self, order_ids: list[str]) -> list[RestingOrder]:
        """These resting orders' details, in order; one no longer armed is left out."""
        ...

    async def awaited_mints(self) -> list[str]: ...

    async def claim_sniper(self, order: RestingOrder) -> bool: ...

    async def due_expiries(self, now: datetime) -> list[str]: ...

    async def claim_expiry(self, order_id: str) -> bool: ...


class MarketStore(Protocol):
    """The one simulated world every process shares (a chain's state): pools, pairs and their
    prices, launched tokens, and the ledger of landed transactions. Reads give a snapshot;
    every change is atomic against every other, whichever process makes it."""

    async def load(self, mint_a: str, mint_b: str) -> Market:
        """The pair's state now (a Market without it if no venue trades it)."""
        ...

    async def load_all(self) -> Market: ...

    async def modify(self, change: Callable[[Market], object], mints: Iterable[tuple[str, str]] | None = None
                     ) -> object:
        """Apply `change` to the named pairs (every pair if None) atomically, new pairs and pools
        included, and return what it returned. It must be pure: it may run again."""
        ...

    async def land(self, tx: Transaction) -> Landing:
        """Land `tx` on the pool it names, atomically, once: a signature that already landed gives
        back its stored landing."""
        ...

    async def find_landing(self, signature: str) -> Landing | None: ...

    async def find_tokens(self, assets: Iterable[str]) -> list[Token]:
        """Listed tokens whose mint (or symbol, any case) is one of `assets`."""
        ...


@dataclass(frozen=True, slots=True)
class PairListing:
    """How a pair trades: its base and quote as listed, and each venue's pool (venue → address)."""

    base_mint: str
    quote_mint: str
    pools: dict[str, str]


class Venues(Protocol):
    """The DEX venues: which pairs trade, and what each venue gives for a size now."""

    async def supports(self, mint_a: str, mint_b: str) -> bool: ...

    async def listing(self, mint_a: str, mint_b: str) -> PairListing | None:
        """The pair as listed (None: no venue trades it)."""
        ...

    async def price(self, mint_in: str, mint_out: str, amount_in: int, venues: list[str] | None,
                    split_steps: int, split_min_share_bps: int
                    ) -> tuple[list[VenueQuote], list[VenueFailure], list[QuoteCurve]]:
        """Every venue's quote for the whole size (or those named), its failures, and the split
        curves when a split may pay (outputs at `split_steps` sizes pairing up into splits)."""
        ...

    async def outcomes(self, mint_in: str, mint_out: str, legs: list[tuple[str, int]]) -> list[SwapOutcome]:
        """The pool math for each (venue, amount in) now."""
        ...


class Chain(Protocol):
    """Where swaps land: a signed transaction is built, sent, and lands at most once."""

    async def build(self, tx: Transaction) -> None: ...

    async def send(self, tx: Transaction) -> None: ...

    async def confirm(self, tx: Transaction, built_now: bool = False) -> Landing: ...


class Lease(Protocol):
    """At most one holder at a time; the holder renews it, and another takes it when it lapses."""

    holder: str

    async def hold(self) -> bool:
        """Renew or take the lease; True if this holder has it now."""
        ...

    async def release(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored API key, without the key: its id is the key's SHA-256 (hex), what is stored."""

    key_id: str
    client_id: str
    label: str
    orders_per_minute: int | None
    """This key's own limits; None: the engine's defaults."""
    max_in_flight: int | None
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Revocation:
    revoked: bool
    """The key was active and is now revoked (False: unknown, or revoked before)."""
    known: bool
    """The key exists (active or revoked before) — and, when the revocation named a client, is its."""
    announced: bool
    """Every web process was told over Redis (False: no Redis given, or it was unreachable; the key
    is then refused within the key cache's TTL)."""
    error: str | None = None
    """Why it could not be announced."""
    revoked_at: datetime | None = None


class ApiKeys(Protocol):
    async def client(self, key: str) -> ApiClient | None:
        """The client a key belongs to, or None (unknown or revoked)."""
        ...

    async def issue(self, client_id: str, now: datetime, label: str = "", orders_per_minute: int | None = None,
                    max_in_flight: int | None = None, max_active: int | None = None) -> tuple[str, KeyRecord] | None:
        """A new key for `client_id` (the key, returned once, and what is stored of it); None if the
        client already has `max_active` active keys."""
        ...

    async def keys_of(self, client_id: str) -> list[KeyRecord]:
        """The client's keys, newest first: every active one and the most recently revoked."""
        ...

    async def revoke_id(self, key_id: str, now: datetime, client_id: str | None = None) -> Revocation:
        """Revoke the key with this id (hash) — only if it is `client_id`'s, when given — and
        announce it to every web process."""
        ...


class ClientLimits(Protocol):
    """Per-client admission shared by every web process: orders per minute and in flight."""

    async def admit(self, client_id: str, per_minute: int, max_in_flight: int, order_id: str) -> Admission:
        """Count the request and reserve an in-flight slot for `order_id`."""
        ...

    async def release(self, client_id: str, order_id: str) -> None:
        """Give back the slot reserved for an order that was refused or turned out to be a repeat."""
        ...


class Metrics(Protocol):
    """What the engine counts and times (Prometheus in the runtime, shared by its processes; a
    recorder in the tests). Every call is synchronous, cheap (the hot path makes a dozen per order)
    and never fails its caller. Label values are bounded: kinds, statuses, steps, reasons."""

    def order_taken(self, kind: str) -> None:
        """A new order was stored (not a repeat of an idempotency key)."""
        ...

    def order_finished(self, kind: str, status: str, failure: str | None, seconds: float) -> None:
        """An order reached terminal `status` (once per order), `seconds` after it was created;
        `failure` is its stored failure reason, if any (the adapter reduces it to a bounded label)."""
        ...

    def step_took(self, step: str, seconds: float) -> None:
        """One run of a step on one message (any outcome)."""
        ...

    def step_retried(self, step: str) -> None:
        """A step failed with attempts left: its message is delivered again."""
        ...

    def step_gave_up(self, step: str) -> None:
        """A step failed on its last attempt: the order fails with the reason."""
        ...

    def redriven(self, step: str) -> None:
        """The reconciler sent a stuck order's message to `step` again."""
        ...

    def refused(self, reason: str) -> None:
        """An order refused at admission: "rate" (orders per minute) or "in_flight"."""
        ...

    def events_published(self, count: int) -> None:
        """Events sent on Redis pub/sub."""
        ...

    def events_unpublished(self, count: int) -> None:
        """Events whose publish failed (subscribers read them from PostgreSQL)."""
        ...

    def events_replayed(self, count: int) -> None:
        """Events a stream read from PostgreSQL rather than live (a catch-up or a repaired gap)."""
        ...

    def socket_opened(self, route: str) -> None: ...

    def socket_closed(self, route: str) -> None: ...
