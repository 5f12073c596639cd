"""Orders, events and the chain ledger in PostgreSQL, as raw statements on asyncpg.

Piccolo owns the schema and its migrations; the hot path uses single statements
(a status change and its event are one CTE) on the same asyncpg pool.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from shared.chain import Landing, Transaction
from shared.events import Event, format_ts
from shared.orders import UPDATABLE_FIELDS, OrderRecord
from shared.states import Status, sources_of

_json = msgspec.json.Encoder()
_NUMERIC_FIELDS = frozenset({"min_amount_out", "amount_out", "executed_price"})


def _to_db(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "plan":
        return _json.encode(value).decode()
    if name in _NUMERIC_FIELDS:
        return Decimal(value)
    return value


def _event(row: asyncpg.Record) -> Event:
    return Event(
        order_id=str(row["order_id"]),
        seq=row["seq"],
        status=row["status"],
        ts=format_ts(row["created_at"]),
        data=msgspec.json.decode(row["payload"]),
    )


def _int_or_none(value: Decimal | None) -> int | None:
    return None if value is None else int(value)


def _record(row: asyncpg.Record) -> OrderRecord:
    return OrderRecord(
        id=str(row["id"]),
        client_id=row["client_id"],
        kind=row["kind"],
        side=row["side"],
        status=Status(row["status"]),
        base_mint=row["base_mint"],
        quote_mint=row["quote_mint"],
        input_mint=row["input_mint"],
        output_mint=row["output_mint"],
        amount_in=int(row["amount_in"]),
        slippage_bps=row["slippage_bps"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        limit_price=row["limit_price"],
        expires_at=row["expires_at"],
        conditions=None if row["conditions"] is None else msgspec.json.decode(row["conditions"]),
        min_amount_out=_int_or_none(row["min_amount_out"]),
        venue=row["venue"],
        plan=None if row["plan"] is None else msgspec.json.decode(row["plan"]),
        tx_signature=row["tx_signature"],
        amount_out=_int_or_none(row["amount_out"]),
        executed_price=row["executed_price"],
        failure_reason=row["failure_reason"],
        attempts=row["attempts"],
        last_seq=row["last_seq"],
    )


_INSERT_ORDER = """
WITH o AS (
    INSERT INTO orders (id, client_id, idempotency_key, kind, side, status, base_mint, quote_mint,
                        input_mint, output_mint, amount_in, slippage_bps, limit_price, expires_at,
                        conditions, min_amount_out, request_hash, attempts, last_seq, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $14, $15, $16::jsonb, $17, $18, 0, 1, $12, $12)
    RETURNING id
)
INSERT INTO order_events (order_id, seq, status, payload, created_at)
SELECT id, 1, 'pending', $13::jsonb, $12 FROM o
"""

_TRANSITION = """
WITH o AS (
    UPDATE orders SET status = $2, last_seq = last_seq + 1, updated_at = $3{assignments}
    WHERE id = $1 AND status = ANY($4::text[])
    RETURNING id, last_seq
)
INSERT INTO order_events (order_id, seq, status, payload, created_at)
SELECT id, last_seq, $2, $5::jsonb, $3 FROM o
RETURNING seq
"""


class PgOrderRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._transition_sql: dict[tuple[str, ...], str] = {}

    async def create(self, order: OrderRecord, data: dict[str, Any]) -> Event | None:
        try:
            await self._pool.execute(
                _INSERT_ORDER,
                order.id,
                order.client_id,
                order.idempotency_key,
                order.kind,
                order.side,
                order.base_mint,
                order.quote_mint,
                order.input_mint,
                order.output_mint,
                Decimal(order.amount_in),
                order.slippage_bps,
                order.created_at,
                _json.encode(data).decode(),
                order.limit_price,
                order.expires_at,
                None if order.conditions is None else _json.encode(order.conditions).decode(),
                None if order.min_amount_out is None else Decimal(order.min_amount_out),
                order.request_hash,
            )
        except asyncpg.UniqueViolationError:
            return None
        return Event(order.id, 1, Status.PENDING, format_ts(order.created_at), data)

    def _sql_for(self, names: tuple[str, ...]) -> str:
        sql = self._transition_sql.get(names)
        if sql is None:
            unknown = set(names) - UPDATABLE_FIELDS
            if unknown:
                raise ValueError(f"not updatable: {sorted(unknown)}")
            assignments = "".join(f", {name} = ${i}" for i, name in enumerate(names, start=6))
            sql = self._transition_sql[names] = _TRANSITION.format(assignments=assignments)
        return sql

    async def transition(
        self, order_id: str, new: Status, at: datetime, data: dict[str, Any], changes: dict[str, Any],
        only_from: frozenset[Status] | None = None,
    ) -> Event | None:
        names = tuple(sorted(changes))
        sources = sources_of(new) if only_from is None else sources_of(new) & only_from
        seq = await self._pool.fetchval(
            self._sql_for(names),
            order_id,
            new.value,
            at,
            [s.value for s in sources],
            _json.encode(data).decode(),
            *(_to_db(name, changes[name]) for name in names),
        )
        return None if seq is None else Event(order_id, seq, new, format_ts(at), data)

    async def find_by_key(self, client_id: str, idempotency_key: str) -> OrderRecord | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM orders WHERE client_id = $1 AND idempotency_key = $2", client_id, idempotency_key
        )
        return None if row is None else _record(row)

    async def get(self, order_id: str) -> OrderRecord | None:
        row = await self._pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
        return None if row is None else _record(row)

    async def moving_since(self, before: datetime, limit: int, statuses: frozenset[Status]) -> list[OrderRecord]:
        # The IN list matches the partial index orders_moving_by_age word for word.
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE status IN ('pending', 'triggered', 'routing', 'routed', 'building',"
            " 'submitted') AND status = ANY($3::text[]) AND updated_at < $1 ORDER BY updated_at LIMIT $2",
            before, limit, [s.value for s in statuses],
        )
        return [_record(row) for row in rows]

    async def overdue(self, before: datetime, limit: int) -> list[OrderRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE status = 'waiting' AND expires_at < $1 ORDER BY expires_at LIMIT $2",
            before, limit,
        )
        return [_record(row) for row in rows]

    async def waiting_after(self, after_id: str | None, limit: int) -> list[OrderRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE status = 'waiting' AND id > $1 ORDER BY id LIMIT $2",
            after_id or "00000000-0000-0000-0000-000000000000", limit,
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


class PgLedger:
    """The simulated chain's ledger: one row per landed signature."""

    def __init__(self, pool: asyncpg.Pool, now: Any) -> None:
        self._pool = pool
        self._now = now

    @staticmethod
    def _landing(row: asyncpg.Record) -> Landing:
        return Landing(row["signature"], bool(row["succeeded"]), int(row["amount_out"]), row["slot"], row["error"])

    async def find(self, signature: str) -> Landing | None:
        row = await self._pool.fetchrow("SELECT * FROM chain_transactions WHERE signature = $1", signature)
        return None if row is None else self._landing(row)

    async def land(self, tx: Transaction, landing: Landing) -> tuple[Landing, bool]:
        inserted = await self._pool.fetchval(
            "INSERT INTO chain_transactions"
            " (signature, order_id, leg, venue, amount_in, amount_out, succeeded, error, slot, landed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (signature) DO NOTHING RETURNING signature",
            tx.signature,
            tx.order_id,
            tx.leg,
            tx.venue,
            Decimal(tx.amount_in),
            Decimal(landing.amount_out),
            int(landing.succeeded),
            landing.error,
            landing.slot,
            self._now(),
        )
        if inserted is not None:
            return landing, True
        stored = await self.find(tx.signature)
        assert stored is not None, "a conflicting signature must exist"
        return stored, False
