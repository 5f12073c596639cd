"""Constraints Piccolo's auto migrations cannot express: composite unique keys and partial indexes."""

from shared.adapters.postgres.ddl_migration import ddl_forwards

ID = "2026-11-25T06:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique (order_id, seq); unique idempotency key per client; index on open orders"

STATEMENTS = (
    "CREATE UNIQUE INDEX order_events_order_seq ON order_events (order_id, seq)",
    "CREATE UNIQUE INDEX orders_client_idempotency ON orders (client_id, idempotency_key)"
    " WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX orders_open_by_age ON orders (updated_at)"
    " WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired')",
)


forwards = ddl_forwards(ID, DESCRIPTION, STATEMENTS)
