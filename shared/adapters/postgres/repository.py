"""Orders, events and the chain ledger in PostgreSQL, as raw statements on asyncpg.

Piccolo owns the schema and its migrations; the hot path uses single statements
(a status change and its event are one CTE) on the same asyncpg pool.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg
import msgspec

from shared.adapters.batching import Coalescer
from shared.adapters.postgres.recordsets import recordset as _recordset, rows_json as _rows_json
from shared.domain.events import Event, format_ts
from shared.domain.orders import UPDATABLE_FIELDS, Kind, OrderRecord, Side
from shared.domain.states import TERMINAL_STATUSES, Status, sources_of
from shared.ports import StatusChange

_json = msgspec.json.Encoder()


def _event(row: asyncpg.Record) -> Event:
    return Event(
        order_id=str(row["order_id"]),
        seq=row["seq"],
        status=row["status"],
        ts=format_ts(row["created_at"]),
        data=msgspec.json.decode(row["payload"]),
    )


_COLUMN_TYPES: dict[str, str] = {
    "id": "uuid", "client_id": "text", "idempotency_key": "text", "request_hash": "text", "kind": "text",
    "side": "text", "status": "text", "base_mint": "text", "quote_mint": "text", "input_mint": "text",
    "output_mint": "text", "amount_in": "numeric", "slippage_bps": "int", "limit_price": "numeric",
    "expires_at": "timestamptz", "conditions": "jsonb", "min_amount_out": "numeric", "venue": "text", "plan": "jsonb",
    "tx_signature": "text", "amount_out": "numeric", "filled_amount_in": "numeric", "executed_price": "numeric",
    "failure_reason": "text", "attempts": "int", "last_seq": "int", "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
"""Each OrderRecord field's column type: the one place the adapter names the order's fields."""
assert set(_COLUMN_TYPES) == {f.name for f in fields(OrderRecord)}, "every order field needs its column type here"
_INTEGERS = {name for name, kind in _COLUMN_TYPES.items() if kind == "numeric"} - {"limit_price", "executed_price"}
"""Amounts are Numeric(20, 0) columns (u64) and ints in the record."""
_READ_AS = {"id": str, "kind": Kind, "side": Side, "status": Status,
            **{name: msgspec.json.decode for name, kind in _COLUMN_TYPES.items() if kind == "jsonb"},
            **dict.fromkeys(_INTEGERS, int)}


def _record(row: asyncpg.Record) -> OrderRecord:
    values = {}
    for name in _COLUMN_TYPES:
        value = row[name]
        values[name] = value if value is None or name not in _READ_AS else _READ_AS[name](value)
    return OrderRecord(**values)


_CREATED_FIELDS = ("id", "client_id", "idempotency_key", "kind", "side", "base_mint", "quote_mint", "input_mint",
                   "output_mint", "amount_in", "slippage_bps", "limit_price", "expires_at", "conditions",
                   "min_amount_out", "request_hash", "created_at")
"""What a new order stores beside its status (pending), counters and update time."""
_CREATE_COLUMNS = (*((name, _COLUMN_TYPES[name]) for name in _CREATED_FIELDS), ("payload", "jsonb"))

_CREATE_MANY = f"""
WITH i AS (SELECT * FROM {_recordset(_CREATE_COLUMNS)}),
o AS (
    INSERT INTO orders (id, client_id, idempotency_key, kind, side, status, base_mint, quote_mint, input_mint,
                        output_mint, amount_in, slippage_bps, limit_price, expires_at, conditions, min_amount_out,
                        request_hash, attempts, last_seq, created_at, updated_at)
    SELECT id, client_id, idempotency_key, kind, side, 'pending', base_mint, quote_mint, input_mint, output_mint,
           amount_in, slippage_bps, limit_price, expires_at, conditions, min_amount_out, request_hash, 0, 1,
           created_at, created_at
    FROM i
    ON CONFLICT DO NOTHING
    RETURNING id
),
e AS (
    INSERT INTO order_events (order_id, seq, status, payload, created_at)
    SELECT i.id, 1, 'pending', i.payload, i.created_at FROM i JOIN o ON o.id = i.id
),
l AS (INSERT INTO open_orders (order_id) SELECT id FROM o)
SELECT id::text FROM o
"""

_FIELDS = tuple(sorted(UPDATABLE_FIELDS))
_TRANSITION_COLUMNS = (
    ("id", "uuid"), ("status", "text"), ("at", "timestamptz"), ("sources", "text"), ("payload", "jsonb"),
    ("mask", "int"), *((name, _COLUMN_TYPES[name]) for name in _FIELDS),
)
_BIT = {name: 1 << bit for bit, name in enumerate(_FIELDS)}
_TERMINAL = "', '".join(sorted(TERMINAL_STATUSES))
_TRANSITION_MANY = f"""
WITH i AS (SELECT * FROM {_recordset(_TRANSITION_COLUMNS)}),
o AS (
    UPDATE orders SET status = i.status, last_seq = orders.last_seq + 1, updated_at = i.at,
        {", ".join(f"{name} = CASE WHEN i.mask & {1 << bit} <> 0 THEN i.{name} ELSE orders.{name} END"
                   for bit, name in enumerate(_FIELDS))}
    FROM i
    WHERE orders.id = i.id AND orders.id = ANY(ARRAY(SELECT id FROM i)) AND orders.status = ANY(string_to_array(i.sources, ','))
    RETURNING orders.id, orders.last_seq, i.status, i.at, i.payload, orders.expires_at, orders.kind, orders.created_at
),
closed AS (
    DELETE FROM open_orders USING o WHERE open_orders.order_id = o.id AND o.status IN ('{_TERMINAL}')
),
rests AS (
    UPDATE open_orders SET resting = o.status = '{Status.WAITING}', expires_at = o.expires_at FROM o
    WHERE open_orders.order_id = o.id AND o.status IN ('{Status.WAITING}', '{Status.TRIGGERED}')
      AND open_orders.resting <> (o.status = '{Status.WAITING}')
),
e AS (INSERT INTO order_events (order_id, seq, status, payload, created_at) SELECT id, last_seq, status, payload, at FROM o)
SELECT id::text AS order_id, last_seq AS seq, kind, created_at FROM o
"""
"""Many status changes in one statement: each row carries its allowed sources and a bit mask
of the fields it sets (a field outside the mask keeps its value, so one statement shape
serves every step; a row's JSON object names only the fields it sets, the others read as
NULL). The ids' array makes the plan read `orders` by its primary key whatever the server
estimates: joined on `i` alone (which it guesses at 100 rows), a table of up to a few thousand
orders was read whole on every change (a fresh database, or one where statistics are never
gathered). `open_orders` follows: an order leaves it on reaching a terminal status, and is
marked resting while it waits for its trigger. Each changed order comes back with its new seq, its
kind and its creation time (what a terminal change is counted by)."""


_AFTER_EVERY_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
"""Above every order id: the cursor of a client's first page of orders."""

_OPEN_ORDERS = "SELECT o.* FROM open_orders l JOIN orders o ON o.id = l.order_id"
"""The orders not yet terminal (`l`: their open_orders row), for the reconciler's look-ups."""


@lru_cache(maxsize=256)
def _sources_text(new: Status, only_from: frozenset[Status] | None) -> str:
    """The statuses `new` may be reached from (limited to `only_from`), as the statement reads them."""
    sources = sources_of(new) if only_from is None else sources_of(new) & only_from
    return ",".join(sorted(s.value for s in sources))


class PgOrderRepository:
    """Writes and point reads go through coalescers: the calls of many concurrent orders
    become one statement (group commit). `max_batch=1` sends each call alone (the
    one-at-a-time baseline of the bench), through the same statements."""

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 256) -> None:
        self._pool = pool
        self._creates = Coalescer(self._create_many, max_batch=max_batch, max_in_flight=2)
        self._transitions = Coalescer(self._transition_many, max_batch=max_batch, max_in_flight=2,
                                      unique=lambda row: row["id"])
        self._reads = Coalescer(self._get_many, max_batch=max_batch, max_in_flight=2)

    async def create(self, order: OrderRecord, data: dict[str, Any]) -> Event | None:
        row = (*(getattr(order, name) for name in _CREATED_FIELDS), data)
        if not await self._creates.submit(row):
            return None
        return Event(order.id, 1, Status.PENDING, format_ts(order.created_at), data)

    async def _create_many(self, rows: list[tuple]) -> list[bool]:
        created = {r["id"] for r in await self._pool.fetch(_CREATE_MANY, _rows_json(_CREATE_COLUMNS, rows))}
        return [row[0] in created for row in rows]

    async def transition(
        self, order_id: str, new: Status, at: datetime, data: dict[str, Any], changes: dict[str, Any],
        only_from: frozenset[Status] | None = None,
    ) -> StatusChange | None:
        if not changes.keys() <= UPDATABLE_FIELDS:
            raise ValueError(f"not updatable: {sorted(changes.keys() - UPDATABLE_FIELDS)}")
        row = {"id": order_id, "status": new.value, "at": at, "sources": _sources_text(new, only_from),
               "payload": data, "mask": sum(_BIT[name] for name in changes), **changes}
        stored = await self._transitions.submit(row)
        if stored is None:
            return None
        return StatusChange(Event(order_id, stored["seq"], new, format_ts(at), data), stored["kind"], stored["created_at"])

    async def _transition_many(self, rows: list[dict[str, Any]]) -> list[asyncpg.Record | None]:
        stored = {r["order_id"]: r for r in await self._pool.fetch(_TRANSITION_MANY, _json.encode(rows).decode())}
        return [stored.get(row["id"]) for row in rows]

    async def get(self, order_id: str) -> OrderRecord | None:
        return await self._reads.submit(order_id)

    async def _get_many(self, order_ids: list[str]) -> list[OrderRecord | None]:
        rows = await self._pool.fetch("SELECT * FROM orders WHERE id = ANY($1::uuid[])", order_ids)
        found = {str(row["id"]): _record(row) for row in rows}
        return [found.get(order_id) for order_id in order_ids]

    async def find_by_key(self, client_id: str, idempotency_key: str) -> OrderRecord | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM orders WHERE client_id = $1 AND idempotency_key = $2", client_id, idempotency_key
        )
        return None if row is None else _record(row)

    async def moving_since(self, before: datetime, limit: int, statuses: frozenset[Status]) -> list[OrderRecord]:
        """Orders in the pipeline (open, not resting: as many as are in flight, whatever the
        table holds) in one of `statuses`, unchanged since before `before`, oldest first."""
        rows = await self._pool.fetch(
            f"{_OPEN_ORDERS} WHERE NOT l.resting AND o.status = ANY($3::text[]) AND o.updated_at < $1"
            " ORDER BY o.updated_at LIMIT $2",
            before, limit, [s.value for s in statuses],
        )
        return [_record(row) for row in rows]

    async def overdue(self, before: datetime, limit: int) -> list[OrderRecord]:
        rows = await self._pool.fetch(
            f"{_OPEN_ORDERS} WHERE l.resting AND l.expires_at < $1 AND o.status = 'waiting'"
            " ORDER BY l.expires_at LIMIT $2",
            before, limit,
        )
        return [_record(row) for row in rows]

    async def waiting_after(self, after_id: str | None, limit: int) -> list[OrderRecord]:
        rows = await self._pool.fetch(
            f"{_OPEN_ORDERS} WHERE l.resting AND l.order_id > $1 AND o.status = 'waiting'"
            " ORDER BY l.order_id LIMIT $2",
            after_id or "00000000-0000-0000-0000-000000000000", limit,
        )
        return [_record(row) for row in rows]

    async def recent(self, client_id: str, before: str | None, limit: int) -> list[OrderRecord]:
        """Newest first, by id (ids are time-ordered UUIDs): a backward range scan of the index on
        (client_id, id), whatever the page's depth (no `before IS NULL OR …`, which a generic plan
        would turn into a filter)."""
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE client_id = $1 AND id < $2::uuid ORDER BY id DESC LIMIT $3",
            client_id, before or _AFTER_EVERY_ID, limit,
        )
        return [_record(row) for row in rows]

    async def events(self, order_id: str, after_seq: int = 0) -> list[Event]:
        rows = await self._pool.fetch(
            "SELECT order_id, seq, status, payload, created_at FROM order_events"
            " WHERE order_id = $1 AND seq > $2 ORDER BY seq",
            order_id,
            after_seq,
        )
        return [_event(row) for row in rows]

    async def event(self, order_id: str, status: Status) -> Event | None:
        row = await self._pool.fetchrow(
            "SELECT order_id, seq, status, payload, created_at FROM order_events"
            " WHERE order_id = $1 AND status = $2 ORDER BY seq LIMIT 1",
            order_id,
            status.value,
        )
        return None if row is None else _event(row)
